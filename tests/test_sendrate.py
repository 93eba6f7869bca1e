"""sendrate.py: TRANSMISSIONS_SEND_RATES, at most N transmits per period on a channel kind.

The parsing, the checks and the worker's pacing in one process (every pass); at the end,
several worker processes on one server database (the PostgreSQL and MariaDB passes).
"""

import collections
import datetime
import logging
import re
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests import messages
from tests.child import child_env, release, results, spawn
from tests.messages import DefaultMessage, RecordingChannel
from tests.notifications import OrderShipped
from tests.servers import SMTPRecorder, SMTPServer
from tests.utils import earlier, email_settings, make_user, statements
from transmissions import internals, message, sendrate
from transmissions.models import Notification, SendSlot
from transmissions.sendrate import Late, Pacer, Rate, Taken, check_send_rates, parse
from transmissions.worker import process_all_notifications, run

pytestmark = pytest.mark.django_db
S = Notification.Status


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def memo(cleanup):
    """A message on channel kind "memo" that records when each send began (monotonic)."""
    cleanup.append("memo-paced")
    times = []

    @message("memo-paced", channel="memo")
    class Memo(RecordingChannel):
        def send(self):
            times.append(time.monotonic())
            super().send()

    Memo.times = times
    return Memo


# -- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("14/s", Rate(14, 1)),
        (" 3 / m ", Rate(3, 60)),
        ("1/h", Rate(1, 3600)),
        ("500/d", Rate(500, 86400)),
        ("10000/s", Rate(10000, 1)),
    ],
)
def test_a_rate_is_n_per_second_minute_hour_or_day(text, rate):
    assert parse(text) == rate
    assert str(rate) in ("14/s", "3/m", "1/h", "500/d", "10000/s")


@pytest.mark.parametrize(
    "text", ["0/s", "14", "14/x", "-1/s", "1.5/s", "14/sec", "/s", "", 14, None, (14, 1)]
)
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError, match="a send rate is 'N/s', 'N/m', 'N/h' or 'N/d'"):
        parse(text)


def test_a_rate_of_more_than_ten_thousand_slots_is_refused():
    with pytest.raises(sendrate.TooMany, match="more than 10000 sends per period"):
        parse("10001/h")


# -- checks ------------------------------------------------------------------------------


def ids(**settings):
    with override_settings(**settings):
        return [(m.id, m.msg) for m in check_send_rates()]


def test_no_rates_and_good_rates_pass(memo):
    assert ids() == []
    assert ids(TRANSMISSIONS_SEND_RATES={"email": "14/s", "sms": "1/s", "memo": "3/m"}) == []


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (["email", "14/s"], "must be a dict such as"),
        ("14/s", "must be a dict such as"),
        ({"email": "14 per second"}, "'email'\\]: a send rate is 'N/s'"),
        ({"email": 14}, "a send rate is"),
        ({"": "1/s"}, "'' is not a channel kind or send_rate_key"),
        ({3: "1/s"}, "3 is not a channel kind"),
        ({"x" * 33: "1/s"}, "at most 32 characters"),
    ],
)
def test_a_malformed_setting_is_e087(value, found):
    [(id, msg)] = ids(TRANSMISSIONS_SEND_RATES=value)
    assert id == "transmissions.E087"
    assert msg.startswith("TRANSMISSIONS_SEND_RATES") and re.search(found, msg), msg


def test_too_many_slots_is_e088():
    [(id, msg)] = ids(TRANSMISSIONS_SEND_RATES={"email": "20000/h"})
    assert id == "transmissions.E088" and "give it as a shorter period" in msg


def test_a_bad_send_rate_key_is_e089(cleanup):
    cleanup.append("bad-rate-key")

    @message("bad-rate-key")
    class BadKey(RecordingChannel):
        send_rate_key = 42

    [(id, msg)] = ids()
    assert id == "transmissions.E089" and "BadKey.send_rate_key" in msg


def test_a_rate_no_message_uses_is_w087():
    [(id, msg)] = ids(TRANSMISSIONS_SEND_RATES={"emial": "14/s", "email": "14/s"})
    assert id == "transmissions.W087" and "'emial'" in msg


def test_check_command_really_fails_on_a_malformed_rate():
    with override_settings(TRANSMISSIONS_SEND_RATES={"email": "fast"}):
        with pytest.raises(SystemCheckError, match=r"transmissions.E087.*'email'"):
            call_command("check")


def test_a_worker_with_a_malformed_rate_claims_nothing(user):
    row = DefaultMessage.trigger(user, datetime_scheduled=earlier())
    with override_settings(TRANSMISSIONS_SEND_RATES={"email": "fast"}):
        with pytest.raises(ImproperlyConfigured, match="'email'"):
            process_all_notifications()
    with override_settings(TRANSMISSIONS_SEND_RATES=["email"]):
        with pytest.raises(ImproperlyConfigured, match="must be a dict"):
            process_all_notifications()
    with override_settings(TRANSMISSIONS_SEND_RATES={"email": ["14/s"]}):  # unhashable
        with pytest.raises(ImproperlyConfigured, match="a send rate is"):
            process_all_notifications()
    row.refresh_from_db()
    assert (row.status, row.attempts) == (S.CREATED, 0)


# -- pacing ------------------------------------------------------------------------------


def trigger(cls, user, count):
    return [cls.trigger(user, datetime_scheduled=earlier(seconds=count - i)) for i in range(count)]


def test_no_more_than_the_rate_in_any_window(user, memo):
    """4/s and 9 rows, one worker: 4 at once, the fifth a second after the first..."""
    trigger(memo, user, 9)
    with override_settings(TRANSMISSIONS_SEND_RATES={"memo": "4/s"}):
        assert process_all_notifications() == 9
    times = memo.times
    assert len(times) == 9
    # Any 5 consecutive sends span at least a second: no second holds 5.
    assert all(times[i + 4] - times[i] >= 1.0 for i in range(len(times) - 4)), times
    # And it did not crawl: 9 at 4/s is two seconds; one a second (a slot per period) is 8.
    assert times[-1] - times[0] < 6.0
    assert set(Notification.objects.values_list("status", flat=True)) == {S.SUCCESSFULLY_SENT}
    assert SendSlot.objects.filter(key="memo").count() == 4


def test_other_kinds_are_not_paced_and_cost_no_query(user, memo):
    trigger(DefaultMessage, user, 3)
    with override_settings(TRANSMISSIONS_SEND_RATES={"memo": "1/h"}):
        with CaptureQueriesContext(connection) as ctx:
            assert process_all_notifications() == 3
    assert not any("sendslot" in q for q in statements(ctx))
    assert len(messages.sent) == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rates", [None, {}, {"sms": "1/s"}], ids=["unset", "empty", "other-kind"])
def test_the_no_rate_path_costs_no_query(rates, user):
    """The batch of tests/test_worker.py's count: the same statements with no rate for its rows."""
    trigger(DefaultMessage, user, 30)
    settings = {} if rates is None else {"TRANSMISSIONS_SEND_RATES": rates}
    with override_settings(**settings), CaptureQueriesContext(connection) as ctx:
        assert process_all_notifications(batch_size=100) == 30
    # recover, claim (returning the rows), one UPDATE for the sent rows (a short batch ends the
    # run); MySQL claims in two statements and fetches. Without the shortcuts: a fetch and
    # the users.
    extra = 2 if connection.vendor == "mysql" else (0 if internals.enabled() else 1)
    users = 0 if internals.enabled() else 1
    assert len(statements(ctx)) == 3 + extra + users, statements(ctx)
    assert not any("sendslot" in q for q in statements(ctx))


def test_what_cannot_be_sent_in_time_is_deferred_with_a_reason(user, memo, caplog):
    """1/h: the first row is sent, the others wait for the slot, an hour on, not this worker."""
    first, *rest = trigger(memo, user, 3)
    start = timezone.now()
    with override_settings(TRANSMISSIONS_SEND_RATES={"memo": "1/h"}):
        with caplog.at_level(logging.WARNING, logger="transmissions"):
            summary = run()
    assert summary.counts["sent"] == 1 and summary.counts["deferred"] == 2
    assert len(memo.times) == 1
    first.refresh_from_db()
    assert first.status == S.SUCCESSFULLY_SENT
    for row in rest:
        row.refresh_from_db()
        assert (row.status, row.attempts, row.claimed_until) == (S.CREATED, 0, None)
        assert row.reason.startswith("rate-limited: memo at 1/h, no send slot free before its worker")
        assert f"deferred to {row.datetime_scheduled.isoformat()}" in row.reason
        assert start + datetime.timedelta(minutes=59) < row.datetime_scheduled
        assert row.datetime_scheduled < timezone.now() + datetime.timedelta(hours=1)
    assert set(Notification.objects.held("rate-limited")) == set(rest)
    assert caplog.text.count("rate-limited: memo at 1/h") == 2
    # Nothing is due: a run now sends nothing more.
    with override_settings(TRANSMISSIONS_SEND_RATES={"memo": "1/h"}):
        assert process_all_notifications() == 0


def test_the_wait_ends_with_the_runs_time_limit(user, memo):
    """2/s and a 0.3 s time limit: two now; the others would need a second, past the limit."""
    trigger(memo, user, 5)
    with override_settings(TRANSMISSIONS_SEND_RATES={"memo": "2/s"}):
        summary = run(time_limit=0.3)
    assert (summary.counts["sent"], summary.counts["deferred"]) == (2, 3)
    assert Notification.objects.held("rate-limited").count() == 3


def test_a_row_cancelled_before_its_send_gives_the_slot_back(user, cleanup):
    cleanup.append("memo-invalid")

    @message("memo-invalid", channel="memo")
    class Invalid(RecordingChannel):
        def check_validity(self):
            return self.notification.data.get("valid", False)

    Invalid.trigger(user, datetime_scheduled=earlier(seconds=2))
    Invalid.trigger(user, data={"valid": True}, datetime_scheduled=earlier(seconds=1))
    with override_settings(TRANSMISSIONS_SEND_RATES={"memo": "1/h"}):
        summary = run()
    assert (summary.counts["cancelled"], summary.counts["sent"], summary.counts["deferred"]) == (1, 1, 0)


def test_a_send_rate_key_gives_a_message_a_bucket_of_its_own(user, memo, cleanup):
    cleanup.append("memo-ses")

    @message("memo-ses", channel="memo")
    class ViaSes(RecordingChannel):
        send_rate_key = "ses"

    trigger(ViaSes, user, 2)
    trigger(memo, user, 2)
    with override_settings(TRANSMISSIONS_SEND_RATES={"memo": "1/h", "ses": "2/h"}):
        summary = run()
    # memo: one of two; ses: both.
    assert (summary.counts["sent"], summary.counts["deferred"]) == (3, 1)
    assert set(SendSlot.objects.values_list("key", "number")) == {("memo", 0), ("ses", 0), ("ses", 1)}


def test_notification_send_is_paced_too(user, memo):
    one, two = trigger(memo, user, 2)
    with override_settings(TRANSMISSIONS_SEND_RATES={"memo": "1/h"}):
        assert one.send() is True
        two.send()
    two.refresh_from_db()
    assert two.status == S.CREATED and two.reason.startswith("rate-limited: memo at 1/h")


def pacer(lease_minutes=10, horizon_seconds=0.0, rates=None):
    now = timezone.now()
    return Pacer(
        rates or {"memo": Rate(2, 60)},
        "default",
        now + datetime.timedelta(seconds=horizon_seconds),
        now + datetime.timedelta(minutes=lease_minutes),
    )


def test_a_slot_held_by_a_worker_that_died_frees_a_period_after_its_lease(user, memo):
    row = memo.trigger(user)
    dead = pacer(lease_minutes=10)
    held = [dead.take(row), dead.take(row)]  # never done(): its worker was killed mid-send
    assert all(isinstance(t, Taken) for t in held)
    late = pacer().take(row)
    # Both slots in use: no estimate but a period from now (and no wait past the horizon).
    assert isinstance(late, Late)
    assert late.until - timezone.now() <= datetime.timedelta(seconds=60)
    expected = dead.lease + datetime.timedelta(seconds=60)
    assert set(SendSlot.objects.values_list("free_at", flat=True)) == {expected}
    # Once the lease has long expired, the slots are free again.
    after = Pacer({"memo": Rate(2, 60)}, "default", None, None)
    SendSlot.objects.update(free_at=timezone.now() - datetime.timedelta(seconds=1))
    assert isinstance(after.take(row), Taken)


def test_done_frees_a_slot_a_period_after_the_transmit(user, memo):
    row = memo.trigger(user)
    p = pacer(rates={"memo": Rate(1, 60)})
    taken = p.take(row)
    assert isinstance(taken, Taken)
    before = timezone.now()
    p.done(taken)
    [free_at] = SendSlot.objects.values_list("free_at", flat=True)
    assert (
        before + datetime.timedelta(seconds=60) <= free_at <= timezone.now() + datetime.timedelta(seconds=60)
    )
    # A second done() of the same take changes nothing (it no longer holds the slot).
    p.done(taken, transmitted=False)
    assert SendSlot.objects.get().free_at == free_at


def test_a_larger_rate_makes_its_new_slots(user, memo):
    row = memo.trigger(user)
    p = pacer(rates={"memo": Rate(1, 60)})
    p.done(p.take(row))
    assert isinstance(p.take(row), Late)
    bigger = pacer(rates={"memo": Rate(3, 60)})
    assert isinstance(bigger.take(row), Taken) and isinstance(bigger.take(row), Taken)
    assert isinstance(bigger.take(row), Late)
    assert sorted(SendSlot.objects.values_list("number", flat=True)) == [0, 1, 2]
    # A smaller rate uses its first slots only.
    assert isinstance(pacer(rates={"memo": Rate(1, 60)}).take(row), Late)


def test_a_slot_row_reads_well(user, memo):
    p = pacer()
    p.take(memo.trigger(user))
    assert str(SendSlot.objects.get(number=0)).startswith("memo #0: free at ")


# -- several worker processes ------------------------------------------------------------


class TimedRecorder(SMTPRecorder):
    """The SMTP sink's handler, noting when each message arrived (the provider's clock)."""

    def __init__(self):
        super().__init__()
        self.arrived = []

    async def handle_DATA(self, server, session, envelope):
        self.arrived.append(time.time())
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_three_workers_never_exceed_the_rate(tmp_path):
    """SES's 14 emails a second, three worker processes, 70 emails through a real SMTP server
    on loopback: no second at the server holds more than 14, and each email arrives once."""
    rate, count, workers = 14, 70, 3
    users = [make_user(f"r{i}") for i in range(count)]
    OrderShipped.trigger_many(users, datetime_scheduled=earlier())
    server = SMTPServer()
    server.handler = TimedRecorder()
    with server:
        mail = email_settings(host="127.0.0.1", port=server.port, timeout=5)
        settings = {
            **mail,
            "TRANSMISSIONS_SEND_RATES": {"email": f"{rate}/s"},
            "DEFAULT_FROM_EMAIL": "a@b.test",
        }
        env = child_env(connection.settings_dict["NAME"], settings)
        barrier = tmp_path / "barrier"
        barrier.mkdir()
        argv = ["process", "--loop", "--batch-size", "5", "--barrier", str(barrier)]
        procs = [spawn(env, *argv) for _ in range(workers)]
        release(barrier, procs)
        out = results(procs, timeout=120)
    arrived = sorted(server.handler.arrived)
    assert len(arrived) == count
    # Any rate + 1 consecutive arrivals span at least a second: no 1-second window holds more.
    spans = [arrived[i + rate] - arrived[i] for i in range(count - rate)]
    assert min(spans) >= 1.0, min(spans)
    busiest = max(sum(1 for t in arrived if start <= t < start + 1.0) for start in arrived)
    assert busiest <= rate
    assert arrived[-1] - arrived[0] >= (count - rate) / rate - 0.01
    # Each notification sent once, by one worker, all of which took part.
    assert sum(r["taken"] for r in out) == count and all(r["taken"] > 0 for r in out), out
    received = collections.Counter(m["Message-ID"] for _, m in server.handler.messages)
    rows = Notification.objects.filter(trigger_name="order-shipped")
    assert set(rows.values_list("status", flat=True)) == {S.SUCCESSFULLY_SENT}
    assert set(received.values()) == {1}
    assert set(received) == set(rows.values_list("provider_message_id", flat=True))
    recipients = collections.Counter(
        to for envelope, _ in server.handler.messages for to in envelope.rcpt_tos
    )
    assert len(recipients) == count and set(recipients.values()) == {1}
    print(f"busiest second: {busiest} emails; first to last: {arrived[-1] - arrived[0]:.2f} s")


def test_a_run_without_a_time_limit_waits_up_to_half_its_lease(user, memo):
    """transmissions.testing runs with an infinite time limit: the lease alone bounds the wait."""
    trigger(memo, user, 2)
    with override_settings(TRANSMISSIONS_SEND_RATES={"memo": "1/h"}):
        summary = run(time_limit=float("inf"))
    assert (summary.counts["sent"], summary.counts["deferred"]) == (1, 1)
