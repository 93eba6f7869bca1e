import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import override_settings

from tests.messages import MyEmailMessage, WelcomeSMS
from tests.utils import make_user
from transmissions.channels.base import BaseChannel
from transmissions.channels.sms import SMS, ConsoleSMSBackend, outbox
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


def test_email_without_address_is_cancelled():
    user = make_user(email="")
    n = MyEmailMessage.trigger(user)
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.CANCELLED and mail.outbox == []


def test_sms_without_number_is_cancelled():
    n = WelcomeSMS.trigger(make_user(phone_number=""))
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.CANCELLED and outbox == []


class BrokenBackend:
    def send_messages(self, messages):
        raise ConnectionError("gateway down")


@override_settings(TRANSMISSIONS_SMS_BACKEND="tests.test_channels.BrokenBackend")
def test_sms_backend_error_is_failed():
    n = WelcomeSMS.trigger(make_user(phone_number="+15005550006"))
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.FAILED


def test_console_sms_backend(capsys):
    assert ConsoleSMSBackend().send_messages([SMS("+1555", "hi", "acme")]) == 1
    assert capsys.readouterr().out == "SMS to +1555 from acme: hi\n"


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
