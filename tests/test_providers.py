"""providers.py: emails sent through anymail's test backend, then anymail's ``tracking`` signal fired
as its webhook views fire it; Twilio's status callback fields."""

import datetime
import subprocess
import sys
import textwrap

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.core import mail
from django.http import QueryDict
from django.test.utils import override_settings
from django.utils import timezone

from tests.messages import MyEmailMessage, TemplatedEmail
from tests.utils import email_settings, make_user, processed
from transmissions import signals
from transmissions.models import DeliveryEvent, Notification, Suppression
from transmissions.providers import on_anymail_tracking, soft_bounce, twilio_event
from transmissions.worker import process_all_notifications

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("anymail_backend")]
S = Notification.Status
T0 = datetime.datetime(2026, 5, 4, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def anymail_backend():
    with override_settings(**email_settings("anymail.backends.test.EmailBackend")):
        yield


@pytest.fixture
def recorded():
    heard = []

    def listener(sender, event, notification, state_changed, suppression, **kwargs):
        heard.append((event.event_type, notification.pk, state_changed, suppression))

    signals.delivery_event_recorded.connect(listener)
    yield heard
    signals.delivery_event_recorded.disconnect(listener)


def sent_email(user=None, cls=MyEmailMessage):
    """Trigger and process one email to ``user`` (ada by default); return the notification."""
    n = cls.trigger(user or make_user())
    return processed(n)


def fire(event_type, message_id, *, event_id=None, at=T0, recipient="ada@example.com", esp="Test", **kw):
    """Send anymail's tracking signal, as its webhook views do after parsing an ESP's POST."""
    event = AnymailTrackingEvent(
        event_type=event_type,
        message_id=message_id,
        event_id=event_id,
        timestamp=at,
        recipient=recipient,
        **kw,
    )
    tracking.send(sender=object, event=event, esp_name=esp)
    return event


def state(n):
    n.refresh_from_db()
    return n.delivery_state


def test_the_receiver_is_connected_once_anymail_is_installed():
    # No code of the project's: AppConfig.ready() connected it (disconnect() says it was).
    assert tracking.disconnect(dispatch_uid="transmissions.tracking")
    try:
        n = sent_email()
        fire("delivered", n.provider_message_id, event_id="unheard")
        assert state(n) == ""
    finally:
        tracking.connect(on_anymail_tracking, dispatch_uid="transmissions.tracking")
    fire("delivered", n.provider_message_id, event_id="heard")
    assert state(n) == "delivered"


def test_delivered_is_recorded_on_the_notification(recorded):
    n = sent_email()
    [email] = mail.outbox
    assert n.provider_message_id == str(email.anymail_status.message_id) == "0"
    fire("delivered", n.provider_message_id, event_id="ev-1", esp_event={"raw": [1, "a"]})
    n.refresh_from_db()
    assert (n.delivery_state, n.delivery_state_at) == ("delivered", T0)
    [event] = n.delivery_events.all()
    assert (event.provider, event.event_id, event.event_type, event.state) == (
        "test",
        "ev-1",
        "delivered",
        "delivered",
    )
    assert (event.timestamp, event.address, event.detail) == (T0, "ada@example.com", {"raw": [1, "a"]})
    assert recorded == [("delivered", n.pk, True, None)]


def test_a_bounce_suppresses_the_address_and_the_next_email_is_cancelled_with_the_reason(recorded):
    ada = make_user()
    first = sent_email(ada)
    fire("bounced", first.provider_message_id, event_id="b-1", mta_response="550 5.1.1 no such user")
    assert state(first) == "bounced"
    [row] = Suppression.objects.all()
    assert (row.channel, row.address, row.event.event_id) == ("email", "ada@example.com", "b-1")
    assert row.reason == "bounced (test, 2026-05-04): 550 5.1.1 no such user"
    assert recorded == [("bounced", first.pk, True, row)]

    mail.outbox.clear()
    later, other = MyEmailMessage.trigger(ada), TemplatedEmail.trigger(make_user("bob"))
    process_all_notifications()
    later.refresh_from_db()
    other.refresh_from_db()
    assert (later.status, later.provider_message_id) == (S.CANCELLED, "")
    assert later.reason == (
        "suppressed: ada@example.com is on the email suppression list: "
        "bounced (test, 2026-05-04): 550 5.1.1 no such user"
    )
    assert [email.to for email in mail.outbox] == [["bob@example.com"]]
    assert other.status == S.SUCCESSFULLY_SENT

    # Cleared (the admin's action deletes the row): sent again.
    row.delete()
    again = processed(MyEmailMessage.trigger(ada))
    assert again.status == S.SUCCESSFULLY_SENT


def test_a_new_address_is_not_suppressed():
    ada = make_user(email="Ada@Example.com")
    fire("complained", sent_email(ada).provider_message_id, event_id="c-1", recipient="Ada@Example.com")
    assert Suppression.objects.get().address == "ada@example.com"  # compared in lower case
    assert processed(MyEmailMessage.trigger(ada)).status == S.CANCELLED
    ada.email = "ada.new@example.com"
    ada.save()
    assert processed(MyEmailMessage.trigger(ada)).status == S.SUCCESSFULLY_SENT


def test_a_webhook_delivered_twice_is_stored_once(recorded):
    n = sent_email()
    fire("delivered", n.provider_message_id, event_id="same")
    fire("delivered", n.provider_message_id, event_id="same", at=T0 + datetime.timedelta(hours=1))
    assert DeliveryEvent.objects.filter(notification=n).count() == 1
    assert len(recorded) == 1
    n.refresh_from_db()
    assert n.delivery_state_at == T0


def test_an_event_without_an_id_gets_one_from_its_content():
    n = sent_email()
    for _ in range(2):
        fire("opened", n.provider_message_id, event_id=None)
    fire("opened", n.provider_message_id, event_id=None, at=T0 + datetime.timedelta(minutes=5))
    ids = list(DeliveryEvent.objects.values_list("event_id", flat=True))
    assert len(ids) == 2 and all(i.startswith("derived:") for i in ids)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        # An older event arriving late never moves it back ...
        (("delivered", 2), ("deferred", 1), "delivered"),
        (("opened", 3), ("delivered", 2), "opened"),
        (("clicked", 4), ("opened", 3), "clicked"),
        # ... nor a newer one of an earlier stage (a second open after a click) ...
        (("clicked", 4), ("opened", 5), "clicked"),
        # ... while a later stage moves it, whatever the order of arrival.
        (("delivered", 2), ("bounced", 3), "bounced"),
        (("deferred", 1), ("delivered", 2), "delivered"),
        (("opened", 3), ("complained", 4), "complained"),
        # An ESP's click tracker may stamp an open a moment before its MTA's "delivered".
        (("delivered", 5), ("opened", 4), "opened"),
    ],
)
def test_out_of_order_events_never_move_the_state_backwards(first, second, expected):
    n = sent_email()
    for i, (event_type, minute) in enumerate((first, second)):
        fire(event_type, n.provider_message_id, event_id=f"e{i}", at=T0 + datetime.timedelta(minutes=minute))
    assert state(n) == expected
    assert n.delivery_events.count() == 2  # both kept for the timeline


def test_an_event_about_an_email_no_notification_sent_is_ignored(caplog):
    caplog.set_level("DEBUG", logger="transmissions")
    sent_email()
    fire("bounced", "someone-elses-id", event_id="x")
    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()
    assert "No notification has the Test message id 'someone-elses-id'" in caplog.text


@pytest.mark.parametrize("event_type", ["unsubscribed", "autoresponded", "unknown", "inbound"])
def test_events_that_are_not_about_delivery_are_not_stored(event_type):
    n = sent_email()
    fire(event_type, n.provider_message_id, event_id="u")
    assert not DeliveryEvent.objects.exists()
    assert state(n) == ""


@pytest.mark.parametrize(
    ("event_type", "kw", "suppressed"),
    [
        ("bounced", {}, True),
        ("complained", {}, True),
        ("rejected", {"reject_reason": "bounced"}, True),
        ("rejected", {"reject_reason": "invalid"}, True),
        ("rejected", {"reject_reason": "blocked"}, False),
        ("failed", {}, False),
        ("deferred", {}, False),
        # Soft bounces that anymail reports as "bounced": Postmark, Brevo, SparkPost, SES.
        ("bounced", {"esp_event": {"Type": "SoftBounce"}}, False),
        ("bounced", {"esp_event": {"event": "soft_bounce"}}, False),
        ("bounced", {"esp_event": {"msys": {"message_event": {"bounce_class": "22"}}}}, False),
        ("bounced", {"esp_event": {"msys": {"message_event": {"bounce_class": "10"}}}}, True),
        ("bounced", {"description": "Transient: MailboxFull"}, False),
        ("bounced", {"description": "Permanent: NoEmail"}, True),
        ("bounced", {"reject_reason": "timed_out"}, False),
    ],
)
def test_which_events_suppress_the_address(event_type, kw, suppressed):
    n = sent_email()
    fire(event_type, n.provider_message_id, event_id="s", **kw)
    assert Suppression.objects.exists() is suppressed


def test_the_signal_is_sent_only_when_someone_listens_and_the_state_says_it(recorded):
    n = sent_email()
    fire("opened", n.provider_message_id, event_id="o")
    fire("delivered", n.provider_message_id, event_id="d")
    assert recorded == [("opened", n.pk, True, None), ("delivered", n.pk, False, None)]


def test_the_receiver_returns_what_it_did():
    n = sent_email()
    event = AnymailTrackingEvent(event_type="clicked", message_id=n.provider_message_id, event_id="r")
    done = on_anymail_tracking(object, event, "SendGrid")
    assert done.notification.pk == n.pk and done.state_changed
    assert done.event.provider == "sendgrid" and done.event.timestamp is not None
    assert (
        on_anymail_tracking(object, AnymailTrackingEvent(event_type="clicked", message_id=None), "x") is None
    )


def test_soft_bounce_reads_only_what_is_there():
    event = AnymailTrackingEvent(event_type="bounced", esp_event="not a dict", description=None)
    assert soft_bounce(event) is False


def test_a_twilio_status_callback_becomes_an_event():
    params = QueryDict(mutable=True)
    params.update({"MessageSid": "SM" + "1" * 32, "MessageStatus": "undelivered", "To": "+14155552671"})
    params.update({"ErrorCode": "30005"})
    event = twilio_event(params)
    assert (event.provider, event.event_id, event.state) == ("twilio", f"SM{'1' * 32}:undelivered", "bounced")
    assert (event.address, event.description, event.suppress) == ("+14155552671", "Twilio error 30005", True)
    assert event.timestamp <= timezone.now()
    # A carrier's temporary refusal does not suppress the number.
    params["ErrorCode"] = "30003"
    assert twilio_event(params).suppress is False
    # The old field names of Twilio's SMS API are read too.
    assert twilio_event({"SmsSid": "SM2", "SmsStatus": "delivered"}).state == "delivered"
    assert twilio_event({"MessageSid": "SM3", "MessageStatus": "receiving"}) is None
    assert twilio_event({"MessageStatus": "sent"}) is None


WITHOUT_ANYMAIL = textwrap.dedent(
    """
    import sys

    # None in sys.modules: importing anymail raises ImportError, as when it is not installed.
    sys.modules["anymail"] = None

    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "transmissions"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
    )
    django.setup()

    import transmissions.providers
    import transmissions.tracking
    import transmissions.webhooks
    from django.core.management import call_command

    call_command("check")
    loaded = sorted(m for m, module in sys.modules.items() if module and m.split(".")[0] == "anymail")
    assert not loaded, loaded
    print("ok")
    """
)


def test_the_core_works_without_anymail():
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_ANYMAIL], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "ok"
