import pytest
from django.urls import reverse

from tests.messages import DefaultMessage, InboxMethodMessage, InboxRaisesMessage
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


def test_inapp_text_is_escaped_once_whoever_wrote_it(client, ada):
    """One rule: the stored text is HTML, shown as stored. A user's name with <script> in a
    get_text() entry is escaped once (not run); a title with & in a template entry is shown
    as &amp;, not &amp;amp;."""
    from tests.messages import CommentInApp, HelloInApp

    mallory = make_user("mallory", first_name="<script>alert(1)</script>")
    article = Article.objects.create(title="Tom & Jerry")
    hello = HelloInApp.trigger(ada, trigger_user=mallory, datetime_scheduled=earlier())
    comment = CommentInApp.trigger(ada, trigger_user=mallory, content=article, datetime_scheduled=earlier())
    process_all_notifications()
    assert Notification.objects.get(pk=hello.pk).data["inapp"]["text"] == (
        "&lt;script&gt;alert(1)&lt;/script&gt; says hello"
    )
    html = client.get(INBOX).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; says hello" in html
    assert f'mallory commented on <a href="/articles/{article.pk}/">Tom &amp; Jerry</a>' in html
    assert "&amp;amp;" not in html and "&amp;lt;" not in html
    assert Notification.objects.get(pk=comment.pk).status == S.SUCCESSFULLY_SENT


def test_a_row_that_cannot_be_shown_as_it_should_never_takes_the_inbox_down(client, ada, caplog):
    from tests.messages import BadgeInApp

    surrogate = sent(BadgeInApp, ada, data={"badge": "gold"})
    stored = Notification.objects.get(pk=surrogate.pk)
    stored.data = {"inapp": {"text": "bad \ud800 text", "url": None}}
    stored.save(update_fields=["data_bytes"])
    unreadable = sent(BadgeInApp, ada, data={"badge": "silver"})
    Notification.objects.filter(pk=unreadable.pk).update(data_bytes=b"junk")
    raising = sent(InboxRaisesMessage, ada)
    fine = sent(BadgeInApp, ada, data={"badge": "bronze"})

    response = client.get(INBOX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "bad ? text" in html and "You earned the bronze badge" in html
    assert html.count(">badge-inapp</a>") == 1  # the unreadable row: its trigger name
    assert ">inbox-raises</a>" in html
    assert "its in-app text cannot be read" in caplog.text and "its inbox text raised KeyError" in caplog.text
    assert {n.pk for n in response.context["notifications"]} == {
        surrogate.pk,
        unreadable.pk,
        raising.pk,
        fine.pk,
    }


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("//evil.example/login", False),
        ("https://evil.example/", False),
        ("javascript:alert(1)", False),
        ("http://testserver/articles/1/", True),
    ],
)
def test_open_redirects_only_within_this_site(client, ada, caplog, url, allowed):
    n = sent(InboxMethodMessage, ada, content=Article.objects.create(title=url))
    response = client.get(open_url(n))
    assert response.status_code == 302
    assert response["Location"] == (url if allowed else INBOX)
    assert ("which leaves this site" in caplog.text) is not allowed
    n.refresh_from_db()
    assert n.datetime_consumed is not None


@pytest.mark.parametrize(
    ("headers", "marks"),
    [
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({"Sec-Fetch-Site": "none"}, True),  # typed, or a bookmark
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "same-site"}, False),  # another subdomain's page
        ({"Referer": "http://testserver/elsewhere/"}, True),
        ({"Referer": "https://evil.example/"}, False),
        ({}, True),  # neither header: an old browser, a typed address
    ],
)
def test_only_a_visit_from_this_site_marks_the_inbox_seen(client, ada, headers, marks):
    n = sent(DefaultMessage, ada)
    response = client.get(INBOX, headers=headers)
    assert response.status_code == 200 and 'class="transmissions-item unseen"' in response.content.decode()
    n.refresh_from_db()
    assert (n.datetime_seen is not None) is marks
