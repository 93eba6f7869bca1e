"""The Twilio SMS backend, on Twilio's own client, against a stand-in of its Messages API on loopback."""

import logging

import pytest
from django.test.utils import override_settings

from tests.messages import WelcomeSMS
from tests.servers import SilentServer, TwilioStandIn, closed_port
from tests.utils import make_user
from transmissions.channels.sms import SMS
from transmissions.channels.twilio import TwilioSMSBackend
from transmissions.exceptions import ChannelSendException, TransientChannelError
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status
SID = "AC" + "0" * 32
TOKEN = "secret-token"
SERVICE = "MG" + "1" * 32


def twilio(url, **extra):
    settings = {
        "TRANSMISSIONS_SMS_BACKEND": "transmissions.channels.twilio.TwilioSMSBackend",
        "TRANSMISSIONS_TWILIO_ACCOUNT_SID": SID,
        "TRANSMISSIONS_TWILIO_AUTH_TOKEN": TOKEN,
        "TRANSMISSIONS_TWILIO_FROM_NUMBER": "+15005550006",
        "TRANSMISSIONS_TWILIO_API_URL": url,
        "TRANSMISSIONS_TWILIO_TIMEOUT": 2,
    }
    return override_settings(**{**settings, **extra})


@pytest.fixture
def api():
    with TwilioStandIn(SID, TOKEN) as api, twilio(api.url):
        yield api


def status(n):
    n.refresh_from_db()
    return n.status


def test_sms_is_posted_to_twilio_and_its_sid_recorded(api, caplog):
    caplog.set_level(logging.INFO, logger="transmissions")
    user = make_user(first_name="Ada", phone_number="+14155552671")
    n = WelcomeSMS.trigger(user)
    assert process_all_notifications() == 1
    assert status(n) == S.SUCCESSFULLY_SENT
    [(path, fields, headers)] = api.requests
    assert path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert fields == {
        "To": "+14155552671",
        "From": "+15005550006",
        "Body": "Hey Ada, welcome to transmissions!",
    }
    assert headers["User-Agent"].startswith("twilio-python/")
    assert f"Sent notification {n.pk} (welcome-sms) as SMS SM" in caplog.text


def test_channel_keeps_the_provider_sid(api):
    n = WelcomeSMS.trigger(make_user(phone_number="+14155552671"))
    channel = WelcomeSMS(n)
    sms = channel.send()
    assert channel.provider_message_id == sms.provider_message_id
    assert channel.provider_message_id.startswith("SM") and len(channel.provider_message_id) == 34


def test_messaging_service_instead_of_a_number(api):
    with override_settings(
        TRANSMISSIONS_TWILIO_FROM_NUMBER=None, TRANSMISSIONS_TWILIO_MESSAGING_SERVICE_SID=SERVICE
    ):
        TwilioSMSBackend().send(SMS("+14155552671", "hi"))
    [(_, fields, _)] = api.requests
    assert fields == {"To": "+14155552671", "MessagingServiceSid": SERVICE, "Body": "hi"}


def test_message_sender_wins_over_the_setting(api):
    TwilioSMSBackend().send(SMS("+14155552671", "hi", sender="ACME"))
    assert api.requests[0][1]["From"] == "ACME"


def test_invalid_number_error_21211_is_failed(api, caplog):
    n = WelcomeSMS.trigger(make_user(phone_number=TwilioStandIn.INVALID_NUMBER))
    process_all_notifications()
    assert status(n) == S.FAILED
    assert (
        "Twilio answered 400, error 21211: Unable to create record: Invalid 'To' Phone Number" in caplog.text
    )


def test_bad_credentials_are_failed(api):
    with override_settings(TRANSMISSIONS_TWILIO_AUTH_TOKEN="wrong"):
        with pytest.raises(ChannelSendException, match="401, error 20003") as info:
            TwilioSMSBackend().send(SMS("+14155552671", "hi"))
    assert not isinstance(info.value, TransientChannelError)


@pytest.mark.parametrize(("mode", "code"), [("error", "500, error 20500"), ("rate", "429, error 20429")])
def test_server_error_and_rate_limit_are_retried(api, caplog, mode, code):
    api.mode = mode
    n = WelcomeSMS.trigger(make_user(phone_number="+14155552671"))
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.CREATED and n.attempts == 1 and n.datetime_processed is None
    assert f"Twilio answered {code}" in caplog.text
    # The next attempt, once the provider is back, sends it.
    api.mode = "ok"
    Notification.objects.filter(pk=n.pk).update(datetime_scheduled=n.datetime_created)
    process_all_notifications()
    assert status(n) == S.SUCCESSFULLY_SENT and len(api.requests) == 2


def test_timeout_is_retried(api):
    api.mode, api.delay = "slow", 1.5
    with override_settings(TRANSMISSIONS_TWILIO_TIMEOUT=0.3):
        n = WelcomeSMS.trigger(make_user(phone_number="+14155552671"))
        with pytest.raises(TransientChannelError, match="ReadTimeout"):
            WelcomeSMS(n).send()


def test_hung_server_and_refused_connection_are_retried():
    with (
        SilentServer() as silent,
        twilio(f"http://127.0.0.1:{silent.port}", TRANSMISSIONS_TWILIO_TIMEOUT=0.3),
    ):
        with pytest.raises(TransientChannelError, match="Timeout"):
            TwilioSMSBackend().send(SMS("+14155552671", "hi"))
    with twilio(f"http://127.0.0.1:{closed_port()}"):
        n = WelcomeSMS.trigger(make_user(phone_number="+14155552671"))
        process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.CREATED and n.attempts == 1


@pytest.mark.parametrize("number", ["", "4155552671", "+0155552671", "+1 415 555 2671", "+1234567890123456"])
def test_numbers_not_in_e164_are_cancelled_without_a_request(api, number):
    n = WelcomeSMS.trigger(make_user(phone_number=number))
    process_all_notifications()
    assert status(n) == S.CANCELLED and api.requests == []


class OfficePhoneSMS(WelcomeSMS):
    def get_phone_number(self):
        return "+44" + self.target_user.phone_number.lstrip("0")


def test_phone_number_comes_from_one_overridable_method(api):
    n = WelcomeSMS.trigger(make_user(phone_number="07700900123"))
    channel = OfficePhoneSMS(n)
    assert channel.check_validity() is True
    channel.send()
    assert api.requests[0][1]["To"] == "+447700900123"
