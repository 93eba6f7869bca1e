"""worker.py: the loop (due rows only, oldest first, at most once, time limit, query count per batch)."""

import datetime
import logging

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests import messages
from tests.messages import (
    DefaultMessage,
    MyEmailMessage,
    SlowMessage,
    TemplatedEmail,
    WelcomeSMS,
)
from tests.models import Article
from tests.utils import earlier, later, make_user, statements, status_of, trigger_named
from transmissions import internals
from transmissions.models import Notification
from transmissions.worker import process_all_notifications, run

pytestmark = pytest.mark.django_db
S = Notification.Status


def test_sends_due_and_leaves_future(user):
    due = DefaultMessage.trigger(user, datetime_scheduled=earlier())
    future = DefaultMessage.trigger(user, datetime_scheduled=later())
    assert process_all_notifications() == 1
    assert messages.sent == [("default", due.pk)]
    due.refresh_from_db()
    assert due.status == S.SUCCESSFULLY_SENT and due.datetime_processed is not None
    assert due.attempts == 1 and due.claimed_until is None
    assert status_of(future) == S.CREATED
    with time_machine.travel(later(days=3)):
        assert process_all_notifications() == 1
    assert status_of(future) == S.SUCCESSFULLY_SENT


def test_oldest_schedule_first(user):
    a = DefaultMessage.trigger(user, datetime_scheduled=earlier(minutes=1))
    b = DefaultMessage.trigger(user, datetime_scheduled=earlier(minutes=3))
    c = DefaultMessage.trigger(user, datetime_scheduled=earlier(minutes=2))
    assert process_all_notifications(batch_size=1) == 3
    assert [pk for _, pk in messages.sent] == [b.pk, c.pk, a.pk]


def test_processed_at_most_once(user):
    DefaultMessage.trigger(user)
    assert process_all_notifications() == 1
    assert process_all_notifications() == 0
    assert len(messages.sent) == 1


def test_only_created_rows_are_sent(user):
    for status in (S.FAILED, S.CANCELLED, S.BROKEN, S.SUCCESSFULLY_SENT, S.PROCESSING):
        n = DefaultMessage.trigger(user, datetime_scheduled=earlier())
        Notification.objects.filter(pk=n.pk).update(status=status, claimed_until=later())
    assert process_all_notifications() == 0
    assert messages.sent == []


def test_one_bad_notification_never_stops_the_batch(user):
    names = ["crashes", "default", "init-raises", "default", "always-fails", "default"]
    rows = [trigger_named(name, user) for name in names]
    assert process_all_notifications() == 6
    ok, failed = S.SUCCESSFULLY_SENT, S.FAILED
    assert [status_of(n) for n in rows] == [failed, ok, S.BROKEN, ok, failed, ok]


def test_time_limit_stops_between_batches(user):
    for _ in range(5):
        DefaultMessage.trigger(user)
    assert process_all_notifications(batch_size=2, time_limit=0) == 2
    assert process_all_notifications(batch_size=2) == 3


def test_readme_email_message_is_sent(user):
    MyEmailMessage.trigger(user)
    process_all_notifications()
    [email] = mail.outbox
    assert email.subject == "Hello world!"
    assert email.body == "Hey, let me type a message later"
    assert email.to == [user.email]


def test_readme_welcome_sms_is_sent_once(user):
    from transmissions.channels.sms import outbox

    WelcomeSMS.trigger(user, datetime_scheduled=later())
    with time_machine.travel(later(days=3)):
        process_all_notifications()
    assert WelcomeSMS.trigger(user) is None
    [sms] = outbox
    assert sms.to == "+15005550006"
    assert sms.body == "Hey Ada, welcome to transmissions!"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("size", [5, 50])
def test_batch_query_count_does_not_grow_with_size(size):
    users = [make_user(f"u{i}", phone_number="+15005550006") for i in range(3)]
    articles = [Article.objects.create(title=str(i)) for i in range(3)]
    names = ["default", "send-once-content", "always-fails", "delete-after", "invalid"]
    for i in range(size):
        user = users[i % 3]
        name = names[i % len(names)]
        trigger_named(name, user, content=articles[i % 3], datetime_scheduled=earlier(seconds=i))
        if name == "send-once-content":
            Notification.objects.filter(trigger_name=name, dedup_key__isnull=False).update(dedup_key=None)
    with CaptureQueriesContext(connection) as ctx:
        assert process_all_notifications(batch_size=100) == size
    # recover, claim (returning the rows), content, one UPDATE per outcome (4), DELETE;
    # MySQL/MariaDB claim ids in two statements (SELECT ... FOR UPDATE SKIP LOCKED, UPDATE),
    # then fetch the rows: PostgreSQL and SQLite get them from the claim's RETURNING (when the
    # shortcuts of internals.py are on; else they fetch the claimed ids' rows). These channels
    # never read the users: with the shortcuts, no users' query (else one, with the claim).
    extra = 2 if connection.vendor == "mysql" else (0 if internals.enabled() else 1)
    users = 0 if internals.enabled() else 1
    assert len(statements(ctx)) == 8 + extra + users, statements(ctx)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("size", [4, 40])
def test_provider_ids_cost_no_query_of_their_own(size):
    """Emails, each with the provider's id and its address checked against the suppression list:
    still a constant count."""
    users = [make_user(f"u{i}", phone_number="+15005550006") for i in range(4)]
    for i in range(size):
        (MyEmailMessage if i % 2 else TemplatedEmail).trigger(
            users[i % 4], datetime_scheduled=earlier(seconds=i)
        )
    with CaptureQueriesContext(connection) as ctx:
        assert process_all_notifications(batch_size=100) == size
    # recover, claim, users, the suppression list (SuppressionPolicy), one UPDATE for the sent rows.
    extra = 2 if connection.vendor == "mysql" else (0 if internals.enabled() else 1)
    assert len(statements(ctx)) == 5 + extra, statements(ctx)
    assert "transmissions_suppression" in statements(ctx)[-2]
    ids = set(Notification.objects.values_list("provider_message_id", flat=True))
    assert len(ids) == size and all(i.startswith("<") for i in ids)


@pytest.mark.postgres
@pytest.mark.only_on("postgresql")
@pytest.mark.django_db(transaction=True)
def test_a_batch_costs_three_round_trips_on_postgresql_counted_on_the_wire(user):
    """Claim, users, outcome: no BEGIN/COMMIT around single statements. Counted by a proxy
    that reads the server's ReadyForQuery messages (benchmarks/wire.py), which Django's
    query log cannot do: it never shows the transactions' BEGIN and COMMIT."""
    from benchmarks.wire import RoundTripCounter

    for _ in range(300):
        DefaultMessage.trigger(user, datetime_scheduled=earlier())
    settings_dict = connection.settings_dict
    saved = {key: settings_dict.get(key) for key in ("HOST", "PORT", "OPTIONS")}
    with RoundTripCounter(saved["HOST"] or "127.0.0.1", int(saved["PORT"] or 5432)) as proxy:
        connection.close()
        options = {**(saved["OPTIONS"] or {}), "sslmode": "disable", "gssencmode": "disable"}
        settings_dict.update(HOST="127.0.0.1", PORT=str(proxy.port), OPTIONS=options)
        try:
            connection.ensure_connection()
            before = proxy.round_trips
            assert process_all_notifications(batch_size=100) == 300
            round_trips = proxy.round_trips - before
        finally:
            connection.close()
            settings_dict.update(saved)
    assert len(messages.sent) == 300
    # 3 batches of 3, plus the expired-claims check before them and the last, empty claim.
    assert round_trips <= 3 * 3 + 2, round_trips


@override_settings(TRANSMISSIONS_LEASE_SECONDS=600, TRANSMISSIONS_EXPIRED_LEASE_POLICY="retry")
def test_a_batch_hands_back_the_rows_it_cannot_start_within_half_its_lease(user, caplog):
    """Each send takes 2 minutes: at half the 10-minute lease the worker has sent 3, and hands
    the other 7 back unsent (no attempt counted), due as they were, for the next claim."""
    rows = [SlowMessage.trigger(user, datetime_scheduled=earlier(minutes=10 - i)) for i in range(10)]
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        messages.on_send.append(lambda: traveller.shift(datetime.timedelta(minutes=2)))
        with caplog.at_level(logging.WARNING, logger="transmissions"):
            summary = run(batch_size=10, time_limit=0)  # one batch
    assert [pk for _, pk in messages.sent] == [n.pk for n in rows[:3]]
    assert summary.counts["sent"] == 3 and summary.counts["released"] == 7
    for n, scheduled in ((n, n.datetime_scheduled) for n in rows[3:]):
        n.refresh_from_db()
        assert (n.status, n.attempts, n.claimed_until) == (S.CREATED, 0, None)
        assert n.reason == "handed back unsent: its worker's batch reached half its lease"
        assert n.datetime_scheduled == scheduled
    assert "Handed back 7 unsent notification(s) of a batch of 10" in caplog.text
    # The next run sends them (oldest first), and the reason goes with the send.
    messages.on_send.clear()
    assert process_all_notifications() == 7
    assert [pk for _, pk in messages.sent] == [n.pk for n in rows]
    assert set(Notification.objects.values_list("status", "reason", "attempts")) == {
        (S.SUCCESSFULLY_SENT, "", 1)
    }


@override_settings(TRANSMISSIONS_LEASE_SECONDS=60)
def test_a_run_stops_when_not_one_send_fits_in_half_the_lease(user):
    """Claiming and the policies took the whole half lease: the batch goes back whole and the
    run ends instead of claiming it again and again."""
    for _ in range(3):
        SlowMessage.trigger(user, datetime_scheduled=earlier())
    claim = Notification.objects.claim
    with time_machine.travel(timezone.now(), tick=False) as traveller:

        def slow_claim(*args, **kwargs):
            batch = claim(*args, **kwargs)
            traveller.shift(datetime.timedelta(seconds=31))
            return batch

        Notification.objects.claim = slow_claim
        try:
            summary = run(batch_size=2)
        finally:
            del Notification.objects.claim
    assert summary.taken == 2 and summary.counts["released"] == 2 and not messages.sent
    assert Notification.objects.filter(status=S.CREATED, attempts=0).count() == 3


@pytest.mark.parametrize("size", [3, 60])
def test_a_channel_that_reads_the_users_costs_one_users_query_per_batch_whatever_its_size(size):
    """The users are loaded on first read (internals.defer_related), for the whole batch."""
    users = [make_user(f"u{i}") for i in range(size)]
    MyEmailMessage.trigger_many(users)
    DefaultMessage.trigger_many(users)  # never reads them
    with CaptureQueriesContext(connection) as ctx:
        assert process_all_notifications(batch_size=100) == 2 * size
    user_queries = [
        q for q in statements(ctx) if " FROM " in q and q.split(" FROM ")[1][1:11] == "tests_user"
    ]
    # The emails, triggered first, are all in the first batch: one users' query for it, and
    # none for a second batch (size 60) that holds only messages that never read them (with
    # the shortcuts off, every batch loads its users with the claim: one query each).
    batches = 1 if internals.enabled() else -(-2 * size // 100)
    assert len(user_queries) == batches, user_queries
    assert len(mail.outbox) == size


@override_settings(TRANSMISSIONS_MAX_DATA_BYTES=256 * 1024, TRANSMISSIONS_BATCH_MAX_BYTES=1024 * 1024)
def test_a_batch_is_bounded_by_data_size_as_well_as_count(user):
    """Rows may hold up to 256 KiB of data and a batch 1 MiB: 4 rows a batch, not 100."""
    for _ in range(10):
        DefaultMessage.trigger(user, data={"blob": "x" * 200_000}, datetime_scheduled=earlier())
    assert run(batch_size=100, time_limit=0).taken == 4  # one batch
    assert process_all_notifications(batch_size=100) == 6
    with override_settings(TRANSMISSIONS_BATCH_MAX_BYTES=1):
        from transmissions.worker import max_batch_rows

        assert max_batch_rows() == 1  # never 0
