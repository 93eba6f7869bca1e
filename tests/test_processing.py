import datetime
import logging

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from tests import messages
from tests.messages import (
    DefaultMessage,
    DeleteAfterMessage,
    LastOnlyMessage,
    MyEmailMessage,
    SendOnceMessage,
    TransientMessage,
    WelcomeSMS,
)
from tests.models import Article
from tests.utils import earlier, later, make_user, statements
from transmissions import internals
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


@pytest.fixture
def user():
    return make_user(phone_number="+15005550006", first_name="Ada")


def trigger_named(name, user, **kwargs):
    from transmissions.registry import registry

    return registry.get(name).trigger(user, **kwargs)


def status_of(n):
    n.refresh_from_db()
    return n.status


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


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("always-fails", S.FAILED),
        ("crashes", S.FAILED),
        ("invalid", S.CANCELLED),
        ("validity-raises", S.BROKEN),
        ("init-raises", S.BROKEN),
        ("no-validity", S.SUCCESSFULLY_SENT),
        ("default", S.SUCCESSFULLY_SENT),
    ],
)
def test_outcomes(user, name, status, caplog):
    n = trigger_named(name, user)
    with caplog.at_level(logging.ERROR, logger="transmissions"):
        process_all_notifications()
    n.refresh_from_db()
    assert n.status == status
    assert n.datetime_processed is not None
    if status in (S.FAILED, S.BROKEN):
        assert f"notification {n.pk} ({name})" in caplog.text


def test_unknown_trigger_name_is_broken(user, caplog):
    n = DefaultMessage.trigger(user)
    Notification.objects.filter(pk=n.pk).update(trigger_name="was-renamed")
    ok = DefaultMessage.trigger(user)
    process_all_notifications()
    assert status_of(n) == S.BROKEN
    assert status_of(ok) == S.SUCCESSFULLY_SENT
    assert "no message is registered" in caplog.text


def test_unreadable_data_is_broken_and_does_not_stop_others(user):
    bad = DefaultMessage.trigger(user, data={"x": 1})
    Notification.objects.filter(pk=bad.pk).update(data_bytes=b"not a pickle")
    good = DefaultMessage.trigger(user)
    process_all_notifications()
    assert status_of(bad) == S.BROKEN
    assert status_of(good) == S.SUCCESSFULLY_SENT
    assert process_all_notifications() == 0  # no loop


def test_one_bad_notification_never_stops_the_batch(user):
    names = ["crashes", "default", "init-raises", "default", "always-fails", "default"]
    rows = [trigger_named(name, user) for name in names]
    assert process_all_notifications() == 6
    ok, failed = S.SUCCESSFULLY_SENT, S.FAILED
    assert [status_of(n) for n in rows] == [failed, ok, S.BROKEN, ok, failed, ok]


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


def test_transient_error_retries_with_backoff_then_fails(user):
    n = TransientMessage.trigger(user)
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.CREATED and n.attempts == 1
    # Backoff: between half and all of RETRY_DELAY (60 s) for the first retry.
    wait = (n.datetime_scheduled - timezone.now()).total_seconds()
    assert 25 < wait <= 60
    assert process_all_notifications() == 0
    for attempt in range(2, 6):
        with time_machine.travel(timezone.now() + datetime.timedelta(hours=2 * attempt)):
            assert process_all_notifications() == 1
        n.refresh_from_db()
        assert n.attempts == attempt
    assert n.status == S.FAILED and n.datetime_processed is not None


@override_settings(TRANSMISSIONS_MAX_ATTEMPTS=1)
def test_transient_error_without_retries_fails(user):
    n = TransientMessage.trigger(user)
    process_all_notifications()
    assert status_of(n) == S.FAILED


def test_backoff_grows_and_is_capped():
    from transmissions.delivery import retry_delay

    for attempts in range(1, 12):
        d = retry_delay(attempts).total_seconds()
        ceiling = min(3600, 60 * 2 ** (attempts - 1))
        assert ceiling / 2 <= d <= ceiling


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
    # recover, claim (returning the rows), users, content, one UPDATE per outcome (4), DELETE;
    # MySQL/MariaDB claim ids in two statements (SELECT ... FOR UPDATE SKIP LOCKED, UPDATE),
    # then fetch the rows: PostgreSQL and SQLite get them from the claim's RETURNING (when the
    # shortcuts of internals.py are on; else they fetch the claimed ids' rows).
    extra = 2 if connection.vendor == "mysql" else (0 if internals.enabled() else 1)
    assert len(statements(ctx)) == 9 + extra, statements(ctx)


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
