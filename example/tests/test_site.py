"""The example site's pages, in-process against the example project's settings.

Run with the browser test (.ci/run):

    python -m pytest example/tests --ds=example_project.settings
"""

import django
import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from community.messages import LikesUpdate, NewCommentEmail, NewCommentInApp, WelcomeEmail
from community.models import Comment, Post, User
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def outputs(settings, tmp_path):
    locmem = "django.core.mail.backends.locmem.EmailBackend"
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": {"BACKEND": locmem}}
    else:
        settings.EMAIL_BACKEND = locmem
    settings.SMS_FILE_PATH = tmp_path / "sms.log"


@pytest.fixture
def site():
    ada = User.objects.create_user("ada", "ada@example.com", "pw", first_name="Ada", last_name="Lovelace")
    bob = User.objects.create_user("bob", "bob@example.com", "pw", first_name="Bob")
    post = Post.objects.create(author=ada, title="Notes on queues")
    Comment.objects.create(post=post, author=bob, text="Great post!")
    WelcomeEmail.trigger(ada)
    NewCommentInApp.trigger(ada, trigger_user=bob, content=post)
    # The hourly digest email, its hour over.
    an_hour_ago = timezone.now() - NewCommentEmail.digest.window
    NewCommentEmail.trigger(ada, trigger_user=bob, content=post, datetime_scheduled=an_hour_ago)
    LikesUpdate.trigger(ada, trigger_user=bob, content=post, data={"likes": 1})
    assert process_all_notifications() == 4
    return ada, bob, post


def every_page(post, notification):
    """Every page of the example project: its own, the inbox's, the sign-in pages."""
    return [
        reverse("home"),
        reverse("post", args=[post.pk]),
        reverse("transmissions:inbox"),
        reverse("transmissions:open", args=[notification.uuid]),
        reverse("login"),
        reverse("password_change"),
        reverse("password_reset"),
    ]


def test_anonymous_visitors_get_a_page_or_the_sign_in_page(client, site):
    _, _, post = site
    notification = Notification.objects.first()
    for url in every_page(post, notification):
        response = client.get(url)
        assert response.status_code in (200, 302), url
        if response.status_code == 302:
            assert response["Location"] == f"{reverse('login')}?next={url}", url
    assert "sign in" in client.get(reverse("home")).content.decode()


def test_signed_in_pages_answer(client, site):
    ada, _, post = site
    client.force_login(ada)
    notification = Notification.objects.filter(trigger_name="comment-inapp").get()
    for url in every_page(post, notification)[:3]:
        assert client.get(url).status_code == 200, url
    assert client.get(reverse("transmissions:open", args=[notification.uuid]))["Location"] == (
        post.get_absolute_url()
    )


def test_people_are_named_the_same_way_in_the_inbox_and_on_the_post(client, site):
    ada, _, post = site
    client.force_login(ada)
    inbox = client.get(reverse("transmissions:inbox")).content.decode()
    page = client.get(reverse("post", args=[post.pk])).content.decode()
    # Both name people by username: unique, and what they sign in with.
    assert "bob commented on your post" in inbox
    assert "<strong>bob</strong>: Great post!" in page and "by ada" in page
    assert "Bob" not in inbox and "Bob" not in page
    (email,) = [m for m in mail.outbox if m.subject == "New comments on your posts"]
    first, link = email.body.split("\n\nNo more of these: ")
    assert first == "Hi Ada,\n\n1 new comment on 1 post:\n- “Notes on queues”: bob"
    assert "We emailed you about 1 new comment on 1 post." in inbox
    # The one-click unsubscribe link, the same as the List-Unsubscribe header's.
    assert email.extra_headers["List-Unsubscribe"] == f"<{link.strip()}>"
    assert link.startswith("http://127.0.0.1:8000/notifications/unsubscribe/")


def test_home_counts_unseen_notifications_with_a_plural(client, site):
    ada, _, _ = site
    client.force_login(ada)
    assert "You have 4 unseen notifications." in client.get(reverse("home")).content.decode()
    ada.notifications.exclude(trigger_name="welcome-email").mark_seen()
    assert "You have 1 unseen notification." in client.get(reverse("home")).content.decode()
