"""The SQL PostgreSQL and SQLite (>= 3.35) share: INSERT and UPDATE ... RETURNING.

A trigger is one ``INSERT ... [ON CONFLICT (active_key) DO NOTHING] RETURNING id, uuid``:
a refused trigger is an empty RETURNING, not an IntegrityError behind a savepoint. A
claim is one ``UPDATE ... RETURNING`` of every column, so no second query fetches
the rows. An outcome is one UPDATE by id, written as SQL rather than compiled by the
ORM on every batch.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Collection, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models

from transmissions import internals
from transmissions.db.base import SUPPRESSED, Dialect
from transmissions.exceptions import InvalidTrigger
from transmissions.status import ATTEMPTS_MAX, Status

# Default values that get_default() returns as they are, so one copy serves every row.
_IMMUTABLE = (str, int, float, bool, bytes, type(None))
_KEEP = object()


class ReturningDialect(Dialect):
    """Inserts and claims in one statement each; subclasses write the claim's SQL."""

    # The column of ``status`` in an outcome's WHERE (SQLite writes "+status" there).
    held_status = "status"

    @functools.cached_property
    def returns_from_insert(self) -> bool:
        """Whether this database's INSERT can return the ids (SQLite >= 3.35, PostgreSQL)."""
        return bool(self.connection.features.can_return_columns_from_insert)

    def insert(self, rows: Sequence[dict[str, Any]], skip_conflicts: bool) -> list[models.Model]:
        if self.signals or not self.returns_from_insert:
            return super().insert(rows, skip_conflicts)
        if not rows:
            return []
        rows = self._with_defaults(rows)
        if len(rows) == 1:
            columns, values = self._written(rows[0])
            adapted = [values]
        else:
            columns = tuple(rows[0])
            adapted = self._adapt(columns, rows)
        with self.connection.cursor() as cursor:
            checked = self.checks_users()
            inserted = self.run_insert(cursor, columns, adapted, skip_conflicts, checked)
        if checked and len(inserted) < len(rows):
            # Refused by its behaviour or keys, or its user is gone: one query tells.
            self.refuse_missing_users([row for row in rows if row["uuid"] not in inserted])
        names = internals.attnames(self.model)[1:]  # the id first, then the others
        build = internals.builder(self.model, self.alias)
        saved = []
        for row in rows:
            pk = inserted.get(row["uuid"])
            if pk is not None:
                saved.append(build([pk, *map(row.get, names)]))
        return saved

    def run_insert(
        self,
        cursor: Any,
        columns: tuple[str, ...],
        rows: list[list[Any]],
        skip_conflicts: bool,
        checked: bool,
    ) -> dict[Any, Any]:
        """Run the INSERT of ``rows`` (adapted values in ``columns`` order) on ``cursor``;
        return the ids of the rows inserted, by uuid."""
        cursor.execute(
            self.insert_sql(columns, len(rows), skip_conflicts, checked), self.insert_params(columns, rows)
        )
        # Iterating the cursor reads the rows as fetchall() does, without the error wrapper
        # CursorWrapper builds around fetchall() on each call (its __iter__ has one of its own).
        return {uuid: pk for pk, uuid in cursor}

    def lock_open_digest(self, key: str) -> models.Model | None:
        # One locking read by the unique key: PostgreSQL takes no gap locks (a key nobody
        # holds locks nothing), and re-checks the row after waiting for a claim that had it,
        # which released the key; SQLite has a single writer.
        return self.locked_digest(f"{self.column('active_key')} = %s", [key])

    def _with_defaults(self, rows: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
        # A raw INSERT gets none of the model's defaults: give the rows the NOT NULL columns
        # they leave out (a column added later, say), as save() would.
        columns = tuple(rows[0])
        found = self._defaulted.get(columns)
        if found is None:
            fields = tuple(
                f
                for f in self.model._meta.concrete_fields
                if not f.null and f.has_default() and f.attname not in rows[0]
            )
            # Defaults that are plain values (not callables, nor mutable) are the same each time.
            constant = not any(callable(f.default) or not isinstance(f.default, _IMMUTABLE) for f in fields)
            found = self._defaulted[columns] = (
                fields,
                {f.attname: f.get_default() for f in fields} if constant else None,
            )
        fields, missing = found
        if not fields:
            return rows
        if missing is None:
            missing = {f.attname: f.get_default() for f in fields}
        return [{**row, **missing} for row in rows]

    @functools.cached_property
    def _defaulted(self) -> dict[tuple[str, ...], tuple[tuple[Any, ...], dict[str, Any] | None]]:
        # By the columns a row gives: the NOT NULL columns with a default it leaves out, and
        # their values when those are constants.
        return {}

    def _written(self, row: dict[str, Any]) -> tuple[tuple[str, ...], list[Any]]:
        # One row (a trigger()): the columns its statement writes and their adapted values. It
        # leaves out what the database writes the same way by itself, about half of the columns:
        # fewer parameters for the driver to adapt and bind. In one pass, as _adapt() would.
        left = self._left_to_database
        datetimes = self._datetime_columns
        adapt = internals.datetime_adapter(self.connection)
        columns, values = [], []
        last: Any = _KEEP
        adapted: Any = None
        for name, value in row.items():
            default = left.get(name, _KEEP)
            if default is not _KEEP and type(value) is type(default) and value == default:
                continue
            if name in datetimes:
                # A trigger's created and scheduled times are one object, unless given.
                if value is not last:
                    last, adapted = value, adapt(value)
                value = adapted
            columns.append(name)
            values.append(value)
        return tuple(columns), values

    @functools.cached_property
    def _left_to_database(self) -> dict[str, Any]:
        # What the database writes in a column an INSERT leaves out: NULL where the column is
        # nullable without a database default, the default where that is a plain value.
        left: dict[str, Any] = {}
        for f in self.model._meta.concrete_fields:
            if f.generated or f.primary_key:
                continue
            if f.db_default is models.NOT_PROVIDED:
                if f.null:
                    left[f.attname] = None
            elif isinstance(f.db_default, _IMMUTABLE) and f.db_default is not None:
                left[f.attname] = f.db_default
        return left

    def _adapt(self, columns: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
        datetimes = self._datetime_indexes.get(columns)
        if datetimes is None:
            datetimes = self._datetime_indexes[columns] = tuple(
                i for i, name in enumerate(columns) if name in self._datetime_columns
            )
        adapt = internals.datetime_adapter(self.connection)
        # The rows of one fan-out (and a row's created and scheduled times, unless given)
        # share their datetimes: adapt each object once.
        memo: dict[int, Any] = {}
        out = []
        for row in rows:
            values = list(row.values())
            for i in datetimes:
                value = values[i]
                key = id(value)
                if key not in memo:
                    memo[key] = adapt(value)
                values[i] = memo[key]
            out.append(values)
        return out

    @functools.cached_property
    def _datetime_indexes(self) -> dict[tuple[str, ...], tuple[int, ...]]:
        # By the columns a row gives: the positions of its datetime columns.
        return {}

    def insert_params(self, columns: tuple[str, ...], rows: list[list[Any]]) -> Any:
        return [value for row in rows for value in row]

    def insert_values(self, columns: tuple[str, ...], count: int) -> str:
        one = "(" + ", ".join(["%s"] * len(columns)) + ")"
        return "VALUES " + ", ".join([one] * count)

    def checked_values(self, columns: tuple[str, ...], count: int) -> str:
        """The rows of ``insert_values()`` whose users exist (SQLite names a VALUES' columns
        column1, column2...)."""
        refs = {name: f"v.column{i}" for i, name in enumerate(columns, 1)}
        return f"SELECT * FROM ({self.insert_values(columns, count)}) AS v WHERE {self.users_exist(refs)}"  # noqa: S608

    # What locks a user row an INSERT refers to until COMMIT, so that no one deletes it
    # meanwhile (PostgreSQL; SQLite's single writer needs none).
    user_lock = ""

    def users_exist(self, refs: dict[str, str]) -> str:
        """A condition on an inserted row, whose columns ``refs`` names: its target user (and
        its trigger user, if any) exist."""
        users = self.model._meta.get_field("target_user").related_model._meta  # type: ignore[union-attr]
        table, key = self.quote(users.db_table), self.quote(str(users.pk.column))

        def exists(ref: str) -> str:
            return f"EXISTS (SELECT 1 FROM {table} WHERE {key} = {ref}{self.user_lock})"  # noqa: S608

        condition = exists(refs["target_user_id"])
        if "trigger_user_id" in refs:
            trigger = refs["trigger_user_id"]
            condition += f" AND ({trigger} IS NULL OR {exists(trigger)})"
        return condition

    def refuse_missing_users(self, rows: Sequence[dict[str, Any]]) -> None:
        """Raise InvalidTrigger if a user of ``rows`` (not inserted) is gone; the caller's
        savepoint or transaction undoes the rows inserted beside them."""
        wanted = {row.get(name) for row in rows for name in ("target_user_id", "trigger_user_id")} - {None}
        users = self.model._meta.get_field("target_user").related_model._base_manager.using(self.alias)  # type: ignore[union-attr]
        missing = wanted - set(users.filter(pk__in=wanted).values_list("pk", flat=True))
        if missing:
            raise InvalidTrigger(
                f"user(s) {sorted(missing, key=str)} do not exist: deleted since they were loaded? "
                "Nothing was written."
            )

    def insert_sql(
        self, columns: tuple[str, ...], count: int, skip_conflicts: bool, checked: bool = False
    ) -> str:
        key = (columns, count, skip_conflicts, checked)
        sql = self._insert_sql.get(key)
        if sql is None:
            sql = self._insert_sql[key] = self._build_insert_sql(columns, count, skip_conflicts, checked)
        return sql

    @functools.cached_property
    def _insert_sql(self) -> dict[tuple[tuple[str, ...], int, bool, bool], str]:
        return {}

    def _build_insert_sql(
        self, columns: tuple[str, ...], count: int, skip_conflicts: bool, checked: bool
    ) -> str:
        names = ", ".join(self.column(name) for name in columns)
        conflict = ""
        if skip_conflicts:
            # Rows with an idempotency key or a throttle slot skip a conflict on those too (any
            # unique column); the others on active_key, the unique generated column that
            # follows dedup_key while the row is unprocessed.
            any_column = "idempotency_key" in columns or "throttle_slot" in columns
            target = "" if any_column else f" ({self.quote('active_key')})"
            conflict = f" ON CONFLICT{target} DO NOTHING"
        source = (self.checked_values if checked else self.insert_values)(columns, count)
        return f"INSERT INTO {self.table} ({names}) {source}{conflict}{self.returning(count)}"

    def returning(self, count: int) -> str:
        """What an INSERT of ``count`` rows returns (``run_insert()`` reads it)."""
        return f" RETURNING {self.quote('id')}, {self.quote('uuid')}"

    def claim(
        self, batch_size: int, now: datetime.datetime, lease: datetime.datetime, release_prefix: str
    ) -> list[models.Model]:
        # Every column comes back, unless the rows may not be built from them here (then
        # the ids, and one SELECT through the ORM).
        load = internals.can_load_rows()
        due, due_params = self.due_sql(now, batch_size)
        set_clause, set_params = self.claim_set(lease, release_prefix)
        zoned = load and self.zoned_text()
        sql, order = self.claim_statement(due, set_clause, "*" if load else "id", zoned)
        groups = {"due": due_params, "set": set_params, "status": [Status.CREATED]}
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [param for name in order for param in groups[name]])
            rows = cursor.fetchall()
        return self.load(rows, zoned) if load else self.fetch([row[0] for row in rows])

    def claim_statement(
        self, due: str, set_clause: str, returning: str, zoned: bool = False
    ) -> tuple[str, tuple[str, ...]]:
        """Return the claim: an UPDATE of the ids ``due`` selects, setting ``set_clause`` where
        the status is still CREATED, RETURNING every column (``returning`` is "*", datetimes
        read for ``zoned``) or the id; and the order of its parameter groups ("due", "set",
        "status")."""
        raise NotImplementedError

    def users(self, ids: Collection[Any]) -> dict[Any, models.Model]:
        # One plain SELECT of the user table's columns, its rows built as claimed rows are
        # (internals.load_rows(): the ORM's converters, datetimes parsed in C): the ORM's
        # in_bulk() compiled the query and converted each datetime in Python, a tenth of a
        # batch of emails. A user model over several tables (multi-table inheritance) goes
        # through the ORM; a proxy of a one-table model reads its concrete model's table.
        model = get_user_model()
        concrete = model._meta.concrete_model or model
        if not ids or not internals.can_load_rows() or concrete._meta.parents:
            return super().users(ids)
        pk = model._meta.pk
        assert pk is not None
        values = list(ids)
        if not isinstance(pk, models.AutoField):  # (the auto fields' ids are plain ints already)
            values = [pk.get_db_prep_value(value, self.connection, prepared=False) for value in values]
        zoned = self.zoned_text()
        select = (
            f"SELECT {self.all_columns(zoned=zoned, model=model)} "  # noqa: S608 - quoted names only
            f"FROM {self.quote(model._meta.db_table)} WHERE "
        )
        rows = self.select_any_of(select, [], pk, values)
        return {user.pk: user for user in internals.load_rows(model, self.alias, rows, zoned_text=zoned)}

    def suppressed(
        self, model: type[models.Model], channels: Collection[str], addresses: Collection[str]
    ) -> dict[tuple[str, str], str]:
        # A plain SELECT: the ORM compiled this query anew for each batch of emails.
        meta = model._meta
        channel, address, reason = (meta.get_field(name) for name in SUPPRESSED)
        names = ", ".join(self.quote(str(f.column)) for f in (channel, address, reason))  # type: ignore[union-attr]
        on_channel, channel_params = self.any_of(channel, list(channels))
        select = (
            f"SELECT {names} FROM {self.quote(meta.db_table)} "  # noqa: S608 - quoted names only
            f"WHERE {self.quote(str(channel.column))} {on_channel} AND "  # type: ignore[union-attr]
        )
        rows = self.select_any_of(select, channel_params, address, list(addresses))
        return {(row[0], row[1]): row[2] for row in rows}

    def select_any_of(self, select: str, params: list[Any], field: Any, values: list[Any]) -> list[Any]:
        """The rows of ``select`` (with its ``params``) followed by the condition that ``field``
        is one of ``values``, in as many statements as the parameter limit needs."""
        size = max(1, self.max_params() - len(params))
        rows: list[Any] = []
        with self.connection.cursor() as cursor:
            for start in range(0, len(values), size):
                where, chunk = self.any_of(field, values[start : start + size])
                cursor.execute(f"{select}{self.quote(str(field.column))} {where}", [*params, *chunk])
                rows += cursor.fetchall()
        return rows

    def any_of(self, field: Any, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """The condition that ``field``'s column is one of ``values`` (the column's name goes
        before it), and its parameters."""
        return f"IN ({', '.join(['%s'] * len(values))})", list(values)

    def claim_set(self, lease: datetime.datetime, release_prefix: str) -> tuple[str, list[Any]]:
        """The SET clause of a claim, and its parameters."""
        sql = (
            "status = %s, claimed_until = %s, "
            "attempts = CASE WHEN attempts < %s THEN attempts + 1 ELSE attempts END, "
            "dedup_key = CASE WHEN dedup_key LIKE %s THEN NULL ELSE dedup_key END"
        )
        return sql, [Status.PROCESSING, self.adapt_datetime(lease), ATTEMPTS_MAX, release_prefix + "%"]

    def due_sql(self, now: datetime.datetime, batch_size: int) -> tuple[str, list[Any]]:
        """The ids of the due rows a claim takes, oldest schedule first."""
        sql = (
            f"SELECT id FROM {self.table} WHERE status = %s AND datetime_scheduled <= %s "  # noqa: S608
            # A row marked processed by hand (datetime_processed set, status left CREATED) is
            # never sent: "processed" means datetime_processed is set.
            "AND datetime_processed IS NULL ORDER BY datetime_scheduled LIMIT %s"
        )
        return sql, [Status.CREATED, self.adapt_datetime(now), batch_size]

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
        release = ", dedup_key = NULL" if release_key else ""
        marks = ", ".join(["%s"] * len(ids))
        reason: str = "%s"
        reason_params: list[Any] = [""]
        if reasons:
            reason = "CASE id " + "WHEN %s THEN %s " * len(reasons) + "ELSE %s END"
            reason_params = [value for item in reasons.items() for value in item] + [""]
        provider, provider_params = "", list[Any]()
        if provider_ids:
            whens = "WHEN %s THEN %s " * len(provider_ids)
            provider = f", provider_message_id = CASE id {whens}ELSE provider_message_id END"
            provider_params = [value for item in provider_ids.items() for value in item]
        params: list[Any] = [
            status,
            self.adapt_datetime(now),
            *reason_params,
            *provider_params,
            Status.PROCESSING,
        ]
        claim = ""
        if lease is not None:
            claim = " AND claimed_until = %s"
            params.append(self.adapt_datetime(lease))
        # Only quoted names and placeholders are formatted in; every value is a parameter.
        sql = (
            f"UPDATE {self.table} SET status = %s, datetime_processed = %s, reason = {reason}{provider}, "  # noqa: S608
            f"claimed_until = NULL{release} WHERE {self.held_status} = %s{claim} AND id IN ({marks})"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [*params, *ids])
            return int(cursor.rowcount)
