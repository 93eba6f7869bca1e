"""SQLite: one writer at a time, so a claim needs no row locks; the planner needs hints."""

from __future__ import annotations

import sqlite3
from typing import Any

from transmissions.db.returning import ReturningDialect


class SQLiteDialect(ReturningDialect):
    vendor = "sqlite"
    # "+status" keeps SQLite on the primary key rather than scanning every PROCESSING
    # row of the due index (all workers' batches) for each outcome.
    held_status = "+status"

    def max_params(self) -> int:
        # Django assumes SQLite's old limit of 999; ask the library (Python >= 3.11).
        self.connection.ensure_connection()
        getlimit = getattr(self.connection.connection, "getlimit", None)
        if getlimit is not None:
            return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        return super().max_params()

    def datetime_form(self, zoned: bool = False) -> str:
        # "+col", an expression: the sqlite3 module hands its text back as stored, without the
        # converter Django registers for datetime types (bytes decoded, parsed in Python, made
        # aware with replace()), and load_rows() parses it in C (datetime.fromisoformat). Three
        # such columns a row were a quarter of the CPU a no-op batch costs.
        return "+{}"

    # One row (a trigger()): no RETURNING; the row count says whether it went in (ON CONFLICT
    # DO NOTHING, or its users' check) and the connection's last rowid is its id, which spares
    # a fetch through Django's cursor. Its parameters are named: Django's SQLite cursor turns
    # those into sqlite3's with one string formatting, the positional ones with a regular
    # expression over the whole statement (about twice the time for this one).

    def insert_values(self, columns: tuple[str, ...], count: int) -> str:
        if count != 1:
            return super().insert_values(columns, count)
        return "VALUES (" + ", ".join(f"%({name})s" for name in columns) + ")"

    def insert_params(self, columns: tuple[str, ...], rows: list[list[Any]]) -> Any:
        if len(rows) != 1:
            return super().insert_params(columns, rows)
        return dict(zip(columns, rows[0], strict=True))

    def returning(self, count: int) -> str:
        return "" if count == 1 else super().returning(count)

    def run_insert(
        self,
        cursor: Any,
        columns: tuple[str, ...],
        rows: list[list[Any]],
        skip_conflicts: bool,
        checked: bool,
    ) -> dict[Any, Any]:
        if len(rows) != 1:
            return super().run_insert(cursor, columns, rows, skip_conflicts, checked)
        cursor.execute(
            self.insert_sql(columns, 1, skip_conflicts, checked), self.insert_params(columns, rows)
        )
        if cursor.rowcount != 1:
            return {}
        return {rows[0][columns.index("uuid")]: cursor.lastrowid}

    def lock_users(self, user_ids: Any) -> None:
        """Nothing to lock: SQLite has a single writer."""

    def claim_statement(
        self, due: str, set_clause: str, returning: str, zoned: bool = False
    ) -> tuple[str, tuple[str, ...]]:
        # One statement, atomic under the single writer. "+status" keeps SQLite off the
        # due index for the outer WHERE: with it, each claim scanned every waiting row
        # (O(backlog) per batch) instead of looking up the ids the subquery chose.
        columns = self.all_columns() if returning == "*" else "id"
        sql = (
            f"UPDATE {self.table} SET {set_clause} WHERE +status = %s AND id IN ({due}) "  # noqa: S608
            f"RETURNING {columns}"
        )
        return sql, ("set", "status", "due")
