"""Converting a transmissions 0.2 table to today's schema: the code behind migration 0005.

Migration ``0005_transmissions_1_0`` is not atomic. Its steps, each short or batched, are:

1. drop 0.2's indexes that today's schema has not; on MySQL, widen 0.2's ``datetime``
   columns to ``datetime(6)`` (:func:`widen_datetimes`);
2. add the new columns (nullable, or with a database default), which takes no time;
3. copy the rows in batches of :data:`BATCH` ids, one transaction each, holding only row
   locks: ``content_id`` to text ``object_id``, the base64 text of ``data_pickled`` to the
   bytes of ``data`` (an empty one to NULL), a NULL ``datetime_created`` from
   ``datetime_scheduled`` (:func:`copy_rows`);
4. under one exclusive lock, convert what was written meanwhile and drop the two old
   columns (:func:`drop_old_columns`), then change the column types (one table rewrite
   on PostgreSQL, :func:`retype_columns`);
5. build the new indexes (concurrently on PostgreSQL).

It also records which rows 0.2 wrote (:data:`STATE_TABLE`): their dedup keys depend on
each message's behaviour, which lives in code, so ``manage.py fill_dedup_keys`` fills
them (see ``transmissions/legacy.py`` and docs/upgrading.md).

Nothing here imports the model: migrations see the table as it is at their step.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import Any

from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import StateApps

from transmissions.exceptions import UpgradeRefused

TABLE = "transmissions_notification"
# One row while 0.2's rows still wait for their dedup keys: the highest id 0.2 wrote and
# how far ``fill_dedup_keys`` got. Dropped by that command when it is done.
STATE_TABLE = "transmissions_upgrade"
# Ids per copy transaction: a few tenths of a second of row locks on PostgreSQL.
BATCH = 10_000
# Statuses of 0.2 rows that may hold a key: CREATED (pending) and SUCCESSFULLY_SENT.
KEY_CANDIDATE_STATUSES = (0, 1)

# Server-side conversion of one id range; SQLite has no base64 decoder (Python does it).
_DECODE = {
    "postgresql": "decode({col}, 'base64')",
    "mysql": "FROM_BASE64({col})",
}
_TO_TEXT = {
    "postgresql": "CAST({col} AS varchar(64))",
    "mysql": "CAST({col} AS CHAR)",
}


def decode_pickled(text: str | None) -> bytes | None:
    """Return the bytes 0.2 stored as base64 text; None for an empty value.

    Text that is not base64 is kept as its UTF-8 bytes, so reading the row's data fails
    visibly (the notification ends BROKEN with the reason) instead of the upgrade failing.
    """
    if not text:
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return text.encode()


class _Sql:
    """Quoted names and small helpers for raw SQL on one connection."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        self.vendor = self.connection.vendor
        self.q = self.connection.ops.quote_name
        self.table = self.q(TABLE)

    def one(self, sql: str, params: list[Any] | None = None) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params or [])
            row = cursor.fetchone()
        return row[0] if row else None

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params or [])


# Migrations of later 0.2-line releases, which added columns this upgrade knows nothing of.
LATER_RELEASES = ("0005_auto_20220120_2207", "0005_notification_exception")


def refuse_later_releases(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Stop before changing anything on a database a later 0.2-line release migrated."""
    applied = MigrationRecorder(schema_editor.connection).applied_migrations()
    found = sorted(name for app, name in applied if app == "transmissions" and name in LATER_RELEASES)
    if found:
        raise UpgradeRefused(
            f"This database ran {', '.join(found)} from a later transmissions 0.2-line release, "
            f"which added columns to {TABLE} that this upgrade does not convert. Nothing was "
            "changed; see docs/upgrading.md."
        )


def widen_datetimes(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """MySQL/MariaDB: give 0.2's ``datetime`` columns microseconds, as today's ``datetime(6)``.

    Django created them without fractional seconds before 1.8 (or on servers older than
    MySQL 5.6.4); the types Django compares are equal, so no AlterField would see it.
    One ALTER TABLE for all of them; nothing to do elsewhere, or when they have them.
    """
    sql = _Sql(schema_editor.connection)
    if sql.vendor != "mysql":
        return
    with sql.connection.cursor() as cursor:
        cursor.execute(
            "SELECT COLUMN_NAME, IS_NULLABLE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND DATA_TYPE = 'datetime' "
            "AND DATETIME_PRECISION < 6 ORDER BY ORDINAL_POSITION",
            [TABLE],
        )
        columns = cursor.fetchall()
    if columns:
        changes = ", ".join(
            f"MODIFY {sql.q(name)} datetime(6) {'NULL' if nullable == 'YES' else 'NOT NULL'}"
            for name, nullable in columns
        )
        sql.execute(f"ALTER TABLE {sql.table} {changes}")


def copy_rows(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Fill the new columns from the old ones, one transaction per range of BATCH ids."""
    sql = _Sql(schema_editor.connection)
    low, high = _id_range(sql)
    if low is None:
        return
    start = low
    while start <= high:
        _copy_range(sql, start, min(start + BATCH - 1, high))
        start += BATCH


def _id_range(sql: _Sql) -> tuple[Any, Any]:
    with sql.connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN({sql.q('id')}), MAX({sql.q('id')}) FROM {sql.table}")  # noqa: S608
        low, high = cursor.fetchone()
        return low, high


def _copy_range(sql: _Sql, first: int, last: int) -> None:
    q = sql.q
    alias = sql.connection.alias
    if sql.vendor in _DECODE:
        decode = _DECODE[sql.vendor].format(col=q("data_pickled"))
        to_text = _TO_TEXT[sql.vendor].format(col=q("content_id"))
        statement = (
            f"UPDATE {sql.table} SET {q('object_id')} = {to_text}, "  # noqa: S608 - quoted names only
            f"{q('data')} = CASE WHEN {q('data_pickled')} = '' THEN NULL ELSE {decode} END, "
            f"{q('datetime_created')} = COALESCE({q('datetime_created')}, {q('datetime_scheduled')}) "
            f"WHERE {q('id')} BETWEEN %s AND %s"
        )
        try:
            with transaction.atomic(using=alias):
                sql.execute(statement, [first, last])
        except DatabaseError:
            pass  # text that is not base64 in this range: Python converts it below
        else:
            # MySQL turns bad base64 into NULL: those rows are converted below too.
            _copy_in_python(sql, f"{q('id')} BETWEEN %s AND %s AND {_unconverted_data(q)}", [first, last])
            return
    _copy_in_python(sql, f"{q('id')} BETWEEN %s AND %s", [first, last])


def _unconverted_data(q: Any) -> str:
    return f"{q('data')} IS NULL AND {q('data_pickled')} <> ''"


def _unconverted(q: Any) -> str:
    """Rows the copy has not converted yet (written by 0.2 while it ran)."""
    return (
        f"({q('content_id')} IS NOT NULL AND {q('object_id')} IS NULL) "
        f"OR ({_unconverted_data(q)}) OR {q('datetime_created')} IS NULL"
    )


def _copy_in_python(sql: _Sql, where: str, params: list[Any]) -> None:
    q = sql.q
    alias = sql.connection.alias
    with transaction.atomic(using=alias), sql.connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {q('id')}, {q('content_id')}, {q('data_pickled')} FROM {sql.table} WHERE {where}",  # noqa: S608
            params,
        )
        rows = [(None if c is None else str(c), decode_pickled(d), pk) for pk, c, d in cursor.fetchall()]
        if rows:
            cursor.executemany(
                f"UPDATE {sql.table} SET {q('object_id')} = %s, {q('data')} = %s, "  # noqa: S608
                f"{q('datetime_created')} = COALESCE({q('datetime_created')}, {q('datetime_scheduled')}) "
                f"WHERE {q('id')} = %s",
                rows,
            )


def drop_old_columns(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Convert the rows written since the copy, drop the old columns, record 0.2's rows.

    On PostgreSQL all of it happens under one ACCESS EXCLUSIVE lock, so a 0.2 process
    still running cannot write a row in between. MySQL commits each ALTER TABLE by itself:
    stop the 0.2 processes before migrating (docs/upgrading.md says so for every database).
    """
    sql = _Sql(schema_editor.connection)
    model = apps.get_model("transmissions", "Notification")
    transactional = sql.connection.features.can_rollback_ddl
    with transaction.atomic(using=sql.connection.alias) if transactional else contextlib.nullcontext():
        if sql.vendor == "postgresql":
            sql.execute(f"LOCK TABLE {sql.table} IN ACCESS EXCLUSIVE MODE")
        _copy_in_python(sql, _unconverted(sql.q), [])
        for name in ("content_id", "data_pickled"):
            schema_editor.remove_field(model, model._meta.get_field(name))
        record_legacy_rows(sql.connection)


def add_old_columns(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Reverse of :func:`drop_old_columns`, reached only when the table is empty."""
    sql = _Sql(schema_editor.connection)
    model = apps.get_model("transmissions", "Notification")
    for name in ("content_id", "data_pickled"):
        schema_editor.add_field(model, model._meta.get_field(name))
    sql.execute(f"DROP TABLE IF EXISTS {sql.q(STATE_TABLE)}")


def record_legacy_rows(connection: BaseDatabaseWrapper) -> None:
    """Record the highest id of a pending or sent row, for ``fill_dedup_keys`` (none: nothing)."""
    sql = _Sql(connection)
    q = sql.q
    candidates = ", ".join(str(s) for s in KEY_CANDIDATE_STATUSES)
    highest = sql.one(
        f"SELECT MAX({q('id')}) FROM {sql.table} WHERE {q('status')} IN ({candidates})"  # noqa: S608
    )
    if highest is None:
        return  # no pending or sent row: no key to fill
    sql.execute(
        f"CREATE TABLE {q(STATE_TABLE)} ({q('legacy_max_id')} bigint NOT NULL, "
        f"{q('keys_done_upto')} bigint NOT NULL)"
    )
    sql.execute(
        f"INSERT INTO {q(STATE_TABLE)} ({q('legacy_max_id')}, {q('keys_done_upto')}) VALUES (%s, %s)",  # noqa: S608
        [highest, 0],
    )


# What Django writes for Notification.active_key on PostgreSQL (``sqlmigrate transmissions 0010``).
ACTIVE_KEY_SQL = (
    'CASE WHEN "datetime_processed" IS NULL THEN "dedup_key" '
    'WHEN "dedup_key"::text LIKE \'s:%%\' THEN "dedup_key" ELSE NULL END'
)


def retype_columns(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """PostgreSQL: ``id`` to bigint (and its sequence), ``status`` to smallint and
    ``datetime_created`` NOT NULL in one ALTER TABLE: one table rewrite under the exclusive
    lock instead of two, plus a scan. The AlterFields that follow it in 0005 do the same
    on the other databases (``migration_operations.AlterFieldElsewhere``).
    """
    sql = _Sql(schema_editor.connection)
    if sql.vendor != "postgresql":
        return
    q = sql.q
    sql.execute(
        f"ALTER TABLE {sql.table} ALTER COLUMN {q('id')} TYPE bigint, "
        f"ALTER COLUMN {q('status')} TYPE smallint, ALTER COLUMN {q('datetime_created')} SET NOT NULL, "
        # Migration 0010's column and constraint, in this rewrite rather than a second one
        # (0010 leaves them alone when present: migration_operations.AddFieldUnlessPresent).
        f"ADD COLUMN {q('active_key')} varchar(255) GENERATED ALWAYS AS ({ACTIVE_KEY_SQL}) STORED, "
        f"ADD CONSTRAINT {q('transmissions_active_key')} UNIQUE ({q('active_key')})"
    )
    _retype_sequence(sql, "bigint")


def unretype_columns(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Reverse of :func:`retype_columns`, reached only when the table is empty."""
    sql = _Sql(schema_editor.connection)
    if sql.vendor != "postgresql":
        return
    q = sql.q
    sql.execute(
        f"ALTER TABLE {sql.table} DROP COLUMN IF EXISTS {q('active_key')}, "
        f"ALTER COLUMN {q('id')} TYPE integer, "
        f"ALTER COLUMN {q('status')} TYPE integer, ALTER COLUMN {q('datetime_created')} DROP NOT NULL"
    )
    _retype_sequence(sql, "integer")


def _retype_sequence(sql: _Sql, type_: str) -> None:
    sequence = sql.one("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    if sequence:  # 0.2's serial column; an identity column follows its column's type
        sql.execute(f"ALTER SEQUENCE {sequence} AS {type_}")
