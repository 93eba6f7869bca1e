"""PostgreSQL: one-statement inserts through ``unnest()`` arrays, claims with SKIP LOCKED."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from transmissions.db.returning import ReturningDialect
from transmissions.status import Status

# What a session in UTC may call its zone (Django sets "UTC"; a server's default is often "Etc/UTC").
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "UCT", "Etc/UCT", "GMT", "Etc/GMT", "Universal", "Zulu"})


class PostgreSQLDialect(ReturningDialect):
    vendor = "postgresql"

    # The users an INSERT in a transaction refers to stay until its COMMIT: a DELETE waits.
    user_lock = " FOR KEY SHARE"

    def zoned_text(self) -> bool:
        # Django installs a psycopg loader of its own for timestamptz, in Python: about 6 us a
        # value, three a claimed row, a third of a no-op batch's CPU. Read as text and parsed by
        # datetime.fromisoformat() they cost 0.5 us, with the same value and tzinfo, provided the
        # session writes them in ISO form in UTC (Django sets TimeZone from USE_TZ/TIME_ZONE;
        # DateStyle is the server's, ISO unless configured otherwise). Both are reported by
        # the server to the driver: psycopg 3 reads them without a query.
        if not settings.USE_TZ or self.connection.timezone_name != "UTC":
            return False
        self.connection.ensure_connection()
        info = getattr(self.connection.connection, "info", None)
        if info is None or not hasattr(info, "parameter_status"):
            return False  # psycopg2
        style, zone = info.parameter_status("DateStyle"), info.parameter_status("TimeZone")
        return bool(style and style.startswith("ISO") and zone in _UTC_NAMES)

    def datetime_form(self, zoned: bool = False) -> str:
        return "{}::text" if zoned else "{}"

    def any_of(self, field: Any, values: Sequence[Any]) -> tuple[str, list[Any]]:
        # One array: the same statement whatever the count, parsed once and cached by psycopg.
        db_type = field.db_type(self.connection)
        if not db_type:
            return super().any_of(field, values)
        return f"= ANY(%s::{db_type}[])", [list(values)]

    def insert_values(self, columns: tuple[str, ...], count: int) -> str:
        if count == 1:
            return super().insert_values(columns, count)
        # One array parameter per column, whatever the number of rows: a short statement
        # that psycopg parses once and caches, where thousands of placeholders were
        # re-parsed on every call.
        fields = {f.attname: f for f in self.model._meta.concrete_fields}
        arrays = ", ".join(f"%s::{fields[name].db_type(self.connection)}[]" for name in columns)
        return f"SELECT * FROM unnest({arrays})"  # noqa: S608 - column types only

    def checked_values(self, columns: tuple[str, ...], count: int) -> str:
        names = ", ".join(self.column(name) for name in columns)
        condition = self.users_exist({name: f"v.{self.column(name)}" for name in columns})
        if count == 1:
            # Typed, where a VALUES under a SELECT would read its parameters as text.
            fields = {f.attname: f for f in self.model._meta.concrete_fields}
            values = ", ".join(f"%s::{fields[name].db_type(self.connection)}" for name in columns)
            source = f"(SELECT {values})"
        else:
            source = self.insert_values(columns, count).removeprefix("SELECT * FROM ")
        return f"SELECT * FROM {source} AS v({names}) WHERE {condition}"  # noqa: S608

    def insert_params(self, columns: tuple[str, ...], rows: list[list[Any]]) -> Any:
        if len(rows) == 1:
            return rows[0]
        return [list(column) for column in zip(*rows, strict=True)]

    def finish(
        self,
        ids: Sequence[int],
        status: int,
        now: datetime.datetime,
        lease: datetime.datetime | None,
        release_key: bool,
        reasons: dict[int, str],
        provider_ids: dict[int, str] | None = None,
    ) -> int:
        # The ids, reasons and provider ids as three arrays: the statement's text and its
        # parameters do not grow with the batch, so psycopg parses it once and caches it
        # (it re-parsed a statement of over 50 parameters on every batch: 100 ids, and for
        # emails 200 more for their provider ids).
        provider_ids = provider_ids or {}
        release = ", dedup_key = NULL" if release_key else ""
        pk_type = self.model._meta.pk.db_type(self.connection)
        params: list[Any] = [
            status,
            self.adapt_datetime(now),
            list(ids),
            [reasons.get(pk) for pk in ids] if reasons else None,
            [provider_ids.get(pk) for pk in ids] if provider_ids else None,
            Status.PROCESSING,
        ]
        claim = ""
        if lease is not None:
            claim = " AND n.claimed_until = %s"
            params.append(self.adapt_datetime(lease))
        sql = (
            f"UPDATE {self.table} AS n SET status = %s, datetime_processed = %s, "  # noqa: S608
            "reason = COALESCE(v.reason, ''), "
            "provider_message_id = COALESCE(v.provider, n.provider_message_id), "
            f"claimed_until = NULL{release} "
            f"FROM unnest(%s::{pk_type}[], %s::text[], %s::text[]) AS v(id, reason, provider) "
            f"WHERE n.id = v.id AND n.status = %s{claim}"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)

    def claim_statement(
        self, due: str, set_clause: str, returning: str, zoned: bool = False
    ) -> tuple[str, tuple[str, ...]]:
        # The materialized CTE runs once and its row locks skip what another worker
        # holds; a row another worker claimed meanwhile fails the re-checked status. (A
        # plain ``id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`` may be re-scanned by
        # the planner and claim more than n rows.)
        columns = self.all_columns("n", zoned) if returning == "*" else "n.id"
        sql = (
            f"WITH claim AS MATERIALIZED ({due} FOR UPDATE SKIP LOCKED) "  # noqa: S608
            f"UPDATE {self.table} AS n SET {set_clause} FROM claim "
            f"WHERE n.id = claim.id AND n.status = %s RETURNING {columns}"
        )
        return sql, ("due", "set", "status")
