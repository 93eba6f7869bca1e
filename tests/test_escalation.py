"""escalation.py: one event through several channels, a row per step, cancelled once seen."""

import datetime

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests import messages
from tests.messages import AlertPrimary, OnceInApp, ReplyInApp, alert, latest, once, reply
from tests.models import Article
from tests.utils import make_user, statements
from transmissions import TriggerBehavior, message
from transmissions.channels import sms
from transmissions.channels.base import BaseChannel
from transmissions.channels.email import DefaultEmailMessage
from transmissions.channels.push import PushMessage
from transmissions.escalation import FAILED, Escalation, EscalationPolicy, Step, check_escalations
from transmissions.exceptions import AlreadyRegistered, InvalidTrigger, MessageRegistrationError
from transmissions.models import Notification
from transmissions.preferences import set_preference
from transmissions.registry import escalations, registry
from transmissions.views import inbox_queryset
from transmissions.worker import process_all_notifications, run

pytestmark = pytest.mark.django_db
S = Notification.Status
MIN = datetime.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _clean_outboxes():
    messages.sent.clear()
    sms.outbox.clear()
    mail.outbox = []


def at(start, minutes):
    """Travel to ``minutes`` after ``start`` and run the worker there."""
    with time_machine.travel(start + minutes * MIN, tick=False):
        return run(detail=True)


def states(steps):
    rows = Notification.objects.in_bulk([n.pk for n in steps])
    return [(rows[n.pk].trigger_name, S(rows[n.pk].status).name) for n in steps]


def test_trigger_writes_every_step_at_once_sharing_one_id():
    ada = make_user()
    start = timezone.now()
    steps = reply.trigger(ada, data={"post": 3}, datetime_scheduled=start)
    assert [n.trigger_name for n in steps] == ["reply-inapp", "reply-push", "reply-sms", "reply-email"]
    assert [n.channel for n in steps] == ["inapp", "mobile", "sms", "email"]
    assert len({n.escalation for n in steps}) == 1 and steps[0].escalation
    assert [n.datetime_scheduled - start for n in steps] == [0 * MIN, 15 * MIN, 30 * MIN, 60 * MIN]
    assert Notification.objects.filter(escalation=steps[0].escalation).count() == 4
    assert Notification.objects.get(pk=steps[3].pk).data == {"post": 3}


def test_seen_before_the_push_is_due_sends_only_the_inapp_entry():
    ada = make_user(phone_number="+14155552671")
    start = timezone.now()
    steps = reply.trigger(ada, datetime_scheduled=start)
    at(start, 0)
    assert states(steps)[0] == ("reply-inapp", "SUCCESSFULLY_SENT")
    with time_machine.travel(start + 10 * MIN, tick=False):
        Notification.objects.get(pk=steps[0].pk).mark_seen()
    for minutes in (15, 30, 60, 120):
        at(start, minutes)
    assert [s for _, s in states(steps)] == ["SUCCESSFULLY_SENT", "CANCELLED", "CANCELLED", "CANCELLED"]
    assert messages.sent == [] and sms.outbox == [] and mail.outbox == []
    cancelled = Notification.objects.held("seen").filter(escalation=steps[0].escalation)
    assert cancelled.count() == 3
    assert cancelled.first().reason == (
        f"seen: step reply-inapp (notification {steps[0].pk}) was seen before this step was due"
    )


def test_unseen_goes_on_push_at_15_minutes_sms_skipped_without_a_phone_email_at_an_hour():
    ada = make_user()  # no phone number
    start = timezone.now()
    steps = reply.trigger(ada, datetime_scheduled=start)
    at(start, 0)
    at(start, 14)
    assert messages.sent == []
    at(start, 15)
    assert messages.sent == [("reply-push", steps[1].pk)]
    summary = at(start, 30)
    assert summary.counts["cancelled"] == 1
    sms_row = Notification.objects.get(pk=steps[2].pk)
    assert sms_row.status == S.CANCELLED and "no phone number" in sms_row.reason
    at(start, 59)
    assert mail.outbox == []
    at(start, 60)
    assert [m.to for m in mail.outbox] == [[ada.email]]
    assert [s for _, s in states(steps)] == [
        "SUCCESSFULLY_SENT",
        "SUCCESSFULLY_SENT",
        "CANCELLED",
        "SUCCESSFULLY_SENT",
    ]


def test_with_a_phone_the_sms_step_is_sent():
    ada = make_user(phone_number="+14155552671")
    start = timezone.now()
    steps = reply.trigger(ada, datetime_scheduled=start)
    for minutes in (0, 15, 30):
        at(start, minutes)
    assert [m.to for m in sms.outbox] == ["+14155552671"] or len(sms.outbox) == 1
    assert states(steps)[2] == ("reply-sms", "SUCCESSFULLY_SENT")


def test_cancelling_the_event_cancels_every_waiting_step_in_one_update():
    ada = make_user()
    start = timezone.now()
    steps = reply.trigger(ada, datetime_scheduled=start)
    at(start, 0)
    with CaptureQueriesContext(connection) as ctx:
        assert reply.cancel(steps, reason="the reply was deleted") == 3
    assert len(statements(ctx)) == 1
    for minutes in (15, 30, 60):
        at(start, minutes)
    assert messages.sent == [] and mail.outbox == []
    assert set(
        Notification.objects.filter(pk__in=[n.pk for n in steps[1:]]).values_list("reason", flat=True)
    ) == {"the reply was deleted"}
    assert reply.cancel([]) == 0
    # From a step: the model's method does the same.
    again = reply.trigger(ada)
    assert Notification.objects.get(pk=again[0].pk).cancel_escalation() == 4
    assert Notification.objects.filter(escalation=again[0].escalation, status=S.CANCELLED).count() == 4


def test_marking_seen_cancels_the_later_steps_in_one_update(caplog):
    ada = make_user()
    steps = reply.trigger(ada)
    process_all_notifications()
    entry = Notification.objects.get(pk=steps[0].pk)
    with CaptureQueriesContext(connection) as ctx, caplog.at_level("INFO", logger="transmissions"):
        assert entry.mark_seen() == 3  # the steps it cancelled
    assert f"Cancelled 3 waiting escalation step(s): seen: step reply-inapp (notification {entry.pk})" in (
        caplog.text
    )
    # The seen UPDATE and the cancelling UPDATE, nothing else.
    assert len(statements(ctx)) == 2
    assert Notification.objects.filter(escalation=entry.escalation, status=S.CANCELLED).count() == 3
    with CaptureQueriesContext(connection) as ctx:
        assert entry.mark_seen() == 0  # already seen: nothing
    assert statements(ctx) == []


def test_the_inbox_marking_its_feed_seen_cancels_the_later_steps(caplog):
    ada, bob = make_user(), make_user("bob")
    mine, theirs = reply.trigger(ada), reply.trigger(bob)
    process_all_notifications()
    with CaptureQueriesContext(connection) as ctx, caplog.at_level("INFO", logger="transmissions"):
        assert ada.notifications.feed().mark_seen() == 1
    assert "Cancelled 3 waiting escalation step(s): seen: " in caplog.text  # in the logs too
    assert len(statements(ctx)) == 2  # cancel the steps, mark the entries
    assert Notification.objects.filter(escalation=mine[0].escalation, status=S.CANCELLED).count() == 3
    assert Notification.objects.filter(escalation=theirs[0].escalation, status=S.CREATED).count() == 3
    # mark_consumed() (the open view) does it too.
    Notification.objects.filter(pk=theirs[0].pk).mark_consumed()
    assert Notification.objects.filter(escalation=theirs[0].escalation, status=S.CREATED).count() == 0


def test_consumed_on_the_instance_cancels_the_later_steps():
    ada = make_user()
    steps = reply.trigger(ada)
    process_all_notifications()
    Notification.objects.get(pk=steps[0].pk).mark_consumed()
    assert Notification.objects.held("seen").count() == 3


def test_a_step_seen_by_other_means_is_caught_by_the_policy_when_the_next_step_is_claimed():
    ada = make_user()
    start = timezone.now()
    steps = reply.trigger(ada, datetime_scheduled=start)
    at(start, 0)
    # A project's own UPDATE, bypassing mark_seen(): the waiting steps are still CREATED.
    Notification.objects.filter(pk=steps[0].pk).update(datetime_seen=start + MIN)
    summary = at(start, 15)
    assert messages.sent == []
    push = Notification.objects.get(pk=steps[1].pk)
    assert push.status == S.CANCELLED
    assert push.reason.startswith(f"seen: step reply-inapp (notification {steps[0].pk}) was seen at ")
    assert summary.counts["cancelled"] == 1


def test_failover_sends_the_sms_only_when_the_first_channel_failed():
    ada = make_user(phone_number="+14155552671")
    start = timezone.now()
    failed = alert.trigger(ada, data={"fail": True}, datetime_scheduled=start)
    # Due together: the SMS waits for the first step's outcome (claimed in the same batch).
    at(start, 0)
    assert states(failed) == [("alert-primary", "FAILED"), ("alert-sms", "CREATED")]
    at(start, 1)
    assert states(failed) == [("alert-primary", "FAILED"), ("alert-sms", "SUCCESSFULLY_SENT")]
    assert len(sms.outbox) == 1

    sms.outbox.clear()
    delivered = alert.trigger(ada, datetime_scheduled=start)
    at(start, 0)
    at(start, 1)
    assert states(delivered) == [("alert-primary", "SUCCESSFULLY_SENT"), ("alert-sms", "CANCELLED")]
    assert sms.outbox == []
    assert Notification.objects.get(pk=delivered[1].pk).reason == (
        f"escalation: step alert-primary (notification {delivered[0].pk}) was sent: no failover"
    )


def test_a_failover_step_waits_while_the_step_before_is_pending():
    ada = make_user(phone_number="+14155552671")
    start = timezone.now()
    steps = alert.trigger(ada, datetime_scheduled=start)
    # The first step is later than the failover (a hand-moved schedule): it is still waiting.
    Notification.objects.filter(pk=steps[0].pk).update(datetime_scheduled=start + 10 * MIN)
    summary = at(start, 0)
    assert summary.counts["deferred"] == 1
    sms_row = Notification.objects.get(pk=steps[1].pk)
    assert sms_row.status == S.CREATED and sms_row.attempts == 0
    assert sms_row.reason.startswith("escalation: waiting for step alert-primary")
    assert sms_row.datetime_scheduled == start + MIN


def test_trigger_once_applies_to_the_event():
    ada = make_user()
    start = timezone.now()
    first = once.trigger(ada, datetime_scheduled=start)
    assert len(first) == 2
    assert [n.pk for n in first] == sorted(n.pk for n in first)  # the steps' order, key or not
    assert once.trigger(ada) == []
    # The refused trigger left nothing behind (its in-app step was inserted and deleted again).
    assert Notification.objects.filter(trigger_name__in=["once-inapp", "once-memo"]).count() == 2
    at(start, 0)
    assert once.trigger(ada) == []  # the in-app entry went out; the memo step still waits
    at(start, 5)
    assert len(once.trigger(ada)) == 2  # the event is over


def test_trigger_once_is_free_again_once_the_event_is_seen():
    ada = make_user()
    steps = once.trigger(ada)
    process_all_notifications()
    Notification.objects.get(pk=steps[0].pk).mark_seen()
    assert len(once.trigger(ada)) == 2


def test_last_only_replaces_the_waiting_steps_of_the_earlier_trigger():
    ada, bob = make_user(), make_user("bob")
    start = timezone.now()
    first = latest.trigger(ada, datetime_scheduled=start)
    other = latest.trigger(bob, datetime_scheduled=start)
    at(start, 0)
    second = latest.trigger(ada, datetime_scheduled=start + MIN)
    assert states(first) == [("latest-inapp", "SUCCESSFULLY_SENT"), ("latest-memo", "CANCELLED")]
    assert (
        "replaced by a newer trigger of escalation 'latest'"
        in Notification.objects.get(pk=first[1].pk).reason
    )
    assert [s for _, s in states(second)] == ["CREATED", "CREATED"]
    assert [s for _, s in states(other)] == ["SUCCESSFULLY_SENT", "CREATED"]


def test_the_inbox_lists_an_event_once():
    ada = make_user()
    for _ in range(2):
        reply.trigger(ada)
    process_all_notifications()
    feed = list(Notification.objects.feed(ada))
    assert [n.trigger_name for n in feed] == ["reply-inapp", "reply-inapp"]
    assert len({n.escalation for n in feed}) == 2


def test_single_channel_messages_are_untouched():
    ada = make_user()
    n = ReplyInApp.trigger(ada)
    assert n.escalation is None
    process_all_notifications()
    n.refresh_from_db()
    n.mark_seen()
    assert n.status == S.SUCCESSFULLY_SENT and n.cancel_escalation() == 0


def test_bad_input_raises_and_writes_nothing():
    with pytest.raises(InvalidTrigger):
        reply.trigger("ada")
    ada = make_user()
    with pytest.raises(InvalidTrigger):
        reply.trigger(ada, datetime_scheduled="soon")
    with pytest.raises(InvalidTrigger):
        reply.trigger(ada, content=Article(title="unsaved"))
    assert not Notification.objects.exists()


class _Memo(BaseChannel):
    def send(self):
        messages.sent.append((self.trigger_name, self.notification.pk))


@pytest.fixture
def throwaway():
    """Register message classes for one test; unregister them and their escalations after."""
    names: list[str] = []

    def register(name, **attrs):
        cls = message(name, **attrs)(type(name, (_Memo,), {"__module__": __name__}))
        names.append(name)
        return cls

    yield register
    for name in names:
        registry.unregister(name)
    for name in ("bad", "prefs", "taken", "devices"):
        escalations.unregister(name)


def test_declarations_are_validated(throwaway):
    a = throwaway("esc-a", channel="memo")
    b = throwaway("esc-b", channel="mobile")
    c = throwaway("esc-c", channel="inapp")
    d = throwaway("esc-d", channel="inapp")
    keyed = throwaway("esc-keyed", behavior=TriggerBehavior.TRIGGER_ONCE)
    cat = throwaway("esc-cat", category="comments", channel="memo")
    throttled = throwaway("esc-throttled", channel="memo", throttle=(3, datetime.timedelta(hours=1)))
    digested = throwaway("esc-digested", channel="memo", digest=datetime.timedelta(hours=1))

    class Unregistered(_Memo):
        pass

    bad = [
        ("bad name", [Step(a), Step(b)], None, "must be a slug"),
        ("bad", [Step(a)], None, "at least two steps"),
        ("bad", [Step(a), "b"], None, "is not a Step"),
        ("bad", [Step(a), Step(Unregistered)], None, "not registered with @message"),
        ("bad", [Step(a), Step(keyed)], None, "must keep the DEFAULT behaviour"),
        ("bad", [Step(a), Step(throttled)], None, "has a throttle; an escalation writes its steps"),
        ("bad", [Step(a), Step(digested)], None, "has a digest; an escalation writes its steps"),
        ("bad", [Step(a, after=MIN), Step(b)], None, "no earlier than the step before it"),
        ("bad", [Step(a), Step(b, when="sometimes")], None, "UNSEEN or FAILED"),
        ("bad", [Step(c), Step(d)], None, "at most one step may be in-app"),
        ("bad", [Step(a), Step(cat)], None, "share one category"),
        ("bad", [Step(a), Step(b)], TriggerBehavior.SEND_ONCE, "is not supported"),
    ]
    for name, steps, behavior, error in bad:
        with pytest.raises(MessageRegistrationError, match=error):
            Escalation(name, steps, behavior=behavior)
    assert escalations.of("esc-a") is None
    Escalation("taken", [Step(a), Step(b)])
    with pytest.raises(AlreadyRegistered, match="already a step of escalation 'taken'"):
        Escalation("bad", [Step(c), Step(a)])
    assert escalations.of("esc-a")[1] == 0


CATEGORIES = {"comments": {"label": "Comments", "channels": {"memo": True, "mobile": True}}}


def test_the_recipients_preferences_decide_the_channels(throwaway):
    first = throwaway("pref-memo", category="comments", channel="memo")
    second = throwaway("pref-push", category="comments", channel="mobile")
    prefs = Escalation("prefs", [Step(first), Step(second, after=MIN)])
    ada = make_user()
    with override_settings(TRANSMISSIONS_CATEGORIES=CATEGORIES):
        set_preference(ada, "comments", "memo", False)
        start = timezone.now()
        steps = prefs.trigger(ada, datetime_scheduled=start)
        at(start, 0)
        at(start, 1)
    assert states(steps) == [("pref-memo", "CANCELLED"), ("pref-push", "SUCCESSFULLY_SENT")]
    assert Notification.objects.get(pk=steps[0].pk).reason.startswith("opted-out: ")
    assert messages.sent == [("pref-push", steps[1].pk)]


def test_a_required_event_ignores_opt_outs(throwaway):
    first = throwaway("req-memo", category="comments", required=True, channel="memo")
    second = throwaway("req-push", category="comments", required=True, channel="mobile")
    prefs = Escalation("prefs", [Step(first), Step(second, after=MIN, when=FAILED)])
    ada = make_user()
    with override_settings(TRANSMISSIONS_CATEGORIES=CATEGORIES):
        set_preference(ada, "comments", "memo", False)
        steps = prefs.trigger(ada)
        process_all_notifications()
    assert states(steps)[0] == ("req-memo", "SUCCESSFULLY_SENT")


def test_a_batch_of_steps_costs_the_same_queries_whatever_its_size():
    def one_batch(users):
        start = timezone.now() + datetime.timedelta(days=1)
        # (Not the in-app channel: it writes each entry with an UPDATE of its own.)
        for user in users:
            alert.trigger(user, datetime_scheduled=start)
            alert.trigger(user, datetime_scheduled=start, data={"fail": True})
        with time_machine.travel(start, tick=False), CaptureQueriesContext(connection) as ctx:
            assert process_all_notifications(batch_size=1000) == 4 * len(users)
        return statements(ctx)

    small = one_batch([make_user(f"u{i}") for i in range(2)])
    large = one_batch([make_user(f"v{i}") for i in range(12)])
    assert len(small) == len(large)
    # The policy's one SELECT of the batch's events (MySQL quotes with backticks).
    reads = [q.replace("`", '"') for q in large if q.lstrip().upper().startswith("SELECT")]
    policy = [q for q in reads if '"escalation" IN (' in q]
    assert len(policy) == 1, policy


def test_a_batch_without_steps_costs_the_policy_nothing():
    policy = EscalationPolicy()
    ada = make_user()
    n = ReplyInApp.trigger(ada)
    with CaptureQueriesContext(connection) as ctx:
        policy.prepare([n])
    assert statements(ctx) == []
    assert policy.check(n, ReplyInApp) is None


def test_w090_when_the_policy_is_left_out():
    assert check_escalations() == []
    with override_settings(TRANSMISSIONS_POLICIES=["transmissions.preferences.PreferencePolicy"]):
        assert [m.id for m in check_escalations()] == ["transmissions.W090"]


def test_per_content_needs_a_content(throwaway):
    a = throwaway("pc-a", channel="memo")
    b = throwaway("pc-b", channel="mobile")
    per = Escalation("taken", [Step(a), Step(b)], behavior=TriggerBehavior.TRIGGER_ONCE_PER_CONTENT)
    ada = make_user()
    with pytest.raises(InvalidTrigger, match="give it a saved content"):
        per.trigger(ada)
    article = Article.objects.create(title="t")
    assert len(per.trigger(ada, content=article)) == 2
    assert per.trigger(ada, content=article) == []
    assert len(per.trigger(ada, content=Article.objects.create(title="u"))) == 2


def test_repr_and_unused_names():
    assert repr(reply) == "<Escalation reply: reply-inapp -> reply-push -> reply-sms -> reply-email>"
    assert OnceInApp.trigger_name == "once-inapp" and AlertPrimary.channel == "mobile"


def test_the_inbox_and_the_unseen_count_show_an_event_once_by_its_earliest_sent_step():
    ada = make_user()  # no phone: the SMS step is skipped
    start = timezone.now()
    steps = reply.trigger(ada, datetime_scheduled=start)
    single = ReplyInApp.trigger(ada, datetime_scheduled=start)
    for minutes in (0, 15, 30, 60):
        at(start, minutes)
    assert Notification.objects.for_user(ada).sent().count() == 4  # in-app, push, email; single
    shown = list(inbox_queryset(ada))
    assert {n.pk for n in shown} == {steps[0].pk, single.pk}
    assert ada.notifications.unseen_count() == 2
    # The in-app step skipped: the event shows by its push step.
    other = reply.trigger(ada, datetime_scheduled=start)
    Notification.objects.filter(pk=other[0].pk).cancel("opted out")
    for minutes in (15, 60):
        at(start, minutes)
    assert other[1].pk in {n.pk for n in inbox_queryset(ada)}
    assert other[3].pk not in {n.pk for n in inbox_queryset(ada)}


def test_the_inbox_lists_a_trigger_once_event_by_its_in_app_entry():
    """The event's key sits on its last step, yet its rows are written in step order: once both
    steps went out, the inbox shows the in-app entry, not the memo."""
    ada = make_user()
    start = timezone.now()
    steps = once.trigger(ada, datetime_scheduled=start)
    for minutes in (0, 5):
        at(start, minutes)
    assert [s for _, s in states(steps)] == ["SUCCESSFULLY_SENT", "SUCCESSFULLY_SENT"]
    assert [n.pk for n in inbox_queryset(ada)] == [steps[0].pk]


def test_an_idempotency_key_names_the_event():
    ada = make_user()
    start = timezone.now()
    first = reply.trigger(ada, datetime_scheduled=start, idempotency_key="reply-7")
    assert [n.idempotency_key for n in first] == [None, None, None, "reply-7"]  # the last step holds it
    with CaptureQueriesContext(connection) as ctx:
        again = reply.trigger(ada, datetime_scheduled=start, idempotency_key="reply-7")
    assert [n.pk for n in again] == [n.pk for n in first]
    assert [n.trigger_name for n in again] == reply.trigger_names
    assert Notification.objects.count() == 4
    assert not [q for q in statements(ctx) if q.upper().startswith(("UPDATE", "DELETE"))]
    # Still the same event once it went on (sent, seen, cancelled): the key outlives the steps.
    at(start, 0)
    Notification.objects.get(pk=first[0].pk).mark_seen()
    assert [n.pk for n in reply.trigger(ada, idempotency_key="reply-7")] == [n.pk for n in first]
    # Past the window, the key is taken over by a new event.
    with time_machine.travel(start + datetime.timedelta(days=2), tick=False):
        later = reply.trigger(ada, idempotency_key="reply-7")
    assert len(later) == 4 and later[0].escalation != first[0].escalation
    assert Notification.objects.get(pk=first[3].pk).idempotency_key is None
    with pytest.raises(InvalidTrigger, match="idempotency_key must be a non-empty string"):
        reply.trigger(ada, idempotency_key="")
    assert Notification.objects.count() == 8


def test_an_idempotency_key_with_the_events_behaviours():
    ada = make_user()
    # TRIGGER_ONCE: another key while the event waits is refused by the behaviour, writing nothing.
    kept = once.trigger(ada, idempotency_key="a")
    assert once.trigger(ada, idempotency_key="b") == []
    assert [n.pk for n in once.trigger(ada, idempotency_key="a")] == [n.pk for n in kept]
    assert Notification.objects.filter(trigger_name__startswith="once-").count() == 2
    # LAST_ONLY: the repeated key gets its event back and cancels nothing.
    named = latest.trigger(ada, idempotency_key="c")
    assert [n.pk for n in latest.trigger(ada, idempotency_key="c")] == [n.pk for n in named]
    assert [s for _, s in states(named)] == ["CREATED", "CREATED"]
    newer = latest.trigger(ada, idempotency_key="d")
    assert [s for _, s in states(named)] == ["CANCELLED", "CANCELLED"]
    assert [s for _, s in states(newer)] == ["CREATED", "CREATED"]


def test_trigger_many_writes_each_users_event_in_one_insert():
    ada, bob, cy = make_user(), make_user("bob"), make_user("cy")
    start = timezone.now()
    with CaptureQueriesContext(connection) as ctx:
        events = reply.trigger_many([ada, bob, ada, cy], data={"post": 3}, datetime_scheduled=start)
    kinds = [q.split()[0].upper() for q in statements(ctx)]
    # One statement for the 12 rows where the dialect inserts many at once; MariaDB saves each.
    assert kinds == ["INSERT"] * (12 if connection.vendor == "mysql" else 1)
    assert [[n.target_user_id for n in steps] for steps in events] == [[u.pk] * 4 for u in (ada, bob, cy)]
    for steps in events:
        assert [n.trigger_name for n in steps] == reply.trigger_names
        assert len({n.escalation for n in steps}) == 1
        assert [n.datetime_scheduled - start for n in steps] == [0 * MIN, 15 * MIN, 30 * MIN, 60 * MIN]
    assert len({steps[0].escalation for steps in events}) == 3
    assert Notification.objects.count() == 12
    # The events go on one by one: seeing ada's entry ends hers only.
    at(start, 0)
    Notification.objects.get(pk=events[0][0].pk).mark_seen()
    at(start, 15)
    assert [s for _, s in states(events[0])][1:] == ["CANCELLED"] * 3
    assert [s for _, s in states(events[1])][:2] == ["SUCCESSFULLY_SENT"] * 2
    assert reply.trigger_many([]) == []
    with pytest.raises(InvalidTrigger, match="users must be an iterable of users"):
        reply.trigger_many(ada)
    with pytest.raises(InvalidTrigger):
        reply.trigger_many([ada, "bob"])
    assert Notification.objects.count() == 12


def test_trigger_many_with_the_events_behaviours_and_keys():
    ada, bob, cy = make_user(), make_user("bob"), make_user("cy")
    pending = once.trigger(ada)
    # TRIGGER_ONCE: a user whose event waits is left out, and nothing of theirs is written.
    events = once.trigger_many([ada, bob])
    assert [steps[0].target_user_id for steps in events] == [bob.pk]
    assert Notification.objects.filter(target_user=ada).count() == 2
    # LAST_ONLY: the users' waiting steps are replaced in one go.
    old = latest.trigger_many([ada, bob])
    new = latest.trigger_many([bob, cy])
    assert [[s for _, s in states(steps)] for steps in old] == [["CREATED"] * 2, ["CANCELLED"] * 2]
    assert [[s for _, s in states(steps)] for steps in new] == [["CREATED"] * 2] * 2
    # Keys per user: a repeated call gets the same events, in the users' order.
    keyed = reply.trigger_many([ada, bob], idempotency_key=lambda u: f"r-{u.pk}")
    again = reply.trigger_many([bob, cy, ada], idempotency_key={bob.pk: f"r-{bob.pk}", ada: f"r-{ada.pk}"})
    assert [[n.pk for n in steps] for steps in again] == [
        [n.pk for n in keyed[1]],
        [n.pk for n in again[1]],  # cy: no key, a new event
        [n.pk for n in keyed[0]],
    ]
    assert again[1][0].target_user_id == cy.pk
    assert Notification.objects.filter(trigger_name__startswith="reply-").count() == 12
    assert pending[0].pk < pending[1].pk
    with pytest.raises(InvalidTrigger, match="is given to two users"):
        reply.trigger_many([ada, bob], idempotency_key=lambda u: "same")


def test_a_push_step_without_a_device_is_skipped_and_the_email_still_goes(throwaway):
    """The real PushMessage: a user with no active device skips the push step (CANCELLED with the
    channel's reason), and the email step after it is sent."""
    entry = throwaway("dev-entry", channel="inapp")
    push = message("dev-push", title="New reply", body="Someone replied")(
        type("DevPush", (PushMessage,), {"__module__": __name__})
    )
    email = message("dev-email", subject="A reply", body="Someone replied")(
        type("DevEmail", (DefaultEmailMessage,), {"__module__": __name__})
    )
    try:
        chain = [Step(entry), Step(push, after=15 * MIN), Step(email, after=60 * MIN)]
        devices = Escalation("devices", chain)
        ada = make_user()
        start = timezone.now()
        steps = devices.trigger(ada, datetime_scheduled=start)
        for minutes in (0, 15, 60):
            at(start, minutes)
        assert [s for _, s in states(steps)] == ["SUCCESSFULLY_SENT", "CANCELLED", "SUCCESSFULLY_SENT"]
        assert Notification.objects.get(pk=steps[1].pk).reason == (
            "the user has no active push device (webpush, fcm, apns)"
        )
        assert [m.to for m in mail.outbox] == [[ada.email]]
    finally:
        registry.unregister("dev-push")
        registry.unregister("dev-email")


def test_a_requeued_last_step_takes_its_events_key_back():
    """TRIGGER_ONCE: the event's key is its last step's; requeueing that step (the admin's action)
    makes the event pending again, so a new trigger is refused while it waits."""
    ada = make_user()
    steps = once.trigger(ada)
    assert once.cancel(steps) == 2
    assert Notification.objects.filter(pk__in=[n.pk for n in steps]).requeue() == (2, 0)
    assert once.trigger(ada) == []
    Notification.objects.filter(pk=steps[1].pk).cancel()
    assert len(once.trigger(ada)) == 2
    # A DEFAULT event's steps get no key back.
    plain = reply.trigger(ada)
    reply.cancel(plain)
    Notification.objects.filter(pk__in=[n.pk for n in plain]).requeue()
    keys = Notification.objects.filter(escalation=plain[0].escalation).values_list("dedup_key", flat=True)
    assert set(keys) == {None}
