"""Processing memory is bounded by the batch, not by the backlog."""

import datetime
import time
import tracemalloc

import pytest
from django.utils import timezone

from tests.notifications import CountedMessage
from tests.utils import make_user
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit, as a worker runs


def peak_while_processing(user, count):
    now = timezone.now()
    Notification.objects.bulk_create(
        (
            Notification(
                trigger_name="counted",
                target_user=user,
                datetime_created=now,
                datetime_scheduled=now - datetime.timedelta(seconds=i),
            )
            for i in range(count)
        ),
        batch_size=2000,
    )
    CountedMessage.count = 0
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        assert process_all_notifications(batch_size=500, time_limit=300) == count
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert CountedMessage.count == count
    return peak


def test_peak_memory_does_not_grow_with_the_backlog():
    user = make_user()
    peak_while_processing(user, 200)  # warm up caches (compiled queries, imports)
    small = peak_while_processing(user, 2_000)
    started = time.monotonic()
    big = peak_while_processing(user, 20_000)
    # Ten times the backlog; the peak stays that of one batch (noise allowed, not growth).
    assert big < small * 1.5 + 256 * 1024, (small, big)
    print(
        f"peak {small / 1024:.0f} KiB for 2,000, {big / 1024:.0f} KiB for 20,000 "
        f"({time.monotonic() - started:.1f}s)"
    )
