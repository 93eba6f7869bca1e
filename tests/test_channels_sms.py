"""channels/sms.py: DefaultSMSMessage and the console and locmem backends."""

import pytest
from django.test.utils import override_settings

from tests.messages import WelcomeSMS
from tests.utils import make_user
from transmissions.channels.sms import SMS, ConsoleSMSBackend, outbox
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


def test_sms_without_number_is_cancelled():
    n = WelcomeSMS.trigger(make_user(phone_number=""))
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.CANCELLED and outbox == []


@override_settings(TRANSMISSIONS_SMS_BACKEND="tests.test_channels.BrokenBackend")
def test_sms_backend_error_is_failed():
    n = WelcomeSMS.trigger(make_user(phone_number="+15005550006"))
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.FAILED


def test_console_sms_backend(capsys):
    assert ConsoleSMSBackend().send_messages([SMS("+1555", "hi", "acme")]) == 1
    assert capsys.readouterr().out == "SMS to +1555 from acme: hi\n"


def test_0_2s_attributes_to_subject_and_body(cleanup):
    from transmissions import message
    from transmissions.channels.sms import DefaultSMSMessage

    cleanup.append("sms-body")

    @message("sms-body", subject="Hello")
    class BodySMS(DefaultSMSMessage):
        def __init__(self, notification):
            super().__init__(notification)
            self.body = f"{self.subject}, {self.to.first_name}"

    user = make_user(phone_number="+15005550006", first_name="Ada")
    n = BodySMS.trigger(user)
    channel = BodySMS(n)
    assert channel.to == user and channel.subject == "Hello" and channel.create_message() == "Hello, Ada"
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == Notification.Status.SUCCESSFULLY_SENT
    assert [(sms.to, sms.body) for sms in outbox] == [("+15005550006", "Hello, Ada")]


def test_without_body_or_create_message_the_sms_fails(cleanup):
    from transmissions import message
    from transmissions.channels.sms import DefaultSMSMessage

    cleanup.append("sms-empty")

    @message("sms-empty")
    class EmptySMS(DefaultSMSMessage):
        pass

    n = EmptySMS.trigger(make_user(phone_number="+15005550006"))
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == Notification.Status.FAILED
    assert "must implement create_message() or set body" in n.reason
    assert outbox == []
