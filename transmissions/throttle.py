"""Throttling: at most ``limit`` notifications of a message per key in any ``period``, held by
the database.

``@message(..., throttle=(3, timedelta(hours=1)))`` gives each key (the user, or the user
and the content) ``limit`` slots. A slot is a value of the unique column
``Notification.throttle_slot`` ("throttle:<name>:<user>[:<content>]:<i>"), held by the last
row that took it; the slot's time is that row's ``datetime_scheduled``. A trigger takes
the slot whose time is earliest: a free one at once, a taken one if its time is at least
``period`` before the new row's. Taking a slot over is one UPDATE that releases it only if
the same row still holds it, in the transaction of the INSERT of the new row; an INSERT
that finds the slot taken meanwhile goes round again. So consecutive rows of a slot are at
least ``period`` apart, and any ``period`` holds at most one row per slot: ``limit`` rows
per key, however many processes trigger at once.

When no slot is ready, the excess is either dropped (``excess="drop"``, the default: the
row is written CANCELLED with the reason, so the drop is visible) or deferred
(``excess="defer"``: the row takes the earliest slot and is scheduled at the end of its
window, with the reason). Both are logged at WARNING.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from transmissions.exceptions import DuplicateNotification, InvalidTrigger, MessageRegistrationError
from transmissions.status import Status, clip_reason

logger = logging.getLogger("transmissions")

MAX_SLOT_LENGTH = 255
# Rounds of read the slots → take one, lost to a concurrent trigger, before giving up.
ATTEMPTS = 50
PER = ("user", "content")
EXCESS = ("drop", "defer")
# The reason code of a dropped or deferred row (``Notification.objects.held("throttled")``).
CODE = "throttled"


@dataclasses.dataclass(frozen=True)
class Throttle:
    """At most ``limit`` notifications per ``period`` for each user (``per="user"``) or each
    user and content (``per="content"``); the excess is dropped or deferred (``excess``)."""

    limit: int
    period: datetime.timedelta
    per: str = "user"
    excess: str = "drop"

    @classmethod
    def coerce(cls, value: Any, owner: str) -> Throttle | None:
        """Return the Throttle for ``@message(throttle=value)``: None, a Throttle, or
        ``(limit, period)``; raise MessageRegistrationError otherwise."""
        if value is None or isinstance(value, Throttle):
            found = value
        elif isinstance(value, tuple) and len(value) == 2:
            found = cls(*value)
        else:
            raise MessageRegistrationError(
                f"{owner}.throttle must be (limit, timedelta) or a transmissions.throttle.Throttle, "
                f"not {value!r}."
            )
        if found is not None:
            found.validate(owner)
        return found

    def validate(self, owner: str) -> None:
        limit, period = self.limit, self.period
        problem = ""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            problem = f"limit must be a positive integer, not {limit!r}"
        elif not isinstance(period, datetime.timedelta) or period <= datetime.timedelta(0):
            problem = f"period must be a positive timedelta, not {period!r}"
        elif self.per not in PER:
            problem = f"per must be 'user' or 'content', not {self.per!r}"
        elif self.excess not in EXCESS:
            problem = f"excess must be 'drop' or 'defer', not {self.excess!r}"
        if problem:
            raise MessageRegistrationError(f"{owner}.throttle's {problem}.")

    def slots(self, row: dict[str, Any]) -> list[str]:
        """The slot values of ``row``'s key."""
        parts = ["throttle", row["trigger_name"], str(row["target_user_id"])]
        if self.per == "content":
            if row["content_type_id"] is None:
                raise InvalidTrigger(
                    f"{row['trigger_name']!r} is throttled per content: give it a saved content."
                )
            parts += [str(row["content_type_id"]), str(row["object_id"])]
        base = ":".join(parts)
        if len(base) + 12 > MAX_SLOT_LENGTH:
            base = "throttle:#" + hashlib.sha256(base.encode()).hexdigest()
        return [f"{base}:{i}" for i in range(self.limit)]

    def describe(self) -> str:
        per = "user" if self.per == "user" else "user and content"
        return f"more than {self.limit} per {self.period} for this {per}"


class _Lost(Exception):
    """A concurrent trigger took the slot: roll back and go round again."""


class _Refused(Exception):
    """The row's behaviour or idempotency key refused it: roll the slot's release back."""


def write(
    throttle: Throttle,
    manager: Any,
    row: dict[str, Any],
    insert: Callable[[Sequence[dict[str, Any]]], list[Any]],
    holders_of: Callable[[Sequence[str]], list[tuple[Any, str, Any]]],
    lost_race: Callable[[Exception], bool] = lambda exc: False,
) -> list[Any]:
    """Insert ``row`` under ``throttle`` through ``insert`` (which skips conflicting rows);
    return what it created: the row holding a slot, the row CANCELLED as excess, or nothing
    when the row's behaviour (or idempotency key) refused it. ``holders_of(slots)`` reads
    ``(id, slot, datetime_scheduled)`` of the slots' holders (the dialect's ``slot_holders``);
    ``lost_race(exc)`` says whether a database error undid our own attempt to break a race
    (the dialect's ``lost_race``: InnoDB's deadlock), so that it goes round again."""
    slots = throttle.slots(row)
    wanted: datetime.datetime = row["datetime_scheduled"]
    for _ in range(ATTEMPTS):
        holders = {slot: (pk, at) for pk, slot, at in holders_of(slots)}
        free = [slot for slot in slots if slot not in holders]
        if free:
            slot, holder, at = free[0], None, wanted
        else:
            slot = min(slots, key=lambda s: holders[s][1])
            holder, ready = holders[slot][0], holders[slot][1] + throttle.period
            at = max(wanted, ready)
        if at > wanted and throttle.excess == "drop":
            return _drop(throttle, row, insert)
        mine = {**row, "throttle_slot": slot}
        if at > wanted:
            mine["datetime_scheduled"] = at
            mine["reason"] = clip_reason(f"{CODE}: {throttle.describe()}; deferred to {at.isoformat()}")
        # A free slot needs no transaction: the INSERT alone takes it or finds it taken.
        atomic = transaction.atomic(using=manager.db) if holder is not None else contextlib.nullcontext()
        try:
            with atomic:
                if holder is not None:
                    released = manager.filter(pk=holder, throttle_slot=slot).update(throttle_slot=None)
                    if not released:
                        raise _Lost
                made = insert([mine])
                if not made:
                    raise _Lost if manager.filter(throttle_slot=slot).exists() else _Refused
        except _Lost:
            continue
        except _Refused:
            return []
        except DatabaseError as exc:
            if not lost_race(exc):
                raise
            logger.info("Throttle slot race for %s: %s; going round again.", row["trigger_name"], exc)
            continue
        if made and at > wanted:
            logger.warning(
                "Throttled %s to user %s: %s.", row["trigger_name"], row["target_user_id"], mine["reason"]
            )
        return made
    raise DuplicateNotification(
        f"{row['trigger_name']!r}: gave up taking a throttle slot after {ATTEMPTS} tries."
    )


def _drop(
    throttle: Throttle, row: dict[str, Any], insert: Callable[[Sequence[dict[str, Any]]], list[Any]]
) -> list[Any]:
    reason = clip_reason(f"{CODE}: {throttle.describe()}; dropped")
    now = timezone.now()
    dropped = {
        **row,
        "status": Status.CANCELLED,
        "datetime_processed": now,
        "dedup_key": None,
        "reason": reason,
        "throttle_slot": None,
    }
    made = insert([dropped])
    if made:
        logger.warning("Throttled %s to user %s: %s.", row["trigger_name"], row["target_user_id"], reason)
    return made
