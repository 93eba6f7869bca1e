"""related.py: one notification whose content cannot be loaded never costs the others, in the
worker's batch, the inbox, the open view and the admin."""

import logging

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from tests import messages
from tests.messages import DefaultMessage, InboxMethodMessage
from tests.models import Article, Document
from tests.utils import earlier, make_user
from transmissions import related
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status

# An Article's key is an integer, a Document's a UUID.
MALFORMED = [
    ("article", "abc", "does not fit"),
    ("article", "99999999999999999999", "out of the range"),
    ("document", "not-a-uuid", "does not fit"),
    ("gone", "7", "has no model any more"),
]


def malform(n, kind, object_id):
    if kind == "gone":
        content_type = ContentType.objects.create(app_label="uninstalled", model="gadget")
    else:
        content_type = ContentType.objects.get_for_model(Article if kind == "article" else Document)
    Notification.objects.filter(pk=n.pk).update(content_type=content_type, object_id=object_id)


@pytest.mark.parametrize(("kind", "object_id", "why"), MALFORMED)
def test_one_malformed_row_never_stops_its_batch(user, caplog, kind, object_id, why):
    article = Article.objects.create(title="Queues")
    first = DefaultMessage.trigger(user, content=article, datetime_scheduled=earlier(minutes=3))
    bad = DefaultMessage.trigger(user, content=article, datetime_scheduled=earlier(minutes=2))
    last = DefaultMessage.trigger(
        user, content=Document.objects.create(title="d"), datetime_scheduled=earlier()
    )
    malform(bad, kind, object_id)

    with caplog.at_level(logging.WARNING, logger="transmissions"):
        assert process_all_notifications() == 3

    assert messages.sent == [("default", first.pk), ("default", last.pk)]
    bad.refresh_from_db()
    assert bad.status == S.BROKEN and bad.datetime_processed is not None
    assert bad.reason.startswith("its content cannot be loaded: ") and why in bad.reason
    assert not Notification.objects.filter(status=S.PROCESSING).exists()
    assert any(why in r.getMessage() for r in caplog.records)


def test_a_deleted_content_is_no_problem(user):
    article = Article.objects.create(title="Soon gone")
    n = DefaultMessage.trigger(user, content=article, datetime_scheduled=earlier())
    article.delete()
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.SUCCESSFULLY_SENT
    n = Notification.objects.get(pk=n.pk)
    assert related.content(n) is None and related.content_problem(n) is None


def test_content_reads_none_for_a_malformed_row_and_loads_a_good_one(user):
    article = Article.objects.create(title="Here")
    good = DefaultMessage.trigger(user, content=article)
    bad = DefaultMessage.trigger(user, content=article)
    malform(bad, "article", "abc")
    good, bad = Notification.objects.get(pk=good.pk), Notification.objects.get(pk=bad.pk)
    assert related.content(good) == article and related.content_problem(good) is None
    assert related.content(bad) is None
    assert "does not fit tests.Article's primary key" in related.content_problem(bad)
    assert related.content(Notification.objects.get(pk=DefaultMessage.trigger(user).pk)) is None


@pytest.mark.parametrize(("kind", "object_id", "why"), MALFORMED)
def test_the_inbox_and_the_open_view_show_a_malformed_row(client, kind, object_id, why):
    ada = make_user("ada")
    client.force_login(ada)
    article = Article.objects.create(title="Still here")
    bad = InboxMethodMessage.trigger(ada, content=article, datetime_scheduled=earlier())
    fine = InboxMethodMessage.trigger(ada, content=article, datetime_scheduled=earlier())
    process_all_notifications()
    malform(bad, kind, object_id)

    response = client.get(reverse("transmissions:inbox"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "About Still here for ada" in html and "About nothing for ada" in html
    assert {n.pk for n in response.context["notifications"]} == {bad.pk, fine.pk}

    opened = client.get(reverse("transmissions:open", args=[bad.uuid]))
    assert opened.status_code == 302 and opened["Location"] == reverse("transmissions:inbox")
    bad.refresh_from_db()
    assert bad.datetime_consumed is not None


def test_the_admin_lists_and_shows_a_malformed_row(admin_client, user):
    article = Article.objects.create(title="Fine article")
    fine = DefaultMessage.trigger(user, content=article)
    bad = DefaultMessage.trigger(user, content=article)
    malform(bad, "article", "abc")
    html = admin_client.get(reverse("admin:transmissions_notification_changelist")).content.decode()
    assert str(article) in html and "article #abc (cannot be loaded)" in html
    assert "does not fit tests.Article&#x27;s primary key" in html
    page = admin_client.get(reverse("admin:transmissions_notification_change", args=[bad.pk]))
    assert page.status_code == 200 and "(cannot be loaded)" in page.content.decode()
    assert (
        admin_client.get(reverse("admin:transmissions_notification_change", args=[fine.pk])).status_code
        == 200
    )
