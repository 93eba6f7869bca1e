import logging

import pytest

from tests.messages import (
    CrashingMessage,
    DefaultMessage,
    FailingMessage,
    InvalidMessage,
    NoValidityMessage,
    TransientMessage,
)
from tests.utils import make_user
from transmissions.channels import Channel
from transmissions.channels.wrapper import Channel as WrapperChannel
from transmissions.exceptions import ChannelSendException, TransientChannelError, UnknownTriggerException
from transmissions.models import Notification

pytestmark = pytest.mark.django_db


def test_channel_builds_the_registered_message_class():
    assert Channel is WrapperChannel
    notification = DefaultMessage.trigger(make_user())
    channel = Channel(notification)
    assert type(channel.message) is DefaultMessage
    assert channel.message.notification is notification
    assert channel.notification is notification


def test_unknown_trigger_name_raises():
    notification = DefaultMessage.trigger(make_user())
    Notification.objects.filter(pk=notification.pk).update(trigger_name="gone")
    notification.refresh_from_db()
    with pytest.raises(UnknownTriggerException, match="'gone'"):
        Channel(notification)


def test_check_validity_is_the_messages_or_true_without_one():
    user = make_user()
    assert Channel(InvalidMessage.trigger(user)).check_validity() is False
    assert Channel(DefaultMessage.trigger(user)).check_validity() is True
    assert Channel(NoValidityMessage.trigger(user)).check_validity() is True


def test_send_returns_the_messages_answer():
    notification = DefaultMessage.trigger(make_user())
    assert Channel(notification).send() is None
    from tests import messages

    assert messages.sent == [("default", notification.pk)]


def test_send_wraps_other_errors_in_channel_send_exception_and_logs_them(caplog):
    channel = Channel(CrashingMessage.trigger(make_user()))
    with caplog.at_level(logging.ERROR, logger="transmissions"):
        with pytest.raises(ChannelSendException, match="RuntimeError: bug in the channel") as raised:
            channel.send()
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert "raised" in caplog.records[0].getMessage() and caplog.records[0].exc_info


def test_send_lets_channel_errors_through_as_they_are():
    user = make_user()
    with pytest.raises(ChannelSendException, match="^provider said no$"):
        Channel(FailingMessage.trigger(user)).send()
    with pytest.raises(TransientChannelError):
        Channel(TransientMessage.trigger(user)).send()


def test_types_are_0_2s_integers():
    assert Channel.Types.EMAIL == 1 and Channel.Types.SMS == 2
    assert [t.name for t in Channel.Types] == ["EMAIL", "SMS"]
