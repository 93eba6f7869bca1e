"""The documented signals: notifications_created and notification_finished."""

import pytest

from tests.messages import DefaultMessage, FailingMessage, InvalidMessage, TriggerOnceMessage
from tests.utils import make_user
from transmissions import signals
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


@pytest.fixture
def heard():
    seen = []

    def created(sender, notifications, **kwargs):
        seen.append(("created", sender, [n.pk for n in notifications]))

    def finished(sender, notification, status, reason, result, **kwargs):
        seen.append(("finished", sender, notification.pk, status, bool(reason)))

    signals.notifications_created.connect(created)
    signals.notification_finished.connect(finished)
    yield seen
    signals.notifications_created.disconnect(created)
    signals.notification_finished.disconnect(finished)


def test_created_once_per_call_with_the_rows(heard):
    ada, bob = make_user(), make_user("bob")
    one = DefaultMessage.trigger(ada)
    many = TriggerOnceMessage.trigger_many([ada, bob])
    assert TriggerOnceMessage.trigger(ada) is None  # refused: no signal
    assert heard == [
        ("created", DefaultMessage, [one.pk]),
        ("created", TriggerOnceMessage, [n.pk for n in many]),
    ]


def test_finished_after_the_outcome_is_written(heard):
    ada = make_user()
    sent, failed, cancelled = (
        DefaultMessage.trigger(ada),
        FailingMessage.trigger(ada),
        InvalidMessage.trigger(ada),
    )
    statuses = {}

    def check(sender, notification, status, **kwargs):
        statuses[notification.pk] = (Notification.objects.get(pk=notification.pk).status, status)

    signals.notification_finished.connect(check)
    try:
        heard.clear()
        process_all_notifications()
    finally:
        signals.notification_finished.disconnect(check)
    assert sorted(heard, key=lambda h: h[2]) == sorted(
        [
            ("finished", DefaultMessage, sent.pk, S.SUCCESSFULLY_SENT, False),
            ("finished", FailingMessage, failed.pk, S.FAILED, True),
            ("finished", InvalidMessage, cancelled.pk, S.CANCELLED, True),
        ],
        key=lambda h: h[2],
    )
    # The row already holds the outcome the signal reports.
    assert all(row == told for row, told in statuses.values())


def test_unregistered_trigger_name_is_sent_with_the_model_as_sender(heard):
    ada = make_user()
    n = DefaultMessage.trigger(ada)
    Notification.objects.filter(pk=n.pk).update(trigger_name="gone-away")
    heard.clear()
    process_all_notifications()
    assert heard == [("finished", Notification, n.pk, S.BROKEN, True)]
