"""Processing: claim due notifications in batches, send them, record outcomes grouped.

A notification is sent at most once whatever the number of workers: a worker
*claims* a batch in one statement (status CREATED -> PROCESSING, row locks with
SKIP LOCKED on PostgreSQL/MySQL/MariaDB, the single writer on SQLite), sends it,
then writes every outcome with one UPDATE per outcome. A claim carries a lease
(``claimed_until``); a claim whose worker died is handled, once the lease has
expired, by ``TRANSMISSIONS_EXPIRED_LEASE_POLICY``.
"""

from __future__ import annotations

import datetime
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Case, DateTimeField, F, Value, When
from django.utils import timezone

from transmissions import loading
from transmissions.behaviors import RELEASED_ON_CLAIM_PREFIX, TriggerBehavior
from transmissions.conf import conf
from transmissions.exceptions import TransientChannelError, UnknownTriggerException
from transmissions.models import Notification
from transmissions.registry import registry

logger = logging.getLogger("transmissions")
Status = Notification.Status


def process_all_notifications(batch_size: int | None = None, time_limit: float | None = None) -> int:
    """Process due notifications batch after batch; return how many were taken.

    Stops when nothing is due or once ``time_limit`` seconds (default
    ``TRANSMISSIONS_TIME_LIMIT``) are spent.
    """
    batch_size = batch_size or conf.TRANSMISSIONS_BATCH_SIZE
    limit = conf.TRANSMISSIONS_TIME_LIMIT if time_limit is None else time_limit
    deadline = time.monotonic() + limit
    recover_expired_claims()
    total = 0
    while True:
        batch = claim_batch(batch_size)
        if not batch:
            break
        process_batch(batch)
        total += len(batch)
        if len(batch) < batch_size or time.monotonic() >= deadline:
            break
    return total


def recover_expired_claims(now: datetime.datetime | None = None) -> int:
    """Apply the expired-lease policy to claims whose worker never came back."""
    now = now or timezone.now()
    expired = Notification.objects.filter(status=Status.PROCESSING, claimed_until__lt=now)
    count = 0
    if conf.TRANSMISSIONS_EXPIRED_LEASE_POLICY == "retry":
        # A row that took down its worker MAX_ATTEMPTS times is not queued again (it
        # would kill workers forever); it ends BROKEN with the rest below.
        retry = expired.filter(attempts__lt=conf.TRANSMISSIONS_MAX_ATTEMPTS)
        count = retry.update(status=Status.CREATED, claimed_until=None)
    count += expired.update(status=Status.BROKEN, datetime_processed=now, claimed_until=None, dedup_key=None)
    if count:
        logger.warning("Took back %d notification(s) whose claim had expired.", count)
    return count


def claim_batch(batch_size: int, now: datetime.datetime | None = None) -> list[Notification]:
    """Atomically move up to ``batch_size`` due notifications to PROCESSING and return them."""
    now = now or timezone.now()
    using = router.db_for_write(Notification)
    connection = connections[using]
    lease = now + datetime.timedelta(seconds=conf.TRANSMISSIONS_LEASE_SECONDS)
    if connection.vendor in ("postgresql", "sqlite") and connection.features.can_return_columns_from_insert:
        return loading.notifications_from_rows(using, _claim_returning(connection, batch_size, now, lease))
    ids = _claim_select_then_update(using, batch_size, now, lease)
    if not ids:
        return []
    batch = list(Notification.objects.using(using).filter(pk__in=ids).order_by("datetime_scheduled", "pk"))
    loading.attach_related(using, batch)
    return batch


def _claim_returning(
    connection: BaseDatabaseWrapper, batch_size: int, now: datetime.datetime, lease: datetime.datetime
) -> list[tuple[Any, ...]]:
    """Claim a batch in one statement; return every column of the claimed rows."""
    # One statement. On SQLite it is atomic (single writer). On PostgreSQL the
    # materialized CTE runs once and its row locks skip what another worker holds;
    # a row that another worker claimed meanwhile fails the re-checked status.
    # (A plain ``id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`` may be re-scanned
    # by the planner and claim more than n rows.)
    table = connection.ops.quote_name(Notification._meta.db_table)
    set_clause = (
        "status = %s, claimed_until = %s, attempts = attempts + 1, "
        "dedup_key = CASE WHEN dedup_key LIKE %s THEN NULL ELSE dedup_key END"
    )
    # Only the quoted table name is formatted in; every value is a parameter.
    due = (
        f"SELECT id FROM {table} WHERE status = %s AND datetime_scheduled <= %s "  # noqa: S608
        "ORDER BY datetime_scheduled LIMIT %s"
    )
    if connection.vendor == "postgresql":
        sql = (
            f"WITH claim AS MATERIALIZED ({due} FOR UPDATE SKIP LOCKED) "  # noqa: S608
            f"UPDATE {table} AS n SET {set_clause} FROM claim "
            f"WHERE n.id = claim.id AND n.status = %s "
            f"RETURNING {loading.returning_columns(connection, 'n')}"
        )
        order = ["due", "set", "status"]
    else:
        # "+status" keeps SQLite off the due index for the outer WHERE: with it, each
        # claim scanned every waiting row (O(backlog) per batch) instead of looking up
        # the ids the subquery chose.
        sql = (
            f"UPDATE {table} SET {set_clause} WHERE +status = %s AND id IN ({due}) "  # noqa: S608
            f"RETURNING {loading.returning_columns(connection)}"
        )
        order = ["set", "status", "due"]
    adapt = connection.ops.adapt_datetimefield_value
    groups: dict[str, list[Any]] = {
        "set": [Status.PROCESSING, adapt(lease), RELEASED_ON_CLAIM_PREFIX + "%"],
        "status": [Status.CREATED],
        "due": [Status.CREATED, adapt(now), batch_size],
    }
    params = [p for name in order for p in groups[name]]
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _claim_select_then_update(
    using: str, batch_size: int, now: datetime.datetime, lease: datetime.datetime
) -> list[int]:
    with transaction.atomic(using=using):
        ids = list(
            Notification.objects.using(using)
            .due(now)
            .order_by("datetime_scheduled")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:batch_size]
        )
        if ids:
            Notification.objects.using(using).filter(pk__in=ids, status=Status.CREATED).update(
                status=Status.PROCESSING,
                claimed_until=lease,
                attempts=F("attempts") + 1,
                dedup_key=Case(
                    When(dedup_key__startswith=RELEASED_ON_CLAIM_PREFIX, then=Value(None)),
                    default=F("dedup_key"),
                ),
            )
    return ids


@dataclass
class Outcomes:
    """What happened to each notification of a batch, grouped for the final UPDATEs."""

    final: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    sent_keeping_key: list[int] = field(default_factory=list)
    retry_at: dict[int, datetime.datetime] = field(default_factory=dict)
    delete: list[int] = field(default_factory=list)
    # The batch's lease, which doubles as its claim token: an outcome is written only
    # where ``claimed_until`` still holds it. A row whose lease expired and that another
    # worker claimed again carries that worker's lease, so a slow worker that comes
    # back late never overwrites it.
    lease: datetime.datetime | None = None


def process_batch(batch: list[Notification]) -> Outcomes:
    """Send every claimed notification of ``batch`` and record the outcomes."""
    outcomes = Outcomes(lease=batch[0].claimed_until if batch else None)
    using = router.db_for_write(Notification)
    in_transaction = connections[using].in_atomic_block
    for notification in batch:
        if in_transaction:
            # A channel's database error must not break the caller's transaction.
            with transaction.atomic(using=using):
                _process_one(notification, outcomes)
        else:
            _process_one(notification, outcomes)
    record_outcomes(outcomes, using)
    return outcomes


def _process_one(notification: Notification, outcomes: Outcomes) -> None:
    status, message_cls = _send(notification)
    if status is None:
        outcomes.retry_at[notification.pk] = timezone.now() + retry_delay(notification.attempts)
        return
    behavior = getattr(message_cls, "behavior", None)
    if status == Status.SUCCESSFULLY_SENT and behavior is not None and behavior.keeps_key_when_sent:
        outcomes.sent_keeping_key.append(notification.pk)
    else:
        outcomes.final[status].append(notification.pk)
    if behavior is TriggerBehavior.DELETE_AFTER_PROCESSING and status in (
        Status.SUCCESSFULLY_SENT,
        Status.CANCELLED,
    ):
        outcomes.delete.append(notification.pk)


def _send(notification: Notification) -> tuple[int | None, type | None]:
    """Run one notification through its message class; return (status or None to retry, class)."""
    label = f"notification {notification.pk} ({notification.trigger_name})"
    try:
        message_cls = registry.get(notification.trigger_name)
    except UnknownTriggerException:
        logger.error("Broken %s: no message is registered under that trigger name.", label)
        return Status.BROKEN, None
    try:
        notification.data  # noqa: B018 - unreadable data makes the notification BROKEN
        channel = message_cls(notification)
        check = getattr(channel, "check_validity", None)
        valid = check() if check is not None else True
    except Exception:
        logger.exception("Broken %s: building it or checking its validity raised.", label)
        return Status.BROKEN, message_cls
    if not valid:
        return Status.CANCELLED, message_cls
    try:
        channel.send()
    except TransientChannelError:
        if notification.attempts < conf.TRANSMISSIONS_MAX_ATTEMPTS:
            logger.warning("Retrying %s after a transient error.", label, exc_info=True)
            return None, message_cls
        logger.exception("Failed %s after %d attempts.", label, notification.attempts)
        return Status.FAILED, message_cls
    except Exception:
        logger.exception("Failed %s.", label)
        return Status.FAILED, message_cls
    return Status.SUCCESSFULLY_SENT, message_cls


def retry_delay(attempts: int) -> datetime.timedelta:
    """Exponential backoff with jitter: between half and all of base * 2**(attempts-1)."""
    base = conf.TRANSMISSIONS_RETRY_DELAY
    ceiling = min(conf.TRANSMISSIONS_RETRY_MAX_DELAY, base * 2 ** max(attempts - 1, 0))
    return datetime.timedelta(seconds=ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311


def record_outcomes(outcomes: Outcomes, using: str) -> None:
    """Write the outcomes of a batch: one DELETE, one UPDATE per outcome."""
    now = timezone.now()
    # Only rows this claim still holds: one taken back after its lease expired is not
    # overwritten, whether it is BROKEN, waiting again, or held by another worker now.
    held = Notification.objects.using(using).filter(status=Status.PROCESSING)
    if outcomes.lease is not None:
        held = held.filter(claimed_until=outcomes.lease)
    lease = outcomes.lease
    with transaction.atomic(using=using):
        if outcomes.delete:
            # First, while the claim still marks them as this worker's: afterwards the
            # UPDATEs below find them gone, and a row claimed again meanwhile is kept.
            held.filter(pk__in=outcomes.delete).delete()
        for status, ids in outcomes.final.items():
            _finish(using, ids, status, now, lease, release_key=True)
        if outcomes.sent_keeping_key:
            _finish(using, outcomes.sent_keeping_key, Status.SUCCESSFULLY_SENT, now, lease, release_key=False)
        if outcomes.retry_at:
            held.filter(pk__in=list(outcomes.retry_at)).update(
                status=Status.CREATED,
                claimed_until=None,
                datetime_scheduled=Case(
                    *(When(pk=pk, then=Value(when)) for pk, when in outcomes.retry_at.items()),
                    output_field=DateTimeField(),
                ),
            )


def _finish(
    using: str,
    ids: list[int],
    status: int,
    now: datetime.datetime,
    lease: datetime.datetime | None,
    release_key: bool,
) -> None:
    """Write a final status on the rows of ``ids`` this worker still holds, in one UPDATE."""
    connection = connections[using]
    table = connection.ops.quote_name(Notification._meta.db_table)
    # "+status" keeps SQLite on the primary key rather than scanning every PROCESSING row
    # of the due index (all workers' batches) for each outcome.
    held = "+status" if connection.vendor == "sqlite" else "status"
    release = ", dedup_key = NULL" if release_key else ""
    marks = ", ".join(["%s"] * len(ids))
    adapt = connection.ops.adapt_datetimefield_value
    claim, params = "", [status, adapt(now), Status.PROCESSING]
    if lease is not None:
        claim = " AND claimed_until = %s"
        params.append(adapt(lease))
    # Only quoted names and placeholders are formatted in; every value is a parameter.
    sql = (
        f"UPDATE {table} SET status = %s, datetime_processed = %s, claimed_until = NULL{release} "  # noqa: S608
        f"WHERE {held} = %s{claim} AND id IN ({marks})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *ids])
