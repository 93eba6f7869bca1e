"""channels/base.py: BaseChannel's steps and what a channel sees."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.messages import MyEmailMessage
from tests.utils import make_user
from transmissions.channels.base import BaseChannel
from transmissions.models import Notification

pytestmark = pytest.mark.django_db
S = Notification.Status


class BrokenBackend:
    def send_messages(self, messages):
        raise ConnectionError("gateway down")


def test_base_channel_steps_must_be_implemented():
    n = Notification(trigger_name="x")
    channel = BaseChannel(n)
    assert channel.check_validity() is True
    with pytest.raises(NotImplementedError, match="build"):
        channel.send()
    with pytest.raises(NotImplementedError, match="transmit"):
        channel.transmit(None)


def test_channel_exposes_the_notification():
    user, bob = make_user(), make_user("bob")
    n = MyEmailMessage.trigger(user, trigger_user=bob, data={"a": 1})
    channel = MyEmailMessage(n)
    assert (channel.target_user, channel.trigger_user, channel.content, channel.data) == (
        user,
        bob,
        None,
        {"a": 1},
    )


def test_unregistered_channel_cannot_trigger():
    with pytest.raises(ImproperlyConfigured, match="BaseChannel is not registered with @message"):
        BaseChannel.trigger(make_user())
