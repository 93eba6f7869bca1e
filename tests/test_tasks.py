import logging

import pytest

from tests import messages
from tests.messages import DefaultMessage, InitRaisesMessage
from tests.utils import make_user
from transmissions import tasks
from transmissions.models import Notification

pytestmark = pytest.mark.django_db


def test_process_all_notifications_is_registered_under_its_name():
    assert tasks.process_all_notifications.name == "transmissions.tasks.process_all_notifications"


def test_process_notification_is_registered_under_0_2s_name_and_sends_once(caplog):
    assert tasks.process_notification.name == "transmissions.tasks.process_notification"
    notification = DefaultMessage.trigger(make_user())
    with caplog.at_level(logging.WARNING, logger="transmissions"):
        for _ in range(3):
            tasks.process_notification(notification.pk)
        tasks.process_notification.apply(args=(notification.pk,)).get()
        tasks.process_notification(notification.pk + 1000)
    assert messages.sent == [("default", notification.pk)]
    assert Notification.objects.get(pk=notification.pk).status == Notification.Status.SUCCESSFULLY_SENT
    assert (
        caplog.messages.count(f"Notification {notification.pk} not processed: it is successfully sent.") == 3
    )
    assert caplog.messages[-1] == f"Notification {notification.pk + 1000} not processed: it does not exist."


def test_process_notification_raises_for_a_message_that_breaks():
    notification = InitRaisesMessage.trigger(make_user())
    with pytest.raises(ValueError, match="cannot build"):
        tasks.process_notification(notification.pk)
    assert Notification.objects.get(pk=notification.pk).status == Notification.Status.BROKEN
    result = tasks.process_notification.apply(args=(notification.pk,))
    assert result.successful()  # BROKEN now: nothing more to do
