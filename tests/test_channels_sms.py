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
