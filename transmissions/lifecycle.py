"""Every status a notification moves through, and the life of its dedup key, in one place.

::

    trigger ──> CREATED ──claim──> PROCESSING ──finish──> SUCCESSFULLY_SENT | FAILED
                  │  ^                 │                   | CANCELLED | BROKEN
           cancel │  └──retry/requeue──┘ (lease expired: recover_expired)
                  v
              CANCELLED

The transitions are methods of the notification QuerySet (``Notification.objects``),
so each one is a statement or two whatever the number of rows. A row that blocks new
triggers of its behaviour holds a unique ``dedup_key`` (see ``behaviors.py``); the
key is released here when the row stops blocking: on claim for LAST_ONLY (a row
being sent can no longer be replaced), on every final status but SUCCESSFULLY_SENT
of the SEND_ONCE family, and on cancel. ``requeue()`` gives a row its key back.

Outcomes are written only where the batch's lease still holds: the lease is the
claim's token, so a worker that comes back after its claim expired and was taken
over never overwrites the newer claim.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.apps import apps
from django.db import IntegrityError, InterfaceError, OperationalError, connections, models, transaction
from django.db.models import Case, CharField, DateTimeField, F, Value, When
from django.utils import timezone

from transmissions import db, internals, related
from transmissions.behaviors import RELEASED_ON_CLAIM_PREFIX, TriggerBehavior
from transmissions.conf import conf
from transmissions.registry import escalations, registry
from transmissions.status import PROVIDER_ID_MAX_LENGTH, REQUEUEABLE, Status, clip_reason

logger = logging.getLogger("transmissions")
T = TypeVar("T")

# The reason of a row a worker handed back unsent (``Outcomes.release``).
HANDED_BACK = "handed back unsent: its worker's batch reached half its lease"


# Attempts of a write that lost its connection (a restarted server, a killed backend, a
# failover), each on a fresh connection, and the pauses between them (seconds).
RECONNECT_PAUSES = (0.0, 0.5, 2.0)


def reconnecting(using: str, what: str, operation: Callable[[], T]) -> T:
    """Return ``operation()``, run again on a fresh connection when the connection to
    ``using`` was lost (OperationalError, InterfaceError), at most ``len(RECONNECT_PAUSES)``
    times in all; the last error is raised.

    Only for operations that may run twice (an outcome write fenced by its lease, a
    read), and never inside a transaction (the caller's work would be lost with it):
    there the error is raised at once.
    """
    connection = connections[using]
    for attempt, pause in enumerate(RECONNECT_PAUSES):
        try:
            return operation()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or attempt == len(RECONNECT_PAUSES) - 1:
                raise
            logger.warning(
                "Lost the database connection while %s (%s); trying again on a new one.", what, exc
            )
            connection.close()
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def drop_if_unusable(using: str, connection: Any = None) -> None:
    """Close the connection to ``using`` if an error left it unusable (the next query opens a
    new one): a long-running worker outlives a killed backend. Outside a transaction only.
    ``connection``: ``connections[using]``, when the caller (a batch's loop) holds it."""
    if connection is None:
        connection = connections[using]
    if connection.connection is not None and connection.errors_occurred and not connection.in_atomic_block:
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            logger.warning("The database connection was lost; opening a new one.")
            connection.close()


def notification_model() -> Any:
    """Return the Notification model, looked up in the app registry.

    The pipeline's modules reach the model through this, never by importing
    ``transmissions.models``: ``import transmissions`` (for ``@message``) must work
    while Django is still loading apps, before any model may be imported.
    """
    return apps.get_model("transmissions", "Notification")


@dataclass
class Outcomes:
    """What happened to each notification of a claimed batch, grouped for a few UPDATEs."""

    # The batch's lease, which doubles as its claim token (see the module's docstring).
    lease: datetime.datetime | None = None
    final: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    sent_keeping_key: list[int] = field(default_factory=list)
    # Back to CREATED, due then: after a transient error (the attempt counts) ...
    retry_at: dict[int, datetime.datetime] = field(default_factory=dict)
    # ... or held by a policy (the attempt does not count).
    deferred: dict[int, datetime.datetime] = field(default_factory=dict)
    delete: list[int] = field(default_factory=list)
    # ... or handed back unsent: the worker stopped at half its lease (not an attempt).
    released: list[int] = field(default_factory=list)
    # Why, for the rows that were not sent; written with their outcome.
    reasons: dict[int, str] = field(default_factory=dict)
    # What the provider called the rows it accepted; written with their outcome.
    provider_ids: dict[int, str] = field(default_factory=dict)

    def add(
        self,
        pk: int,
        status: int,
        behavior: TriggerBehavior | None,
        reason: str = "",
        provider_id: str | None = None,
    ) -> None:
        """Record the final ``status`` of row ``pk`` whose message has ``behavior`` (and the
        provider's id of the message, when it was sent)."""
        if status == Status.SUCCESSFULLY_SENT and behavior is not None and behavior.keeps_key_when_sent:
            self.sent_keeping_key.append(pk)
        else:
            self.final[status].append(pk)
        if behavior is TriggerBehavior.DELETE_AFTER_PROCESSING and status in (
            Status.SUCCESSFULLY_SENT,
            Status.CANCELLED,
        ):
            self.delete.append(pk)
        if reason:
            self.reasons[pk] = clip_reason(reason)
        if provider_id:
            self.provider_ids[pk] = provider_id[:PROVIDER_ID_MAX_LENGTH]

    def retry(self, pk: int, when: datetime.datetime, reason: str = "") -> None:
        """Put row ``pk`` back in the queue, due at ``when``; the attempt counts."""
        self.retry_at[pk] = when
        if reason:
            self.reasons[pk] = clip_reason(reason)

    def defer(self, pk: int, until: datetime.datetime, reason: str) -> None:
        """Put row ``pk`` back in the queue, due at ``until``, as if it had not been claimed."""
        self.deferred[pk] = until
        self.reasons[pk] = clip_reason(reason)

    def release(self, pk: int) -> None:
        """Hand row ``pk`` back unsent, due as it was: the claim's attempt does not count."""
        self.released.append(pk)
        self.reasons[pk] = HANDED_BACK

    def counts(self) -> dict[str, int]:
        """How many rows of the batch ended each way: "sent", "failed", "cancelled", "broken",
        "retried", "deferred", "released" (handed back unsent), and "deleted" (of those sent
        or cancelled)."""
        names = {
            Status.SUCCESSFULLY_SENT: "sent",
            Status.FAILED: "failed",
            Status.CANCELLED: "cancelled",
            Status.BROKEN: "broken",
        }
        counts = dict.fromkeys([*names.values(), "retried", "deferred", "released", "deleted"], 0)
        for status, ids in self.final.items():
            counts[names[Status(status)]] += len(ids)
        counts["sent"] += len(self.sent_keeping_key)
        counts["retried"], counts["deferred"] = len(self.retry_at), len(self.deferred)
        counts["released"], counts["deleted"] = len(self.released), len(self.delete)
        return counts


# Typed by its rows' model only where it is used (models.py): importing the model here, even
# for type checking, would draw a circle models -> querysets -> lifecycle -> models.
class LifecycleQuerySet(models.QuerySet[Any]):
    """The transitions of ``Notification.Status``; see the module's docstring."""

    def _write_db(self) -> str:
        return internals.write_db(self)

    def _dialect(self) -> db.Dialect:
        return db.dialect(self._write_db(), self.model)

    # -- waiting -> held -----------------------------------------------------------------

    def claim(self, batch_size: int, now: datetime.datetime | None = None) -> list[Any]:
        """Atomically move up to ``batch_size`` due notifications to PROCESSING and return
        them, oldest schedule first, with their users and content attached."""
        now = now or timezone.now()
        lease = now + datetime.timedelta(seconds=conf.TRANSMISSIONS_LEASE_SECONDS)
        using = self._write_db()
        # No atomic() around it: the dialects' claim is one UPDATE ... RETURNING, atomic in
        # itself (the portable one opens its own transaction for its SELECT and UPDATE), and
        # a BEGIN and a COMMIT would be two more round trips per batch.
        batch = self._dialect().claim(batch_size, now, lease, RELEASED_ON_CLAIM_PREFIX)
        # Claimed: from here a lost connection must not cost the batch (a read, run again).
        reconnecting(
            using, "loading a claimed batch's users and contents", lambda: related.attach(using, batch)
        )
        return batch

    def claim_one(self, pk: Any, now: datetime.datetime | None = None) -> Any:
        """Atomically move notification ``pk`` to PROCESSING, due or not, and return it with its
        users and content attached; None when it is not waiting (sent, claimed, gone...).

        The same claim as ``claim()``: one UPDATE conditional on the row still waiting, so
        whoever calls it (``Notification.send()``, ``tasks.process_notification``), however
        often and from however many processes, only one of them gets the row.
        """
        now = now or timezone.now()
        lease = now + datetime.timedelta(seconds=conf.TRANSMISSIONS_LEASE_SECONDS)
        using = self._write_db()
        manager = self.model._default_manager.using(using)
        waiting = manager.filter(pk=pk, status=Status.CREATED, datetime_processed__isnull=True)
        claimed = waiting.update(**self._dialect().claim_values(lease, RELEASED_ON_CLAIM_PREFIX))
        if not claimed:
            return None
        notification = manager.get(pk=pk)
        related.attach(using, [notification])
        return notification

    def recover_expired(self, now: datetime.datetime | None = None) -> int:
        """Apply ``TRANSMISSIONS_EXPIRED_LEASE_POLICY`` to claims whose worker never came back."""
        now = now or timezone.now()
        expired = self.filter(status=Status.PROCESSING, claimed_until__lt=now)
        count = 0
        policy = conf.TRANSMISSIONS_EXPIRED_LEASE_POLICY
        if policy == "retry":
            # A row that took down its worker MAX_ATTEMPTS times is not queued again (it
            # would kill workers forever); it ends BROKEN with the rest below.
            retry = expired.filter(attempts__lt=conf.TRANSMISSIONS_MAX_ATTEMPTS)
            count = retry.update(
                status=Status.CREATED,
                claimed_until=None,
                reason="queued again: its worker's claim expired (lease policy 'retry')",
            )
        why = "its worker's claim expired before an outcome was written; it may have been sent"
        if policy == "retry":
            why = f"its worker's claim expired {conf.TRANSMISSIONS_MAX_ATTEMPTS} times (lease policy 'retry')"
        count += expired.update(
            status=Status.BROKEN, datetime_processed=now, claimed_until=None, dedup_key=None, reason=why
        )
        if count:
            logger.warning("Took back %d notification(s) whose claim had expired.", count)
        return count

    # -- held -> final -------------------------------------------------------------------

    def finish(self, outcomes: Outcomes) -> None:
        """Write the outcomes of a batch: one DELETE, one UPDATE per outcome, in one transaction
        (none for a batch that ends in one statement, usually all sent: it is atomic itself)."""
        now = timezone.now()
        using = self._write_db()
        dialect = self._dialect()
        lease = outcomes.lease
        o = outcomes
        if o.delete or o.retry_at or o.deferred or o.released:  # (built only when used)
            # Only rows this claim still holds: one taken back after its lease expired is not
            # overwritten, whether it is BROKEN, waiting again, or held by another worker now.
            held = self.model._default_manager.using(using).filter(status=Status.PROCESSING)
            if lease is not None:
                held = held.filter(claimed_until=lease)
        # every statement below: the DELETE, one UPDATE per final status, the rest
        statements = len(o.final) + sum(
            map(bool, (o.delete, o.sent_keeping_key, o.retry_at, o.deferred, o.released))
        )
        together = transaction.atomic(using=using) if statements > 1 else contextlib.nullcontext()
        with together:
            if outcomes.delete:
                # First, while the claim still marks them as this worker's: afterwards the
                # UPDATEs below find them gone, and a row claimed again meanwhile is kept.
                held.filter(pk__in=outcomes.delete).delete()
            reasons, provider_ids = outcomes.reasons, outcomes.provider_ids
            for status, ids in outcomes.final.items():
                mine = {pk: reasons[pk] for pk in ids if pk in reasons}
                sent_as = {pk: provider_ids[pk] for pk in ids if pk in provider_ids}
                dialect.finish(ids, status, now, lease, release_key=True, reasons=mine, provider_ids=sent_as)
            if outcomes.sent_keeping_key:
                sent, ids = Status.SUCCESSFULLY_SENT, outcomes.sent_keeping_key
                sent_as = {pk: provider_ids[pk] for pk in ids if pk in provider_ids}
                dialect.finish(ids, sent, now, lease, release_key=False, reasons={}, provider_ids=sent_as)
            if outcomes.retry_at:
                _back_in_queue(held, outcomes.retry_at, reasons, F("attempts"))
            if outcomes.deferred:
                # The claim counted an attempt that was not made: take it back.
                _back_in_queue(held, outcomes.deferred, reasons, F("attempts") - 1)
            if outcomes.released:
                held.filter(pk__in=outcomes.released).update(
                    status=Status.CREATED, claimed_until=None, attempts=F("attempts") - 1, reason=HANDED_BACK
                )

    # -- waiting -> cancelled, final -> waiting -------------------------------------------

    def cancel(self, reason: str = "cancelled", now: datetime.datetime | None = None) -> int:
        """End the waiting (CREATED) notifications among these as CANCELLED, with ``reason``, in
        one UPDATE; return how many. Processed ones, and ones a worker is sending, are left alone."""
        return int(
            self.filter(status=Status.CREATED, datetime_processed__isnull=True).update(
                status=Status.CANCELLED,
                datetime_processed=now or timezone.now(),
                dedup_key=None,
                reason=clip_reason(reason),
            )
        )

    def cancel_key(self, *keys: str, reason: str = "cancelled by its idempotency key") -> int:
        """End the waiting notifications that hold any of the idempotency ``keys`` as CANCELLED,
        in one UPDATE; return how many. Processed ones, and ones being sent, are left alone.

        The cancelled rows keep their key for the rest of its window, so a producer that
        retries the trigger gets the cancelled notification back, not a new one.
        """
        if not keys:
            return 0
        return self.filter(idempotency_key__in=keys).cancel(reason)

    def requeue(self, reschedule: bool = True) -> tuple[int, int]:
        """Make the FAILED, CANCELLED or BROKEN rows among these CREATED again, due now
        (with ``reschedule``; else at their own ``datetime_scheduled``).

        Each gets its behaviour's key back; a row whose behaviour is blocked by another
        row (a newer pending TRIGGER_ONCE, a sent SEND_ONCE) is skipped. Return
        ``(queued, skipped)``.
        """
        using = self._write_db()
        queued = skipped = 0
        now = timezone.now()
        for notification in self.filter(status__in=REQUEUEABLE).iterator():
            message_cls: Any = registry.find(notification.trigger_name)
            key = None
            content_key = None
            if notification.content_type_id:
                content_key = (notification.content_type_id, notification.object_id or "")
            if message_cls is not None:
                key = message_cls.behavior.dedup_key(
                    notification.trigger_name, notification.target_user_id, content_key
                )
            step: Any = escalations.of(notification.trigger_name) if notification.escalation else None
            if step is not None and step[1] == len(step[0].steps) - 1:
                # An escalation's last step holds its event's key (TRIGGER_ONCE): given back too.
                event = step[0]
                if event.behavior is not TriggerBehavior.LAST_ONLY:
                    key = event.behavior.dedup_key(event.name, notification.target_user_id, content_key)
            try:
                with transaction.atomic(using=using):
                    self.model._default_manager.using(using).filter(pk=notification.pk).update(
                        status=Status.CREATED,
                        datetime_scheduled=now if reschedule else notification.datetime_scheduled,
                        datetime_processed=None,
                        attempts=0,
                        dedup_key=key,
                        reason="",
                    )
            except IntegrityError:
                skipped += 1
            else:
                queued += 1
        return queued, skipped


def _back_in_queue(
    held: Any, when: dict[int, datetime.datetime], reasons: dict[int, str], attempts: Any
) -> None:
    """Make the ``held`` rows of ``when`` CREATED again, each due at its time, with its reason."""
    held.filter(pk__in=list(when)).update(
        status=Status.CREATED,
        claimed_until=None,
        attempts=attempts,
        datetime_scheduled=Case(
            *(When(pk=pk, then=Value(at)) for pk, at in when.items()), output_field=DateTimeField()
        ),
        reason=Case(*(When(pk=pk, then=Value(reasons.get(pk, ""))) for pk in when), output_field=CharField()),
    )
