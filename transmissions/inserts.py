"""The trigger hot path: build Notification rows cheaply and INSERT them in one statement.

``Model.save()`` compiles an INSERT through the ORM on every call, which costs more
than the INSERT itself. On PostgreSQL and SQLite (>= 3.35) a trigger is one prepared
``INSERT ... [ON CONFLICT (dedup_key) DO NOTHING] RETURNING id``: a refused trigger
is an empty RETURNING, not an IntegrityError behind a savepoint. Other databases, and
projects that listen to Notification's ``pre_save``/``post_save`` signals (which this
path would skip), keep ``save()``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

from django.db import connections
from django.db.models.signals import post_save, pre_save

from transmissions import loading
from transmissions.models import Notification

# The columns a trigger sets; the others start NULL.
COLUMNS = (
    "uuid",
    "trigger_name",
    "target_user_id",
    "trigger_user_id",
    "content_type_id",
    "object_id",
    "data_bytes",
    "datetime_created",
    "datetime_scheduled",
    "status",
    "attempts",
    "dedup_key",
)
_DATETIMES = (COLUMNS.index("datetime_created"), COLUMNS.index("datetime_scheduled"))
# ShortUUIDField's alphabet and length, so fast-path uuids look like the field's own.
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_UUID_LENGTH = 22


def short_uuid() -> str:
    """Return a random 22-character id in ShortUUIDField's alphabet (128 random bits)."""
    number = int.from_bytes(os.urandom(16), "big")
    digits = []
    for _ in range(_UUID_LENGTH):
        number, digit = divmod(number, 57)
        digits.append(_ALPHABET[digit])
    return "".join(digits)


def fast_path(using: str) -> bool:
    """Whether triggers on ``using`` may take the one-statement INSERT."""
    connection = connections[using]
    return (
        connection.vendor in ("postgresql", "sqlite")
        and connection.features.can_return_columns_from_insert
        and not pre_save.has_listeners(Notification)
        and not post_save.has_listeners(Notification)
    )


def new_notification(values: dict[str, Any], using: str | None = None) -> Notification:
    """Build a Notification from attribute values (defaults for the others); with ``using``,
    one already saved there."""
    return loading.build(using, [values.get(name, _DEFAULTS.get(name)) for name in loading.ATTNAMES])


_DEFAULTS = {"status": Notification.Status.CREATED, "attempts": 0}


def row_of(notification: Notification) -> list[Any]:
    """The INSERT values of ``notification``, in COLUMNS order (uuid made when missing)."""
    if not notification.uuid:
        notification.uuid = short_uuid()
    return [getattr(notification, name) for name in COLUMNS]


@functools.lru_cache(maxsize=64)
def _sql(alias: str, vendor: str, rows: int, skip_conflicts: bool) -> str:
    connection = connections[alias]
    quote = connection.ops.quote_name
    opts = Notification._meta
    fields = {field.attname: field for field in opts.concrete_fields}
    columns = ", ".join(quote(str(fields[name].column)) for name in COLUMNS)
    if vendor == "postgresql" and rows > 1:
        # One array parameter per column, whatever the number of rows: a short statement
        # that psycopg parses once and caches, where thousands of placeholders were
        # re-parsed on every call.
        arrays = ", ".join(f"%s::{fields[name].db_type(connection)}[]" for name in COLUMNS)
        values = f"SELECT * FROM unnest({arrays})"  # noqa: S608 - column types only
    else:
        one = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
        values = "VALUES " + ", ".join([one] * rows)
    conflict = f" ON CONFLICT ({quote('dedup_key')}) DO NOTHING" if skip_conflicts else ""
    return (
        f"INSERT INTO {quote(opts.db_table)} ({columns}) {values}"
        f"{conflict} RETURNING {quote('id')}, {quote('uuid')}"
    )


def adapt_row(using: str, row: list[Any]) -> list[Any]:
    """``row`` with its values adapted for the database (datetimes, on SQLite)."""
    adapt = connections[using].ops.adapt_datetimefield_value
    row = list(row)
    for i in _DATETIMES:
        row[i] = adapt(row[i])
    return row


def insert_rows(
    using: str, rows: Sequence[list[Any]], skip_conflicts: bool, adapted: bool = False
) -> dict[str, int]:
    """INSERT ``rows`` (from ``row_of``, through ``adapt_row`` when ``adapted``) in one
    statement; return {uuid: id} of those inserted.

    With ``skip_conflicts`` a row whose dedup_key is taken is skipped, not an error.
    """
    connection = connections[using]
    if not adapted:
        rows = [adapt_row(using, row) for row in rows]
    sql = _sql(using, connection.vendor, len(rows), skip_conflicts)
    params: list[Any] = []
    if "unnest(" in sql:
        params = [list(column) for column in zip(*rows, strict=True)]
    else:
        for row in rows:
            params += row
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {uuid: pk for pk, uuid in cursor.fetchall()}


def mark_saved(notification: Notification, pk: int, using: str) -> None:
    notification.pk = pk
    notification._state.adding = False
    notification._state.db = using
