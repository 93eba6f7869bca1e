"""The worker loop: take back expired claims, claim a batch, deliver it, record the outcomes.

A notification is sent at most once whatever the number of workers: a worker *claims*
a batch in one statement (CREATED -> PROCESSING, see ``lifecycle.py`` and the dialects
in ``db/``), delivers each notification (``delivery.py``), then writes the batch's
outcomes in a few statements. A claim carries a lease (``claimed_until``); a claim
whose worker died is handled, once the lease has expired, by
``TRANSMISSIONS_EXPIRED_LEASE_POLICY``. No SQL here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from django.db import connections, router, transaction
from django.utils import timezone

from transmissions import signals
from transmissions.conf import conf
from transmissions.delivery import Delivery, deliver
from transmissions.lifecycle import Outcomes, notification_model

if TYPE_CHECKING:
    from transmissions.models import Notification


def process_all_notifications(batch_size: int | None = None, time_limit: float | None = None) -> int:
    """Process due notifications batch after batch; return how many were taken.

    Stops when nothing is due or once ``time_limit`` seconds (default
    ``TRANSMISSIONS_TIME_LIMIT``) are spent.
    """
    batch_size = batch_size or conf.TRANSMISSIONS_BATCH_SIZE
    limit = conf.TRANSMISSIONS_TIME_LIMIT if time_limit is None else time_limit
    deadline = time.monotonic() + limit
    model: type[Notification] = notification_model()
    notifications = model.objects
    notifications.recover_expired()
    total = 0
    while True:
        batch = notifications.claim(batch_size)
        if not batch:
            break
        process_batch(batch)
        total += len(batch)
        if len(batch) < batch_size or time.monotonic() >= deadline:
            break
    return total


def process_batch(batch: list[Notification]) -> Outcomes:
    """Deliver every claimed notification of ``batch`` and record the outcomes."""
    outcomes = Outcomes(lease=batch[0].claimed_until if batch else None)
    model: type[Notification] = notification_model()
    using = router.db_for_write(model)
    in_transaction = connections[using].in_atomic_block
    deliveries: list[tuple[Notification, Delivery]] = []
    for notification in batch:
        if in_transaction:
            # A channel's database error must not break the caller's transaction.
            with transaction.atomic(using=using):
                delivery = deliver(notification)
        else:
            delivery = deliver(notification)
        if delivery.status is None:
            assert delivery.retry_in is not None
            outcomes.retry(notification.pk, timezone.now() + delivery.retry_in)
        else:
            outcomes.add(notification.pk, delivery.status, delivery.behavior)
        deliveries.append((notification, delivery))
    model.objects.using(using).finish(outcomes)
    if signals.notification_finished.has_listeners():
        _announce(deliveries)
    return outcomes


def _announce(deliveries: list[tuple[Notification, Any]]) -> None:
    for notification, delivery in deliveries:
        if delivery.status is not None:
            signals.notification_finished.send(
                sender=delivery.message_cls or type(notification),
                notification=notification,
                status=delivery.status,
                reason=delivery.reason,
                result=delivery.result,
            )
