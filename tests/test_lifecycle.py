"""lifecycle.py: the transitions and the dedup key's life (claim, finish, cancel, requeue, expired leases)."""

import datetime

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import override_settings
from django.utils import timezone

from tests import messages
from tests.messages import (
    DefaultMessage,
    DeleteAfterMessage,
    FailingMessage,
    LastOnlyMessage,
    MyEmailMessage,
    SendOnceMessage,
    TransientMessage,
)
from tests.utils import later, make_user, status_of
from transmissions.lifecycle import Outcomes
from transmissions.models import Notification
from transmissions.status import PROVIDER_ID_MAX_LENGTH
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


def test_delete_after_processing(user):
    sent = DeleteAfterMessage.trigger(user)
    cancelled = DeleteAfterMessage.trigger(user, data={"cancel": True})
    failed = DeleteAfterMessage.trigger(user)
    Notification.objects.filter(pk=failed.pk).update(trigger_name="always-fails")
    process_all_notifications()
    assert not Notification.objects.filter(pk__in=[sent.pk, cancelled.pk]).exists()
    assert status_of(failed) == S.FAILED
    assert messages.sent == [("delete-after", sent.pk)]


def test_delete_after_processing_keeps_broken(user):
    broken = DeleteAfterMessage.trigger(user, data={"x": 1})
    Notification.objects.filter(pk=broken.pk).update(data_bytes=b"garbage")
    process_all_notifications()
    assert status_of(broken) == S.BROKEN


def test_send_once_keeps_its_key_after_sending(user):
    n = SendOnceMessage.trigger(user)
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.SUCCESSFULLY_SENT and n.dedup_key is not None


def test_last_only_row_being_sent_does_not_block_a_newer_one(user):
    first = LastOnlyMessage.trigger(user)
    [claimed] = Notification.objects.claim(10)
    assert claimed.pk == first.pk
    second = LastOnlyMessage.trigger(user)
    assert status_of(first) == S.PROCESSING  # too late to cancel
    assert status_of(second) == S.CREATED


def test_expired_claim_policy_broken(user):
    n = DefaultMessage.trigger(user)
    Notification.objects.claim(10)  # a worker claims it and dies
    assert Notification.objects.recover_expired() == 0  # lease still running
    with time_machine.travel(later(minutes=11)):
        assert Notification.objects.recover_expired() == 1
        assert process_all_notifications() == 0
    assert status_of(n) == S.BROKEN
    assert messages.sent == []


@override_settings(TRANSMISSIONS_EXPIRED_LEASE_POLICY="retry")
def test_expired_claim_policy_retry(user):
    n = SendOnceMessage.trigger(user)
    Notification.objects.claim(10)
    with time_machine.travel(later(minutes=11)):
        assert process_all_notifications() == 1
    assert status_of(n) == S.SUCCESSFULLY_SENT
    assert messages.sent == [("send-once", n.pk)]
    assert SendOnceMessage.trigger(user) is None


@override_settings(TRANSMISSIONS_EXPIRED_LEASE_POLICY="retry")
def test_a_late_worker_never_overwrites_a_row_claimed_again(user):
    from transmissions.worker import process_batch

    n = DefaultMessage.trigger(user)
    slow = Notification.objects.claim(10)  # worker A claims, then stalls past its lease
    Notification.objects.filter(pk=n.pk).update(trigger_name="always-fails")
    for x in slow:
        x.trigger_name = "always-fails"
    with time_machine.travel(later(minutes=11)):
        Notification.objects.recover_expired()
        again = Notification.objects.claim(10)  # worker B claims the same row with a new lease
        assert [x.pk for x in again] == [n.pk]
        process_batch(slow)  # A comes back: its FAILED must not land on B's claim
        assert status_of(n) == S.PROCESSING
        process_batch(again)  # B's outcome lands
    assert status_of(n) == S.FAILED


@override_settings(TRANSMISSIONS_EXPIRED_LEASE_POLICY="retry")
def test_a_late_worker_does_not_undo_a_row_queued_again(user):
    from transmissions.worker import process_batch

    n = DefaultMessage.trigger(user)
    slow = Notification.objects.claim(10)
    with time_machine.travel(later(minutes=11)):
        Notification.objects.recover_expired()
        process_batch(slow)
    assert status_of(n) == S.CREATED


@override_settings(TRANSMISSIONS_EXPIRED_LEASE_POLICY="retry")
def test_a_late_worker_never_deletes_a_row_claimed_again(user):
    from transmissions.worker import process_batch

    n = DeleteAfterMessage.trigger(user)
    slow = Notification.objects.claim(10)  # worker A claims, then stalls past its lease
    with time_machine.travel(later(minutes=11)):
        Notification.objects.recover_expired()
        again = Notification.objects.claim(10)  # worker B holds the row now
        process_batch(slow)  # A's send succeeded: DELETE_AFTER_PROCESSING would delete it
        assert status_of(n) == S.PROCESSING  # still there, still B's
        process_batch(again)
    assert not Notification.objects.filter(pk=n.pk).exists()


@override_settings(TRANSMISSIONS_MAX_ATTEMPTS=3)
def test_send_once_row_keeps_blocking_while_it_waits_to_retry():
    user = make_user()
    n = SendOnceMessage.trigger(user)
    Notification.objects.filter(pk=n.pk).update(trigger_name="transient")
    now = timezone.now()
    for attempt in (1, 2):
        with time_machine.travel(now + datetime.timedelta(hours=attempt)):
            assert process_all_notifications() == 1
        n.refresh_from_db()
        assert (n.status, n.attempts, n.datetime_processed) == (S.CREATED, attempt, None)
        assert SendOnceMessage.trigger(user) is None  # still blocks a second trigger
    with time_machine.travel(now + datetime.timedelta(hours=3)):
        assert process_all_notifications() == 1
    n.refresh_from_db()
    assert n.status == S.FAILED and n.attempts == 3 and n.dedup_key is None
    assert SendOnceMessage.trigger(user) is not None  # a FAILED row does not block


@override_settings(TRANSMISSIONS_EXPIRED_LEASE_POLICY="retry", TRANSMISSIONS_MAX_ATTEMPTS=3)
def test_retry_policy_gives_up_on_a_row_that_keeps_killing_workers():
    user = make_user()
    n = DefaultMessage.trigger(user)
    now = timezone.now()
    for attempt in (1, 2, 3):
        with time_machine.travel(now + datetime.timedelta(hours=attempt)):
            Notification.objects.recover_expired()
            assert [c.pk for c in Notification.objects.claim(10)] == [n.pk]  # claimed, and the worker dies
    n.refresh_from_db()
    assert n.attempts == 3
    with time_machine.travel(now + datetime.timedelta(hours=4)):
        assert Notification.objects.recover_expired() == 1
        assert process_all_notifications() == 0
    n.refresh_from_db()
    assert n.status == S.BROKEN and n.datetime_processed is not None


def test_every_outcome_but_sent_keeps_its_reason(user):
    nobody = make_user("nobody", email="")
    from tests.messages import FailingMessage

    sent, failed, cancelled = (
        DefaultMessage.trigger(user),
        FailingMessage.trigger(user),
        MyEmailMessage.trigger(nobody),
    )
    retried = TransientMessage.trigger(user)
    first_last = LastOnlyMessage.trigger(user, datetime_scheduled=later())
    LastOnlyMessage.trigger(user, datetime_scheduled=later())
    by_hand = DefaultMessage.trigger(user, datetime_scheduled=later())
    by_hand.cancel()
    process_all_notifications()
    reasons = dict(Notification.objects.values_list("pk", "reason"))
    assert reasons[sent.pk] == ""
    assert reasons[failed.pk].startswith("ChannelSendException")
    assert reasons[cancelled.pk] == "the user has no email address"
    assert reasons[retried.pk]  # the transient error, while it waits to be retried
    assert reasons[first_last.pk] == "replaced by a newer notification of the same message (LAST_ONLY)"
    assert reasons[by_hand.pk] == "cancelled by the application" == by_hand.reason


def test_an_expired_claim_says_why_it_is_broken(user):
    n = DefaultMessage.trigger(user)
    Notification.objects.claim(10)
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=1)):
        Notification.objects.recover_expired()
    n.refresh_from_db()
    assert n.status == S.BROKEN and "claim expired" in n.reason


def test_a_requeued_row_forgets_its_old_reason(user):
    n = FailingMessage.trigger(user)
    process_all_notifications()
    assert Notification.objects.filter(pk=n.pk).requeue() == (1, 0)
    n.refresh_from_db()
    assert (n.status, n.reason) == (S.CREATED, "")


def test_the_provider_id_is_written_with_the_outcome_only_on_rows_that_have_one(user):
    ada = make_user("ada2", phone_number="+15005550006")
    email, sms, default = (
        MyEmailMessage.trigger(user),
        SendOnceMessage.trigger(ada),
        DefaultMessage.trigger(ada),
    )
    Notification.objects.filter(pk=default.pk).update(provider_message_id="kept from before")
    process_all_notifications()
    ids = dict(Notification.objects.values_list("pk", "provider_message_id"))
    assert ids[email.pk].startswith("<") and ids[email.pk].endswith(">")
    # RecordingChannel names nothing: an id already there is left alone, none is made up.
    assert ids[sms.pk] == ""
    assert ids[default.pk] == "kept from before"


def test_a_provider_id_longer_than_the_column_is_cut_to_fit():
    outcomes = Outcomes()
    outcomes.add(1, S.SUCCESSFULLY_SENT, None, provider_id="x" * 300)
    outcomes.add(2, S.SUCCESSFULLY_SENT, None, provider_id=None)
    assert outcomes.provider_ids == {1: "x" * PROVIDER_ID_MAX_LENGTH}


@pytest.mark.django_db(transaction=True)
def test_reconnecting_runs_an_operation_again_on_a_new_connection(caplog, monkeypatch):
    from django.db import OperationalError

    from transmissions import lifecycle

    monkeypatch.setattr(lifecycle, "RECONNECT_PAUSES", (0.0, 0.0, 0.0))
    calls = []

    def flaky():
        calls.append(connection.connection)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return "written"

    connection.ensure_connection()
    assert lifecycle.reconnecting("default", "writing", flaky) == "written"
    assert len(calls) == 3 and "Lost the database connection while writing" in caplog.text

    def always():
        raise OperationalError("gone")

    with pytest.raises(OperationalError, match="gone"):
        lifecycle.reconnecting("default", "writing", always)
    # Inside a transaction the caller's work would be lost with a new connection: raised at once.
    calls.clear()
    with pytest.raises(OperationalError), transaction.atomic():
        lifecycle.reconnecting("default", "writing", flaky)
    assert len(calls) == 1


@pytest.mark.django_db(transaction=True)
def test_drop_if_unusable_keeps_a_connection_that_still_answers():
    """(One that does not answer is closed: tests/test_concurrency.py kills a worker's.)"""
    from transmissions import lifecycle

    connection.ensure_connection()
    healthy = connection.connection
    connection.errors_occurred = True  # an error, but the connection still answers
    lifecycle.drop_if_unusable("default")
    assert connection.connection is healthy and not connection.errors_occurred


def test_a_row_at_the_most_attempts_the_column_holds_never_stalls_the_queue(user):
    """A claim counts attempts up to the small integer's maximum (32767), then stops counting:
    before, the claim's UPDATE overflowed the column (PostgreSQL, MariaDB) and every batch
    holding that row failed, forever."""
    from transmissions.status import ATTEMPTS_MAX

    stuck = DefaultMessage.trigger(user)
    Notification.objects.filter(pk=stuck.pk).update(attempts=ATTEMPTS_MAX)
    other = DefaultMessage.trigger(user)
    process_all_notifications()
    assert messages.sent == [("default", stuck.pk), ("default", other.pk)]
    assert Notification.objects.get(pk=stuck.pk).attempts == ATTEMPTS_MAX
    assert Notification.objects.get(pk=other.pk).attempts == 1
