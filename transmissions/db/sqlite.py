"""SQLite: one writer at a time, so a claim needs no row locks; the planner needs hints."""

from __future__ import annotations

import datetime
import sqlite3
from typing import Any

from transmissions.db.returning import ReturningDialect
from transmissions.status import Status


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

    def lock_users(self, user_ids: Any) -> None:
        """Nothing to lock: SQLite has a single writer."""

    def claim_sql(
        self,
        batch_size: int,
        now: datetime.datetime,
        lease: datetime.datetime,
        release_prefix: str,
        all_columns: bool = True,
    ) -> tuple[str, list[Any]]:
        # One statement, atomic under the single writer. "+status" keeps SQLite off the
        # due index for the outer WHERE: with it, each claim scanned every waiting row
        # (O(backlog) per batch) instead of looking up the ids the subquery chose.
        due, due_params = self.due_sql(now, batch_size)
        returning = self.all_columns() if all_columns else "id"
        set_clause, set_params = self.claim_set(lease, release_prefix)
        sql = (
            f"UPDATE {self.table} SET {set_clause} WHERE +status = %s AND id IN ({due}) "  # noqa: S608
            f"RETURNING {returning}"
        )
        return sql, [*set_params, Status.CREATED, *due_params]
