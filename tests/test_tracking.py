"""tracking.py: storing delivery events, the delivery state, the suppression list and its policy."""

import datetime

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from tests.messages import DefaultMessage, MyEmailMessage, WelcomeSMS
from tests.utils import make_user, processed, statements
from transmissions import tracking
from transmissions.conf import conf
from transmissions.escalation import EscalationPolicy
from transmissions.models import DeliveryEvent, Notification, Suppression
from transmissions.policies import active
from transmissions.preferences import PreferencePolicy
from transmissions.quiet_hours import QuietHoursPolicy
from transmissions.tracking import (
    Event,
    SuppressionPolicy,
    advance,
    jsonable,
    normalise_address,
    record,
    suppress,
)

pytestmark = pytest.mark.django_db
S = Notification.Status
T0 = datetime.datetime(2026, 5, 4, 12, 0, tzinfo=datetime.UTC)


def sent(cls, user, provider_id):
    n = cls.trigger(user)
    Notification.objects.filter(pk=n.pk).update(status=S.SUCCESSFULLY_SENT, provider_message_id=provider_id)
    return n


def event(message_id, state="delivered", event_id="e1", **kw):
    return Event(
        provider="acme",
        event_id=event_id,
        event_type=kw.pop("event_type", state),
        state=state,
        message_id=message_id,
        timestamp=kw.pop("timestamp", T0),
        **kw,
    )


def test_suppression_is_the_default_policy_and_a_project_list_replaces_it():
    assert conf.TRANSMISSIONS_POLICIES == [
        "transmissions.tracking.SuppressionPolicy",
        "transmissions.preferences.PreferencePolicy",
        "transmissions.escalation.EscalationPolicy",
        "transmissions.quiet_hours.QuietHoursPolicy",
    ]
    assert [type(p) for p in active()] == [
        SuppressionPolicy,
        PreferencePolicy,
        EscalationPolicy,
        QuietHoursPolicy,
    ]
    with override_settings(TRANSMISSIONS_POLICIES=[]):
        assert active() == []


def test_record_finds_the_newest_notification_with_the_id(user):
    old, new = sent(DefaultMessage, user, "dup"), sent(DefaultMessage, user, "dup")
    done = record(event("dup"))
    assert done.notification.pk == new.pk and done.event.notification_id == new.pk
    assert not DeliveryEvent.objects.filter(notification=old).exists()


def test_record_of_an_unknown_id_writes_nothing(user):
    sent(DefaultMessage, user, "known")
    done = record(event("unknown", suppress=True, address="ada@example.com"))
    assert done == tracking.Recorded()
    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()


def test_record_of_an_empty_id_finds_no_notification_and_writes_nothing(user):
    """'' is what every notification not sent yet holds: no event belongs to them (and on
    PostgreSQL the look-up's index leaves those rows out, migration 0016)."""
    DefaultMessage.trigger(user)
    done = record(event("", suppress=True, address="ada@example.com"))
    assert done == tracking.Recorded()
    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()


def test_the_raw_detail_and_long_texts_are_stored_as_they_fit(user):
    sent(DefaultMessage, user, "m")
    raw = QueryDict("a=1&a=2&b=x")
    done = record(event("m", description="d" * 400, detail=raw, address="x" * 300))
    stored = DeliveryEvent.objects.get(pk=done.event.pk)
    assert stored.detail == {"a": ["1", "2"], "b": "x"}
    assert len(stored.description) == 255 and stored.description.endswith("…")
    assert len(stored.address) == 255


def test_jsonable():
    assert jsonable(None) == {}
    assert jsonable({"when": T0}) == {"when": "2026-05-04 12:00:00+00:00"}
    circular = []
    circular.append(circular)
    assert jsonable(circular) == {"repr": "[[...]]"}


def test_advance_is_one_conditional_update(user):
    n = sent(DefaultMessage, user, "m")
    with CaptureQueriesContext(connection) as ctx:
        assert advance(n, "opened", T0) is True
    assert len(statements(ctx)) == 1
    assert advance(n, "delivered", T0 + datetime.timedelta(hours=1)) is False
    n.refresh_from_db()
    assert (n.delivery_state, n.delivery_state_at) == ("opened", T0)
    assert advance(n, "complained", T0) is True


def test_suppress_once_per_channel_and_address(user, caplog):
    first = suppress("email", " Ada@Example.COM ", "complained")
    assert first.address == "ada@example.com"
    assert "Suppressed ada@example.com on email: complained." in caplog.text
    assert suppress("email", "ada@example.com", "bounced again") is None
    assert suppress("sms", "+14155552671", "undelivered").channel == "sms"
    assert Suppression.objects.count() == 2
    assert normalise_address("sms", " +14155552671 ") == "+14155552671"


def test_a_suppressed_number_cancels_the_sms(user):
    suppress("sms", "+15005550006", "bounced (twilio, 2026-05-04): Twilio error 30005")
    n = processed(WelcomeSMS.trigger(user))
    assert n.status == S.CANCELLED
    assert (
        n.reason == "suppressed: +15005550006 is on the sms suppression list: "
        "bounced (twilio, 2026-05-04): Twilio error 30005"
    )
    # The email address of the same user is not suppressed.
    assert processed(MyEmailMessage.trigger(user)).status == S.SUCCESSFULLY_SENT


def test_a_project_that_sets_its_policies_chooses_its_own(user):
    suppress("email", user.email, "complained")
    with override_settings(TRANSMISSIONS_POLICIES=[]):
        assert processed(MyEmailMessage.trigger(user)).status == S.SUCCESSFULLY_SENT
    with override_settings(TRANSMISSIONS_POLICIES=["tests.policies.ComplaintsOnlyForMarketing"]):
        assert processed(MyEmailMessage.trigger(user)).status == S.SUCCESSFULLY_SENT
        suppress("email", "bob@example.com", "bounced")
        n = processed(MyEmailMessage.trigger(make_user("bob")))
        assert (n.status, n.reason) == (
            S.CANCELLED,
            "suppressed: bob@example.com is on the email suppression list: bounced",
        )


@pytest.mark.parametrize("size", [3, 30])
def test_the_policy_costs_one_query_per_batch_or_none(size):
    users = [make_user(f"u{i}", phone_number="+15005550006") for i in range(size)]
    suppress("email", "u0@example.com", "bounced")
    for user in users:
        MyEmailMessage.trigger(user)
        WelcomeSMS.trigger(user)
    batch = Notification.objects.claim(100)
    assert batch[0].target_user  # the batch's users: one query, which sending costs anyway
    policy = SuppressionPolicy()
    with CaptureQueriesContext(connection) as ctx:
        policy.prepare(batch)
    assert len(statements(ctx)) == 1
    held = {n.pk for n in batch if policy.check(n, None) is not None}
    assert held == {
        n.pk for n in batch if n.trigger_name == "hello-world-message" and n.target_user_id == users[0].pk
    }
    # A batch without an address (a channel of the project's own) costs nothing.
    other = [DefaultMessage.trigger(users[0])]
    with CaptureQueriesContext(connection) as ctx:
        policy.prepare(other)
    assert statements(ctx) == [] and policy.check(other[0], DefaultMessage) is None


def test_a_class_that_cannot_be_built_is_left_to_delivery(user):
    n = Notification.objects.get(pk=processed(DefaultMessage.trigger(user)).pk)
    for name in ("init-raises", "no-validity", "gone-away"):
        n.trigger_name = name
        assert SuppressionPolicy().address(n) is None


def test_orphaned_events(user):
    keep, gone = sent(DefaultMessage, user, "keep"), sent(DefaultMessage, user, "gone")
    record(event("keep", event_id="k"))
    record(event("gone", event_id="g"))
    Notification.objects.filter(pk=gone.pk).delete()
    assert list(DeliveryEvent.objects.orphaned().values_list("event_id", flat=True)) == ["g"]
    assert DeliveryEvent.objects.filter(notification=keep).count() == 1


def test_str():
    assert str(Suppression(channel="email", address="a@b.c")) == "a@b.c (email)"
    assert str(DeliveryEvent(provider="twilio", event_type="delivered", event_id="SM1:delivered")) == (
        "twilio delivered (SM1:delivered)"
    )
    assert timezone.is_aware(T0)


def test_a_batchs_suppressions_are_looked_up_in_chunks_within_the_parameter_limit(monkeypatch):
    """Many addresses on two channels, more than a statement may bind: each suppressed one (and
    only those) cancels its notification, on its channel only."""
    from transmissions import db, worker

    users = [make_user(f"u{i}", email=f"u{i}@example.com", phone_number=f"+1555010{i}") for i in range(6)]
    for user in users[::2]:
        suppress("email", user.email, "bounced")
    suppress("sms", users[1].phone_number, "undelivered")
    emails = [MyEmailMessage.trigger(user) for user in users]
    texts = [WelcomeSMS.trigger(user) for user in users]
    dialect = db.dialect(connection.alias, Notification)
    monkeypatch.setattr(type(dialect), "max_params", lambda self: 4)
    worker.process_all_notifications()
    cancelled = {n.pk for n in Notification.objects.filter(status=S.CANCELLED)}
    assert cancelled == {emails[0].pk, emails[2].pk, emails[4].pk, texts[1].pk}
    assert "on the email suppression list: bounced" in Notification.objects.get(pk=emails[2].pk).reason
