"""``trigger_many()``: one message to many users, a few statements per chunk of users.

Each user gets what ``trigger()`` would give them, behaviour included: the dedup
behaviours skip users who already hold a blocking row (``INSERT ... ON CONFLICT
(dedup_key) DO NOTHING``), LAST_ONLY cancels each user's waiting rows first. The
whole call is one transaction: bad input, or an error half-way, writes nothing.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterable
from typing import Any

from django.db import connections, models, router, transaction

from transmissions import inserts, loading
from transmissions.behaviors import TriggerBehavior
from transmissions.exceptions import DuplicateNotification, InvalidTrigger
from transmissions.models import Notification
from transmissions.trigger import (
    LAST_ONLY_ATTEMPTS,
    _check_user,
    _content_key,
    _registered_behavior,
    build_notification,
    cancel_waiting,
    lock_users,
    trigger,
)

# Users per INSERT statement.
CHUNK_SIZE = 1000
_TARGET_USER = Notification._meta.get_field("target_user")
_TRIGGER_USER = Notification._meta.get_field("trigger_user")
_UUID, _USER, _KEY = (inserts.COLUMNS.index(c) for c in ("uuid", "target_user_id", "dedup_key"))


def trigger_many(
    message_cls: Any,
    users: Iterable[Any],
    trigger_user: Any = None,
    datetime_scheduled: datetime.datetime | None = None,
    content: models.Model | None = None,
    data: Any = None,
) -> list[Notification]:
    """Create a CREATED notification of ``message_cls`` for each of ``users``; return those created.

    The message's behaviour applies to each user as in ``trigger()``; the users it
    refuses are left out of the result (a user listed twice is notified once when
    the behaviour deduplicates). ``trigger_user``, ``datetime_scheduled``,
    ``content`` and ``data`` are the same for every user. Bad input raises
    InvalidTrigger and writes nothing. Like ``bulk_create``, no ``pre_save`` or
    ``post_save`` signal is sent, except on databases without ``RETURNING``
    (MySQL), where each user goes through ``trigger()``.
    """
    behavior = _registered_behavior(message_cls)
    if isinstance(users, (models.Model, str, bytes)) or not isinstance(users, Iterable):
        raise InvalidTrigger(
            f"users must be an iterable of users, not {type(users).__name__}; for one user, use trigger()."
        )
    users = list(users)
    for user in users:
        _check_user(user, "each of users")
    if not users:
        return []
    # Validates the arguments shared by every row, and serializes data once.
    template = build_notification(message_cls, users[0], trigger_user, datetime_scheduled, content, data)
    using = router.db_for_write(Notification)
    if not inserts.fast_path(using):
        with transaction.atomic(using=using):
            made = [trigger(message_cls, u, trigger_user, datetime_scheduled, content, data) for u in users]
        return [n for n in made if n is not None]
    keyed = behavior.key_prefix is not None
    if keyed:
        firsts: dict[Any, Any] = {}
        for user in users:
            firsts.setdefault(user.pk, user)
        users = list(firsts.values())  # each user once, in order of first appearance
    content_key = _content_key(template)
    chunk = max(1, min(CHUNK_SIZE, _max_params(using) // len(inserts.COLUMNS)))
    # Every row is the template's with its own uuid, user and key: adapt the rest once.
    base = inserts.adapt_row(using, inserts.row_of(template))
    name = template.trigger_name
    created: list[Notification] = []
    with transaction.atomic(using=using):
        if behavior is TriggerBehavior.LAST_ONLY:
            lock_users(using, [user.pk for user in users])
        for start in range(0, len(users), chunk):
            part = users[start : start + chunk]
            rows = []
            for user in part:
                row = base.copy()
                row[_UUID], row[_USER] = inserts.short_uuid(), user.pk
                if keyed:
                    row[_KEY] = behavior.dedup_key(name, user.pk, content_key)
                rows.append(row)
            inserted = _insert_chunk(using, name, behavior, rows)
            created += _notifications(template, trigger_user, part, rows, inserted, using)
    return created


def _max_params(using: str) -> int:
    connection = connections[using]
    if connection.vendor == "sqlite":
        # Django assumes SQLite's old limit of 999; ask the library (Python >= 3.11).
        connection.ensure_connection()
        getlimit = getattr(connection.connection, "getlimit", None)
        if getlimit is not None:
            return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return connection.features.max_query_params or 65535


def _insert_chunk(
    using: str, trigger_name: str, behavior: TriggerBehavior, rows: list[list[Any]]
) -> dict[str, int]:
    keyed = behavior.key_prefix is not None
    if behavior is not TriggerBehavior.LAST_ONLY:
        return inserts.insert_rows(using, rows, skip_conflicts=keyed, adapted=True)
    inserted: dict[str, int] = {}
    todo = rows
    for _ in range(LAST_ONLY_ATTEMPTS):
        cancel_waiting(using, trigger_name, [row[_USER] for row in todo])
        inserted.update(inserts.insert_rows(using, todo, skip_conflicts=True, adapted=True))
        # A row is missing only when a concurrent trigger took its key in between.
        todo = [row for row in todo if row[0] not in inserted]
        if not todo:
            return inserted
    raise DuplicateNotification(
        f"{trigger_name!r}: gave up after {LAST_ONLY_ATTEMPTS} concurrent replacements."
    )


def _notifications(
    template: Notification,
    trigger_user: Any,
    users: list[Any],
    rows: list[list[Any]],
    inserted: dict[str, int],
    using: str,
) -> list[Notification]:
    # The instances get the template's own (unadapted) values, with each row's changes.
    shared = {name: getattr(template, name) for name in loading.ATTNAMES}
    made = []
    for user, row in zip(users, rows, strict=True):
        pk = inserted.get(row[_UUID])
        if pk is None:
            continue
        values = shared.copy()
        values.update(id=pk, uuid=row[_UUID], target_user_id=user.pk, dedup_key=row[_KEY])
        notification = inserts.new_notification(values, using=using)
        # As Notification(target_user=...) would: reading them back costs no query.
        _TARGET_USER.set_cached_value(notification, user)
        _TRIGGER_USER.set_cached_value(notification, trigger_user)
        made.append(notification)
    return made
