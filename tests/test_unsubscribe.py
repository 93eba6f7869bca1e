"""unsubscribe.py and views.UnsubscribeView: RFC 8058 one-click unsubscribe.

The emails go through a real SMTP server on loopback; the unsubscribe requests are real
HTTP requests to a live server on loopback, as a mail provider would make them.
"""

import urllib.error
import urllib.request

import pytest
from django.core import signing
from django.template import Context, Template
from django.test.utils import override_settings
from django.urls import reverse

from tests.messages import CommentEmail, DigestEmail, MyEmailMessage, SecurityMemo
from tests.servers import SMTPServer
from tests.utils import email_settings, make_user
from transmissions import unsubscribe
from transmissions.models import Notification, Preference
from transmissions.preferences import set_preference
from transmissions.worker import process_all_notifications

S = Notification.Status


def smtp(port):
    return override_settings(
        **email_settings(host="127.0.0.1", port=port, timeout=5), DEFAULT_FROM_EMAIL="news@acme.test"
    )


def http(url, body=None, content_type="application/x-www-form-urlencoded"):
    """Return (status, text) of a GET, or of a POST of ``body``, over real HTTP."""
    data = None if body is None else body.encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if body is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def link_of(received):
    value = str(received["List-Unsubscribe"]).strip()  # folded: a long URL goes on its own line
    assert value.startswith("<") and value.endswith(">"), value
    return value[1:-1]


@pytest.fixture
def site(live_server, transactional_db):
    """A live server on loopback, and the links pointing at it."""
    with override_settings(TRANSMISSIONS_UNSUBSCRIBE_BASE_URL=live_server.url):
        yield live_server


def test_an_email_of_a_category_carries_the_rfc_8058_headers_and_one_post_unsubscribes(site):
    ada = make_user()
    with SMTPServer() as server, smtp(server.port):
        CommentEmail.trigger(ada)
        process_all_notifications()
        [(_, received)] = server.handler.messages
        assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = link_of(received)
        assert link.startswith(site.url + "/notifications/unsubscribe/")

        # What Gmail does: a POST with the one-click body, no cookie, no CSRF token.
        status, page = http(link, "List-Unsubscribe=One-Click")
        assert status == 200 and "You will no longer get “Comments” by email." in page
        assert list(Preference.objects.values_list("user_id", "category", "channel", "enabled")) == [
            (ada.pk, "comments", "email", False)
        ]
        # The next one is held, with its reason; the same POST again changes nothing.
        n = CommentEmail.trigger(ada)
        process_all_notifications()
        assert len(server.handler.messages) == 1
        n.refresh_from_db()
        assert (n.status, n.reason) == (S.CANCELLED, "opted-out: comments turned off on email")
        assert http(link, "List-Unsubscribe=One-Click")[0] == 200
        assert Preference.objects.count() == 1


def test_multipart_one_click_posts_work_too(site):
    ada = make_user()
    link = unsubscribe.url(ada, "digest", "email")
    boundary = "xYzZY"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    )
    assert http(link, body, f"multipart/form-data; boundary={boundary}")[0] == 200
    assert Preference.objects.get().enabled is False


def test_a_get_only_shows_a_confirmation_and_changes_nothing(site):
    ada = make_user()
    link = unsubscribe.url(ada, "comments", "email")
    status, page = http(link)
    assert status == 200 and "Stop getting “Comments” by email?" in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page  # its button POSTs the one click
    assert not Preference.objects.exists()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature
        lambda token: signing.dumps(["1", "comments", "email"], salt="another.use", compress=False),
        lambda token: signing.dumps(["1", "comments", "email"], key="another site", salt=unsubscribe.SALT),
        lambda token: signing.dumps({"user": "1"}, salt=unsubscribe.SALT),  # signed, not a scope
        lambda token: "not-a-token",
    ],
)
def test_a_tampered_or_foreign_token_gets_400_and_writes_nothing(site, tamper):
    ada = make_user()
    token = unsubscribe.make_token(ada, "comments", "email")
    link = site.url + reverse("transmissions:unsubscribe", kwargs={"token": tamper(token)})
    assert http(link, "List-Unsubscribe=One-Click")[0] == 400
    status, page = http(link)
    assert status == 400 and "This unsubscribe link is not valid." in page
    assert not Preference.objects.exists()


def test_a_post_without_the_one_click_body_gets_400(site):
    link = unsubscribe.url(make_user(), "comments", "email")
    assert http(link, "List-Unsubscribe=Two-Clicks")[0] == 400
    assert not Preference.objects.exists()


def test_a_token_for_a_deleted_user_or_an_undeclared_category_gets_400(site):
    ada, bob = make_user(), make_user("bob")
    gone = unsubscribe.url(ada, "comments", "email")
    ada.delete()
    assert http(gone, "List-Unsubscribe=One-Click")[0] == 400
    stray = unsubscribe.url(bob, "strays", "email")  # signed by this site, but no such category
    assert http(stray, "List-Unsubscribe=One-Click")[0] == 400
    assert not Preference.objects.exists()


@pytest.mark.django_db
def test_a_token_is_scoped_to_user_category_and_channel():
    ada, bob = make_user(), make_user("bob")
    scope = unsubscribe.read_token(unsubscribe.make_token(ada, "digest", "email"))
    assert scope == unsubscribe.Scope(str(ada.pk), "digest", "email")
    assert unsubscribe.make_token(ada, "digest", "email") != unsubscribe.make_token(bob, "digest", "email")
    assert unsubscribe.make_token(ada, "digest", "email") != unsubscribe.make_token(ada, "comments", "email")


@pytest.mark.django_db
def test_no_headers_for_required_or_uncategorised_messages_or_without_a_base_url():
    ada = make_user()
    for cls in (SecurityMemo, MyEmailMessage):
        assert unsubscribe.headers(cls.trigger(ada)) == {}
    digest = DigestEmail.trigger(ada)
    assert unsubscribe.headers(digest)["List-Unsubscribe"].startswith("<https://transmissions.test/")
    with override_settings(TRANSMISSIONS_UNSUBSCRIBE_BASE_URL=None):
        assert unsubscribe.headers(digest) == {}
    with override_settings(ROOT_URLCONF="tests.urls_without_transmissions"):
        assert unsubscribe.headers(digest) == {}


@pytest.mark.django_db
def test_an_email_without_a_category_has_no_list_unsubscribe_over_smtp():
    ada = make_user()
    set_preference(ada, "digest", "email", True)
    with SMTPServer() as server, smtp(server.port):
        MyEmailMessage.trigger(ada), DigestEmail.trigger(ada)
        process_all_notifications()
        by_subject = {received["Subject"]: received for _, received in server.handler.messages}
    assert by_subject["Hello world!"]["List-Unsubscribe"] is None
    assert by_subject["Your digest"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.django_db
def test_the_template_tag_puts_the_same_link_in_the_body():
    ada = make_user()
    n = CommentEmail.trigger(ada)
    html = Template("{% load transmissions %}{% unsubscribe_url notification %}").render(
        Context({"notification": n})
    )
    assert html == unsubscribe.url_for(n)
    assert html.startswith("https://transmissions.test/notifications/unsubscribe/")
    blank = Template("{% load transmissions %}[{% unsubscribe_url n %}]").render(
        Context({"n": SecurityMemo.trigger(ada)})
    )
    assert blank == "[]"
