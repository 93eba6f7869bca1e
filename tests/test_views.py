import pytest
from django.urls import reverse

from tests.messages import DefaultMessage, InboxMethodMessage
from tests.models import Article, Document
from tests.utils import earlier, later, make_user
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status
INBOX = reverse("transmissions:inbox")


def sent(message_cls, user, **kwargs):
    """Trigger and process one notification; return it, sent."""
    n = message_cls.trigger(user, datetime_scheduled=earlier(), **kwargs)
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.SUCCESSFULLY_SENT
    return n


@pytest.fixture
def ada(client):
    user = make_user("ada")
    client.force_login(user)
    return user


def open_url(n):
    return reverse("transmissions:open", args=[n.uuid])


def test_login_required(client):
    n = sent(DefaultMessage, make_user())
    for url in (INBOX, open_url(n)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={url}"
    n.refresh_from_db()
    assert n.datetime_seen is None and n.datetime_consumed is None


def test_inbox_lists_own_sent_newest_first_and_marks_them_seen(client, ada):
    article = Article.objects.create(title="Queues")
    older = sent(DefaultMessage, ada)
    newer = sent(InboxMethodMessage, ada, content=article)
    waiting = DefaultMessage.trigger(ada, datetime_scheduled=later())  # not sent: not listed
    cancelled = sent(DefaultMessage, ada)
    Notification.objects.filter(pk=cancelled.pk).update(status=S.CANCELLED)
    others = sent(DefaultMessage, make_user("bob"))

    response = client.get(INBOX)
    assert response.status_code == 200
    assert [n.pk for n in response.context["notifications"]] == [newer.pk, older.pk]
    html = response.content.decode()
    assert html.count('class="transmissions-item unseen"') == 2
    assert "About Queues for ada" in html
    assert open_url(newer) in html and open_url(others) not in html
    assert ada.notifications.sent().unseen_count() == 0
    waiting.refresh_from_db()
    others.refresh_from_db()
    assert waiting.datetime_seen is None and others.datetime_seen is None

    html = client.get(INBOX).content.decode()
    assert "transmissions-item unseen" not in html and html.count("transmissions-item") == 2


def test_empty_inbox(client, ada):
    assert "No notifications yet." in client.get(INBOX).content.decode()


def test_pagination_and_constant_queries(client, ada, django_assert_num_queries):
    article = Article.objects.create(title="Paged")
    for _ in range(25):
        InboxMethodMessage.trigger(ada, content=article, datetime_scheduled=earlier())
    process_all_notifications()
    first = client.get(INBOX)
    assert len(first.context["notifications"]) == 20
    assert first.context["paginator"].num_pages == 2
    assert 'rel="next" href="?page=2"' in first.content.decode()
    second = client.get(INBOX + "?page=2")
    assert len(second.context["notifications"]) == 5
    shown = {n.pk for n in first.context["notifications"]} | {n.pk for n in second.context["notifications"]}
    assert len(shown) == 25
    assert client.get(INBOX + "?page=3").status_code == 404
    # Session, user, count, the page, its contents (one query per content type), mark_seen
    # (and its UPDATE that ends escalations: tests/messages.py declares some):
    # the same number for 20 rows as for 5.
    for page in ("1", "2"):
        with django_assert_num_queries(7):
            client.get(INBOX, {"page": page})


def test_open_marks_consumed_and_redirects_to_the_content(client, ada):
    article = Article.objects.create(title="Target")
    n = sent(InboxMethodMessage, ada, content=article)
    response = client.get(open_url(n))
    assert response.status_code == 302 and response["Location"] == f"/articles/{article.pk}/"
    n.refresh_from_db()
    assert n.datetime_consumed is not None and n.datetime_seen == n.datetime_consumed


@pytest.mark.parametrize("content", [None, "document"])
def test_open_without_a_content_url_goes_to_the_inbox(client, ada, content):
    content = Document.objects.create(title="no url") if content else None
    n = sent(DefaultMessage, ada, content=content)
    response = client.get(open_url(n))
    assert response.status_code == 302 and response["Location"] == INBOX
    n.refresh_from_db()
    assert n.datetime_consumed is not None


def test_open_someone_elses_or_unsent_notification_is_404(client, ada):
    others = sent(DefaultMessage, make_user("bob"))
    waiting = DefaultMessage.trigger(ada, datetime_scheduled=later())
    for n in (others, waiting):
        assert client.get(open_url(n)).status_code == 404
        n.refresh_from_db()
        assert n.datetime_consumed is None
    assert client.get(reverse("transmissions:open", args=["nope"])).status_code == 404


def test_inbox_says_just_now_and_links_its_stylesheet(client, ada):
    sent(DefaultMessage, ada)
    html = client.get(INBOX).content.decode()
    assert ">just now</time>" in html and "0\xa0minutes" not in html
    assert '<link rel="stylesheet" href="/static/transmissions/transmissions.css">' in html
    assert '<html lang="en-us">' in html and "<main>" in html


def test_a_content_whose_model_is_gone_does_not_break_the_inbox(client, ada):
    from django.contrib.contenttypes.models import ContentType

    stale = ContentType.objects.create(app_label="uninstalled", model="gadget")
    gone = sent(InboxMethodMessage, ada, content=Article.objects.create(title="Was here"))
    Notification.objects.filter(pk=gone.pk).update(content_type=stale, object_id="7")
    fine = sent(InboxMethodMessage, ada, content=Article.objects.create(title="Still here"))
    response = client.get(INBOX)
    assert response.status_code == 200
    assert [n.pk for n in response.context["notifications"]] == [fine.pk, gone.pk]
    html = response.content.decode()
    assert "About Still here for ada" in html and "About nothing for ada" in html
