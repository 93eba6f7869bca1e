"""lifecycle.py: the transitions and the dedup key's life (claim, finish, cancel, requeue, expired leases)."""

import datetime

import pytest
import time_machine
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
from transmissions.models import Notification
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
