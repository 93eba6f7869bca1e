"""Transient errors: exponential backoff with jitter, the attempts column, then FAILED;
and the limit on re-queueing a claim whose worker died (the "retry" lease policy)."""

import datetime

import pytest
import time_machine
from django.test.utils import override_settings
from django.utils import timezone

from tests.messages import DefaultMessage, SendOnceMessage
from tests.utils import make_user
from transmissions.delivery import retry_delay
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


def test_backoff_is_jittered_within_its_window():
    delays = {retry_delay(3).total_seconds() for _ in range(50)}
    assert all(120 <= d <= 240 for d in delays)  # half to all of 60 * 2**2
    assert len(delays) > 40  # jitter spreads retries that failed together


@override_settings(
    TRANSMISSIONS_RETRY_DELAY=10, TRANSMISSIONS_RETRY_MAX_DELAY=30, TRANSMISSIONS_MAX_ATTEMPTS=4
)
def test_settings_drive_backoff_and_attempts():
    ceilings = [min(30, 10 * 2 ** (a - 1)) for a in range(1, 6)]
    assert ceilings == [10, 20, 30, 30, 30]
    for attempts, ceiling in enumerate(ceilings, start=1):
        assert ceiling / 2 <= retry_delay(attempts).total_seconds() <= ceiling


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
