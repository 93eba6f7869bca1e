import pytest
from django.urls import reverse

from tests.messages import DefaultMessage, SendOnceMessage
from tests.models import User
from tests.utils import make_user
from transmissions.models import Notification

pytestmark = pytest.mark.django_db
S = Notification.Status


@pytest.fixture
def admin_client(client):
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    return client


def test_changelist_filters_and_search(admin_client):
    user = make_user("grace")
    DefaultMessage.trigger(user, data={"shown": True})
    url = reverse("admin:transmissions_notification_changelist")
    for query in ("", "?status__exact=0", "?q=grace", "?trigger_name=default"):
        response = admin_client.get(url + query)
        assert response.status_code == 200
        assert "grace" in response.content.decode()
    assert "grace" not in admin_client.get(url + "?q=nobody").content.decode()


def test_change_page_shows_data(admin_client):
    n = DefaultMessage.trigger(make_user(), data={"shown": True})
    response = admin_client.get(reverse("admin:transmissions_notification_change", args=[n.pk]))
    assert "{&#x27;shown&#x27;: True}" in response.content.decode()
    Notification.objects.filter(pk=n.pk).update(data_bytes=b"junk")
    response = admin_client.get(reverse("admin:transmissions_notification_change", args=[n.pk]))
    assert "unreadable" in response.content.decode()


def test_cancel_and_resend_actions(admin_client):
    user = make_user()
    waiting = DefaultMessage.trigger(user)
    url = reverse("admin:transmissions_notification_changelist")
    admin_client.post(url, {"action": "cancel", "_selected_action": [waiting.pk]})
    assert Notification.objects.get(pk=waiting.pk).status == S.CANCELLED
    blocked = SendOnceMessage.trigger(user)
    Notification.objects.filter(pk=blocked.pk).update(status=S.FAILED, dedup_key=None)
    SendOnceMessage.trigger(user)
    response = admin_client.post(
        url, {"action": "resend", "_selected_action": [waiting.pk, blocked.pk]}, follow=True
    )
    assert "1 queued again, 1 skipped" in response.content.decode()
    assert Notification.objects.get(pk=waiting.pk).status == S.CREATED
    assert Notification.objects.get(pk=blocked.pk).status == S.FAILED


def test_no_add_in_admin(admin_client):
    assert admin_client.get(reverse("admin:transmissions_notification_add")).status_code == 403
