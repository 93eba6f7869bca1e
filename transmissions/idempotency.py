"""Callers' idempotency keys: the same key within the window names the same notification.

``trigger(..., idempotency_key="order-42:shipped")`` stores the key in the unique column
``Notification.idempotency_key``. A trigger whose key is taken writes nothing (the
INSERT's conflict clause, or a refused ``save()`` in a savepoint) and returns the row
that holds it, so a producer that retries (a Celery task re-run after a crash) gets
the notification it made the first time, also when several processes race: the
database, not a look-up in Python, decides who wrote the row.

The key holds for ``TRANSMISSIONS_IDEMPOTENCY_WINDOW`` from its row's
``datetime_created``. A trigger after that takes the key over: one UPDATE sets the old
row's key to NULL (only if it is still the expired holder, so two racing takers release
it once) and the new row is inserted in the same transaction, so a concurrent trigger
sees either the old holder or the new one. The key is independent of the behaviours'
``dedup_key``: a trigger the behaviour refuses returns None (or raises) as without a key.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from transmissions.conf import conf
from transmissions.exceptions import DuplicateNotification, InvalidTrigger

# The longest key (the column's length).
MAX_KEY_LENGTH = 255
# Rounds of insert → find the holder → take an expired key over, before giving up.
ATTEMPTS = 5

Rows = Sequence[dict[str, Any]]


def window() -> datetime.timedelta:
    """``TRANSMISSIONS_IDEMPOTENCY_WINDOW`` as a timedelta."""
    value = conf.TRANSMISSIONS_IDEMPOTENCY_WINDOW
    if isinstance(value, datetime.timedelta):
        return value
    return datetime.timedelta(seconds=value)


def check_key(key: Any) -> str | None:
    """Return ``key`` if it is None or a usable key; raise InvalidTrigger otherwise."""
    if key is None:
        return None
    if not isinstance(key, str) or not key:
        raise InvalidTrigger(f"idempotency_key must be a non-empty string, not {key!r}.")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidTrigger(f"idempotency_key is longer than {MAX_KEY_LENGTH} characters: {key[:40]!r}...")
    return key


def keys_per_user(users: Sequence[Any], keys: Any) -> list[str | None]:
    """The key of each of ``users`` for ``trigger_many``: ``keys`` is a callable taking a user
    (it may return None: no key) or a mapping from user (or primary key) to key."""
    if callable(keys):
        found = [check_key(keys(user)) for user in users]
    elif hasattr(keys, "get"):
        found = [check_key(keys.get(user, keys.get(user.pk))) for user in users]
    else:
        raise InvalidTrigger(
            "trigger_many's idempotency_key must be a callable taking a user or a mapping of users "
            f"to keys, not {type(keys).__name__}."
        )
    seen: set[str] = set()
    for key in found:
        if key is not None:
            if key in seen:
                raise InvalidTrigger(f"idempotency_key {key!r} is given to two users.")
            seen.add(key)
    return found


def write(
    manager: Any,
    rows: Rows,
    insert: Callable[[Rows], list[Any]],
    replaces: bool = False,
) -> tuple[list[Any], dict[str, Any]]:
    """Insert ``rows`` (each with an ``idempotency_key``, maybe None) through ``insert``, which
    skips any conflicting row; return the notifications created and, by key, the live holders
    of the keys that were taken.

    ``replaces`` (LAST_ONLY, whose insert cancels the users' waiting rows first): look the
    holders up before inserting, so a repeated key never cancels the row it names.
    """
    cutoff = timezone.now() - window()
    created: list[Any] = []
    existing: dict[str, Any] = {}
    todo, expired = list(rows), dict[str, Any]()
    if replaces:
        todo, expired = _answer(manager, todo, cutoff, existing, keep_unheld=True)
    for _ in range(ATTEMPTS):
        if not todo:
            return created, existing
        if expired:
            # The old holders' keys are released in the transaction that inserts the new
            # rows: a concurrent trigger sees the old holder or the new one, never neither.
            with transaction.atomic(using=manager.db):
                # By primary key: on InnoDB, racing releases then wait on the old row only, not
                # on the unique index the INSERT needs (which deadlocked them).
                manager.filter(
                    pk__in=list(expired.values()),
                    idempotency_key__in=list(expired),
                    datetime_created__lte=cutoff,
                ).update(idempotency_key=None)
                made = insert(todo)
        else:
            made = insert(todo)
        created += made
        done = {n.uuid for n in made}
        missing = [row for row in todo if row["uuid"] not in done and row["idempotency_key"]]
        todo, expired = _answer(manager, missing, cutoff, existing)
    if todo:
        keys = [row["idempotency_key"] for row in todo]
        raise DuplicateNotification(
            f"idempotency keys {keys!r}: gave up after {ATTEMPTS} concurrent take-overs."
        )
    return created, existing


def _answer(
    manager: Any,
    rows: list[dict[str, Any]],
    cutoff: datetime.datetime,
    existing: dict[str, Any],
    keep_unheld: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Record in ``existing`` the live holders of the keys of ``rows``; return the rows to
    insert (again) and the expired keys to release first, with their holders' ids.

    A refused row whose key nobody holds was refused by its behaviour's key: it is dropped,
    unless ``keep_unheld`` (before the first insert, when no row was refused yet).
    """
    keys = [row["idempotency_key"] for row in rows if row["idempotency_key"]]
    holders = {n.idempotency_key: n for n in manager.filter(idempotency_key__in=keys)} if keys else {}
    expired = {key: n.pk for key, n in holders.items() if n.datetime_created <= cutoff}
    todo = []
    for row in rows:
        key = row["idempotency_key"]
        holder = holders.get(key) if key else None
        if holder is None:
            if keep_unheld:
                todo.append(row)
        elif key in expired:
            todo.append(row)
        else:
            existing[key] = holder
    return todo, expired
