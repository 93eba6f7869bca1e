"""The worker loop: take back expired claims, claim a batch, deliver it, record the outcomes.

A notification is sent at most once whatever the number of workers: a worker *claims*
a batch in one statement (CREATED -> PROCESSING, see ``lifecycle.py`` and the dialects
in ``db/``), lets the policies hold some back (``policies.py``), delivers the others
(``delivery.py``), then writes the batch's outcomes in a few statements. A claim
carries a lease (``claimed_until``); a claim whose worker died is handled, once the
lease has expired, by ``TRANSMISSIONS_EXPIRED_LEASE_POLICY``; so a live worker starts no
send once half its lease is spent, and hands the rows it has not started back
(``send_cutoff()``). No SQL here.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import InterfaceError, OperationalError, connections, router, transaction
from django.utils import timezone

from transmissions import coalesce, lifecycle, policies, recipients, sendrate, signals
from transmissions.conf import conf
from transmissions.delivery import Delivery, deliver
from transmissions.delivery import batch as delivering
from transmissions.lifecycle import Outcomes, notification_model
from transmissions.status import Status

logger = logging.getLogger("transmissions")

if TYPE_CHECKING:
    from transmissions.models import Notification


@dataclass
class Summary:
    """What one run did: how many notifications it took, and how each batch's rows ended."""

    taken: int = 0
    # "sent", "failed", "cancelled", "broken", "retried", "deferred", "released", "deleted".
    counts: Counter[str] = field(default_factory=Counter)
    # With ``detail``: (notification id, trigger name, outcome, reason), in order.
    rows: list[tuple[int, str, str, str]] = field(default_factory=list)
    # Stopped with work perhaps left (time limit, half lease) while wake-ups are coalesced:
    # the key is released, and the task queues the next run (tasks.py).
    stopped_early: bool = False


# A time limit longer than this (a year) is none (``testing.py`` runs with an infinite one).
MAX_WAIT_SECONDS = 365 * 86400
# How often a lingering worker looks for rows committed since its last claim (coalesce.py).
LINGER_POLL_SECONDS = 0.01


def process_all_notifications(batch_size: int | None = None, time_limit: float | None = None) -> int:
    """Process due notifications batch after batch; return how many were taken.

    Stops when nothing is due or once ``time_limit`` seconds (default
    ``TRANSMISSIONS_TIME_LIMIT``) are spent.
    """
    return run(batch_size, time_limit).taken


def run(batch_size: int | None = None, time_limit: float | None = None, detail: bool = False) -> Summary:
    """``process_all_notifications()``, returning a Summary (one row per notification with ``detail``)."""
    batch_size = min(batch_size or conf.TRANSMISSIONS_BATCH_SIZE, max_batch_rows())
    limit = conf.TRANSMISSIONS_TIME_LIMIT if time_limit is None else time_limit
    deadline = time.monotonic() + limit
    model: type[Notification] = notification_model()
    notifications = model.objects
    using = router.db_for_write(model)
    # A loop of runs outlives a lost connection: the first query of a run opens a new one.
    lifecycle.drop_if_unusable(using)
    sendrate.rates()  # a malformed TRANSMISSIONS_SEND_RATES raises here, before any claim
    lifecycle.reconnecting(using, "taking back expired claims", notifications.recover_expired)
    summary = Summary()
    coalescing = coalesce.enabled()
    try:
        _loop(notifications, batch_size, deadline, detail, coalescing, summary)
    except BaseException:
        if coalescing:
            coalesce.release()  # a worker that stops looking says so, or commits would wait
        raise
    return summary


def _loop(
    notifications: Any, batch_size: int, deadline: float, detail: bool, coalescing: bool, summary: Summary
) -> None:
    idle_since: float | None = None
    while True:
        if coalescing:
            coalesce.hold()
        try:
            batch = notifications.claim(batch_size)
        except (OperationalError, InterfaceError) as exc:
            connection = connections[router.db_for_write(notifications.model)]
            if connection.in_atomic_block:
                raise
            # Whether the claim was committed is unknown: if it was, those rows come back
            # when their lease expires (TRANSMISSIONS_EXPIRED_LEASE_POLICY). The next run
            # opens a new connection.
            logger.warning("Lost the database connection while claiming a batch (%s); ending this run.", exc)
            connection.close()
            if coalescing:
                coalesce.release()
            break
        if not batch:
            if not coalescing:
                break
            # Linger: a burst trickling in is claimed here rather than waking another worker.
            now = time.monotonic()
            idle_since = idle_since if idle_since is not None else now
            if now - idle_since < conf.TRANSMISSIONS_WAKE_UP_LINGER and now < deadline:
                time.sleep(LINGER_POLL_SECONDS)
                continue
            coalesce.release()
            # A commit that saw the key before it went is committed now: one last look.
            batch = notifications.claim(batch_size)
            if not batch:
                break
        idle_since = None
        # A send rate's wait ends with the run's time limit (rows not sent by then wait in the queue).
        outcomes = process_batch(batch, _wall_clock(deadline))
        summary.taken += len(batch)
        summary.counts.update(outcomes.counts())
        if detail:
            summary.rows += _rows(batch, outcomes)
        stop = time.monotonic() >= deadline or len(outcomes.released) == len(batch)
        # (not one send fitted in half the lease: claiming again would spin)
        if stop and coalescing:
            coalesce.release()
            summary.stopped_early = True
        if stop or (len(batch) < batch_size and not coalescing):
            break


def max_batch_rows() -> int:
    """The most rows a batch may hold for its data to stay within TRANSMISSIONS_BATCH_MAX_BYTES
    (each row's data is at most TRANSMISSIONS_MAX_DATA_BYTES); at least 1."""
    return max(1, int(conf.TRANSMISSIONS_BATCH_MAX_BYTES // conf.TRANSMISSIONS_MAX_DATA_BYTES))


def process_one(pk: Any, raise_broken: bool = True) -> Delivery | None:
    """Process notification ``pk`` now, due or not, through the claim; return what became of it.

    Return None, doing nothing, when it is not waiting (already processed, held by a
    worker, deleted): so it is sent at most once however often this is called. When its
    message breaks while being built or checked, the row is written BROKEN and, with
    ``raise_broken``, the exception is raised again, as transmissions 0.2's
    ``Notification.send()`` did. A policy may hold it back (then no Delivery is returned).
    """
    model: type[Notification] = notification_model()
    notification = model.objects.claim_one(pk)
    if notification is None:
        current = model.objects.filter(pk=pk).values_list("status", flat=True).first()
        state = "it does not exist" if current is None else f"it is {Status(current).label}"
        logger.warning("Notification %s not processed: %s.", pk, state)
        return None
    _, deliveries = _process(batch=[notification])
    delivery = deliveries[0][1] if deliveries else None
    if delivery is not None and raise_broken and delivery.exception is not None:
        raise delivery.exception
    return delivery


def process_batch(batch: list[Notification], stop_at: datetime.datetime | None = None) -> Outcomes:
    """Deliver every claimed notification of ``batch`` (but those a policy holds) and record the
    outcomes. A send rate's wait for a slot ends at half the batch's lease, or ``stop_at``."""
    return _process(batch, stop_at)[0]


def _process(
    batch: list[Notification], stop_at: datetime.datetime | None = None
) -> tuple[Outcomes, list[tuple[Notification, Delivery]]]:
    outcomes = Outcomes(lease=batch[0].claimed_until if batch else None)
    model: type[Notification] = notification_model()
    using = router.db_for_write(model)
    in_transaction = connections[using].in_atomic_block
    held = {}
    if conf.TRANSMISSIONS_POLICIES:
        held = lifecycle.reconnecting(using, "asking the policies", lambda: policies.holds(batch))
    deliveries: list[tuple[Notification, Delivery]] = []
    cutoff = send_cutoff(outcomes.lease)
    # As a POSIX timestamp: time.time() per row costs a tenth of timezone.now().
    cutoff_at = None if cutoff is None else cutoff.timestamp()
    # With TRANSMISSIONS_SEND_RATES only; None (and no query) without.
    pacer = sendrate.pacer(using, _earliest(cutoff, stop_at), outcomes.lease)
    # The worker's own language and zone, read once: each delivery switches to its recipient's
    # only where they differ.
    locale = recipients.in_force()
    recipient_locale = recipients.fixed_locale()
    connection = connections[using]
    # Around the deliveries and the outcomes' write: what a channel holds open for a batch
    # (the email channel its mailers' connections, delivery.around_batch()).
    with delivering():
        for notification in batch:
            pk = notification.pk
            hold = held.get(pk)
            if hold is None and cutoff_at is not None and time.time() >= cutoff_at:
                # Past half the lease: another worker may take the batch back once it expires,
                # so no send starts now; the unsent rows go back to the queue.
                outcomes.release(pk)
                continue
            if hold is not None:
                if hold.until is None:
                    delivery = Delivery(Status.CANCELLED, None, hold.text)
                    outcomes.add(pk, Status.CANCELLED, None, hold.text)
                else:
                    outcomes.defer(pk, hold.until, hold.text)
                    continue
            else:
                taken = pacer.take(notification) if pacer is not None else None
                if isinstance(taken, sendrate.Late):
                    outcomes.defer(notification.pk, taken.until, taken.reason)
                    continue
                # A send after a lost connection gets a new one (its channel may query).
                lifecycle.drop_if_unusable(using, connection)
                if in_transaction:
                    # A channel's database error must not break the caller's transaction.
                    with transaction.atomic(using=using):
                        delivery = deliver(notification, locale, recipient_locale)
                else:
                    delivery = deliver(notification, locale, recipient_locale)
                if taken is not None:
                    assert pacer is not None
                    # Cancelled or broken before its send: nothing was transmitted, the slot goes back.
                    pacer.done(taken, transmitted=delivery.status not in (Status.CANCELLED, Status.BROKEN))
                if delivery.status is None:
                    assert delivery.retry_in is not None
                    outcomes.retry(pk, timezone.now() + delivery.retry_in, delivery.reason)
                else:
                    outcomes.add(
                        pk,
                        delivery.status,
                        delivery.behavior,
                        delivery.reason,
                        delivery.provider_message_id,
                    )
            deliveries.append((notification, delivery))
        if outcomes.released:
            logger.warning(
                "Handed back %d unsent notification(s) of a batch of %d: the batch reached half its "
                "lease (TRANSMISSIONS_LEASE_SECONDS = %s); sends are slower than the lease allows.",
                len(outcomes.released),
                len(batch),
                conf.TRANSMISSIONS_LEASE_SECONDS,
            )
        # The sends happened: their outcomes must survive a lost connection (the write is
        # fenced by the lease, so running it again never overwrites another claim).
        lifecycle.reconnecting(
            using, "writing a batch's outcomes", lambda: model.objects.using(using).finish(outcomes)
        )
    if signals.notification_finished.has_listeners():
        _announce(deliveries)
    return outcomes, deliveries


def _wall_clock(deadline: float) -> datetime.datetime | None:
    """The time.monotonic() ``deadline`` as a datetime; None for no limit (``float("inf")``)."""
    remaining = deadline - time.monotonic()
    if remaining > MAX_WAIT_SECONDS:
        return None
    return timezone.now() + datetime.timedelta(seconds=max(remaining, 0.0))


def _earliest(*times: datetime.datetime | None) -> datetime.datetime | None:
    return min((t for t in times if t is not None), default=None)


def send_cutoff(lease: datetime.datetime | None) -> datetime.datetime | None:
    """When a worker holding a claim that expires at ``lease`` stops starting sends: half
    way through the lease, so a send in progress has the other half to end in."""
    if lease is None:
        return None
    return lease - datetime.timedelta(seconds=conf.TRANSMISSIONS_LEASE_SECONDS / 2)


def _rows(batch: list[Notification], outcomes: Outcomes) -> list[tuple[int, str, str, str]]:
    outcome = {pk: "retried" for pk in outcomes.retry_at} | {pk: "deferred" for pk in outcomes.deferred}
    outcome |= dict.fromkeys(outcomes.released, "released")
    for status, ids in outcomes.final.items():
        outcome.update(dict.fromkeys(ids, str(Status(status).label)))
    outcome.update(dict.fromkeys(outcomes.sent_keeping_key, str(Status.SUCCESSFULLY_SENT.label)))
    return [
        (n.pk, n.trigger_name, str(outcome.get(n.pk, "?")), outcomes.reasons.get(n.pk, "")) for n in batch
    ]


def _announce(deliveries: list[tuple[Notification, Any]]) -> None:
    for notification, delivery in deliveries:
        if delivery.status is not None:
            signals.notification_finished.send(
                sender=delivery.message_cls or type(notification),
                notification=notification,
                status=delivery.status,
                reason=delivery.reason,
                result=delivery.result,
                provider_message_id=delivery.provider_message_id,
            )
