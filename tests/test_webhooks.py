"""webhooks.py: Twilio status callbacks POSTed to the view, signed with Twilio's own RequestValidator."""

import logging
import sys

import pytest
from django.test.utils import override_settings
from django.urls import reverse
from twilio.request_validator import RequestValidator

from tests.messages import WelcomeSMS
from tests.servers import TwilioStandIn
from tests.utils import make_user, processed
from transmissions.models import DeliveryEvent, Notification, Suppression

pytestmark = pytest.mark.django_db
S = Notification.Status
SID = "AC" + "0" * 32
TOKEN = "secret-token"
URL = "http://testserver/notifications/twilio/status"


@pytest.fixture(autouse=True)
def _token():
    with override_settings(TRANSMISSIONS_TWILIO_AUTH_TOKEN=TOKEN):
        yield


def callback(client, fields, token=TOKEN, url=URL, signature=None, **headers):
    """POST ``fields`` as Twilio does, signed with ``token`` for ``url`` (or with ``signature``)."""
    if signature is None:
        signature = RequestValidator(token).compute_signature(url, fields)
    if signature:
        headers["HTTP_X_TWILIO_SIGNATURE"] = signature
    return client.post(reverse("transmissions:twilio-status"), fields, **headers)


def fields(sid, status, **extra):
    return {"MessageSid": sid, "MessageStatus": status, "AccountSid": SID, "To": "+14155552671", **extra}


@pytest.fixture
def sms():
    """A welcome SMS sent through Twilio's client to the stand-in, with a status callback URL."""
    with (
        TwilioStandIn(SID, TOKEN) as api,
        override_settings(
            TRANSMISSIONS_SMS_BACKEND="transmissions.channels.twilio.TwilioSMSBackend",
            TRANSMISSIONS_TWILIO_ACCOUNT_SID=SID,
            TRANSMISSIONS_TWILIO_FROM_NUMBER="+15005550006",
            TRANSMISSIONS_TWILIO_API_URL=api.url,
            TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL=URL,
        ),
    ):
        n = processed(WelcomeSMS.trigger(make_user(phone_number="+14155552671")))
        [(_, sent, _)] = api.requests
        assert sent["StatusCallback"] == URL  # Twilio is asked to call the view
        yield n


def test_a_signed_callback_is_recorded(client, sms):
    assert sms.status == S.SUCCESSFULLY_SENT and sms.provider_message_id.startswith("SM")
    response = callback(client, fields(sms.provider_message_id, "delivered"))
    assert response.status_code == 200
    sms.refresh_from_db()
    assert sms.delivery_state == "delivered"
    [event] = sms.delivery_events.all()
    assert (event.provider, event.event_id) == ("twilio", f"{sms.provider_message_id}:delivered")
    assert event.detail["MessageStatus"] == "delivered" and event.detail["To"] == "+14155552671"


@pytest.mark.parametrize(
    "forge",
    [
        {"token": "not-the-token"},  # signed by someone else
        {"signature": ""},  # not signed
        {"url": "http://testserver/elsewhere"},  # signed for another URL
    ],
)
def test_a_forged_or_missing_signature_is_refused_and_writes_nothing(client, sms, forge, caplog):
    response = callback(client, fields(sms.provider_message_id, "undelivered", ErrorCode="30005"), **forge)
    assert response.status_code == 403
    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()
    sms.refresh_from_db()
    assert sms.delivery_state == ""
    assert "Twilio status callback refused" in caplog.text


def test_fields_changed_after_signing_are_refused(client, sms):
    signed = fields(sms.provider_message_id, "delivered")
    signature = RequestValidator(TOKEN).compute_signature(URL, signed)
    response = callback(client, {**signed, "MessageStatus": "undelivered"}, signature=signature)
    assert response.status_code == 403
    assert not DeliveryEvent.objects.exists()


def test_without_a_token_every_callback_is_refused(client, sms, caplog):
    with override_settings(TRANSMISSIONS_TWILIO_AUTH_TOKEN=None):
        assert callback(client, fields(sms.provider_message_id, "delivered")).status_code == 403
    assert "TRANSMISSIONS_TWILIO_AUTH_TOKEN is not set" in caplog.text
    assert not DeliveryEvent.objects.exists()


def test_behind_a_proxy_the_configured_url_is_the_one_signed(client, sms):
    public = "https://example.com/hooks/twilio/status"
    with override_settings(TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL=public):
        response = callback(client, fields(sms.provider_message_id, "sent"), url=public)
    assert response.status_code == 200
    sms.refresh_from_db()
    assert sms.delivery_state == "accepted"


def test_an_unknown_sid_is_answered_200_with_a_warning(client, sms, caplog):
    caplog.set_level(logging.WARNING, logger="transmissions")
    response = callback(client, fields("SM" + "9" * 32, "delivered"))
    assert response.status_code == 200
    assert not DeliveryEvent.objects.exists()
    assert f"about message SM{'9' * 32}, which no notification has" in caplog.text


def test_a_signed_request_that_is_no_status_callback_is_a_bad_request(client):
    response = callback(client, {"From": "+14155552671", "Body": "hello"})
    assert response.status_code == 400
    assert not DeliveryEvent.objects.exists()


def test_only_post(client):
    assert client.get(reverse("transmissions:twilio-status")).status_code == 405


def test_out_of_order_callbacks_and_a_retry_and_a_hard_bounce(client, sms):
    sid = sms.provider_message_id
    for status in ("sent", "undelivered", "sent", "queued"):
        extra = {"ErrorCode": "30006"} if status == "undelivered" else {}
        assert callback(client, fields(sid, status, **extra)).status_code == 200
    sms.refresh_from_db()
    # "sent" twice is stored once; the late "queued" does not take "undelivered" back.
    assert list(sms.delivery_events.order_by("pk").values_list("event_type", flat=True)) == [
        "sent",
        "undelivered",
        "queued",
    ]
    assert sms.delivery_state == "bounced"
    row = Suppression.objects.get()
    assert (row.channel, row.address) == ("sms", "+14155552671")
    assert row.reason.startswith("bounced (twilio, ") and row.reason.endswith("): Twilio error 30006")
    # The next SMS to that number is cancelled, with the reason.
    Notification.objects.filter(pk=sms.pk).update(dedup_key=None)
    n = processed(WelcomeSMS.trigger(sms.target_user))
    assert n.status == S.CANCELLED and n.reason.startswith(
        "suppressed: +14155552671 is on the sms suppression list"
    )


def test_without_the_twilio_package_callbacks_are_refused(client, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "twilio.request_validator", None)
    response = callback(client, fields("SM1", "delivered"), signature="anything")
    assert response.status_code == 403
    assert "the twilio package is not installed" in caplog.text
