"""channels/inapp.py: the in-app channel and the feed."""

import pytest
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext

from tests.messages import BadgeInApp, BareInApp, CommentInApp, DefaultMessage
from tests.models import Article
from tests.utils import make_user, statements
from transmissions.channels.inapp import entry
from transmissions.models import Notification
from transmissions.registry import registry
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


def test_sending_renders_the_entry_into_the_feed():
    ada, bob = make_user(), make_user("bob")
    article = Article.objects.create(title="Fish & <chips>")
    n = CommentInApp.trigger(ada, trigger_user=bob, content=article, data={"comment": 7})
    assert list(Notification.objects.feed(ada)) == []  # not sent yet
    process_all_notifications()
    n = Notification.objects.get(pk=n.pk)
    assert n.status == S.SUCCESSFULLY_SENT
    assert n.data == {
        "comment": 7,
        "inapp": {
            "text": f'bob commented on <a href="/articles/{article.pk}/">Fish &amp; &lt;chips&gt;</a>',
            "url": f"/articles/{article.pk}/",
        },
    }
    assert list(Notification.objects.feed(ada)) == [n]


def test_the_feed_shows_entries_without_the_message_class():
    ada = make_user()
    BadgeInApp.trigger(ada, data={"badge": "gold"})
    process_all_notifications()
    n = Notification.objects.feed(ada).get()
    registry.unregister("badge-inapp")
    try:
        # A template shows it from the stored entry alone.
        html = Template("{% for n in feed %}{{ n.data.inapp.text }}{% endfor %}").render(
            Context({"feed": [Notification.objects.get(pk=n.pk)]})
        )
    finally:
        registry.register(BadgeInApp, "badge-inapp")
    assert html == "You earned the gold badge"
    assert entry(n) == {"text": "You earned the gold badge", "url": None}


def test_the_feed_keeps_entries_whose_message_class_is_gone():
    # The feed goes by the channel each row was triggered on, not by the live registry:
    # removing or renaming an in-app class must not empty its users' feeds.
    ada = make_user()
    sent = BadgeInApp.trigger(ada, data={"badge": "gold"})
    process_all_notifications()
    registry.unregister("badge-inapp")
    try:
        feed = list(Notification.objects.feed(ada))
        text = Template("{% load transmissions %}{% notification_text n %}").render(Context({"n": feed[0]}))
    finally:
        registry.register(BadgeInApp, "badge-inapp")
    assert [n.pk for n in feed] == [sent.pk]
    assert text == "You earned the gold badge"


def test_feed_is_the_users_sent_inapp_notifications_newest_first_in_one_query():
    ada, bob = make_user(), make_user("bob")
    first = BadgeInApp.trigger(ada, data={"badge": "bronze"})
    second = BadgeInApp.trigger(ada, data={"badge": "silver"})
    BadgeInApp.trigger(bob, data={"badge": "gold"})
    DefaultMessage.trigger(ada)  # sent, but not in-app
    cancelled = BadgeInApp.trigger(ada, data={"badge": "tin"})
    cancelled.cancel()
    process_all_notifications()
    with CaptureQueriesContext(connection) as ctx:
        feed = list(Notification.objects.feed(ada))
    assert [n.pk for n in feed] == [second.pk, first.pk]
    assert len(statements(ctx)) == 1
    assert [entry(n)["text"] for n in feed] == ["You earned the silver badge", "You earned the bronze badge"]
    assert ada.notifications.feed().count() == 2
    assert Notification.objects.feed().count() == 3
    assert ada.notifications.feed().unseen_count() == 2
    assert ada.notifications.feed().mark_seen() == 2
    assert ada.notifications.feed().unseen_count() == 0


def test_entry_of_a_notification_not_sent_yet_is_empty():
    n = BadgeInApp.trigger(make_user(), data={"badge": "gold"})
    assert entry(n) == {}
    n.data = ["not", "a", "dict"]
    assert entry(n) == {}


class ListBadge(BadgeInApp):
    def get_text(self):
        return "You earned a badge"


def test_storing_into_data_that_is_not_a_dict_is_a_clear_error():
    from transmissions.exceptions import ChannelSendException

    n = BadgeInApp.trigger(make_user(), data=["gold"])
    with pytest.raises(
        ChannelSendException, match="data must be a dict to hold the rendered entry, not list"
    ):
        ListBadge(n).send()
    n.refresh_from_db()
    assert n.data == ["gold"]


def test_message_without_text_is_failed(caplog):
    n = BareInApp.trigger(make_user())
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.FAILED
    assert "BareInApp must set template_name or implement get_text()" in caplog.text
