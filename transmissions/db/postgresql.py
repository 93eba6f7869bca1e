"""PostgreSQL: one-statement inserts through ``unnest()`` arrays, claims with SKIP LOCKED."""

from __future__ import annotations

from typing import Any

from transmissions.db.returning import ReturningDialect


class PostgreSQLDialect(ReturningDialect):
    vendor = "postgresql"

    # The users an INSERT in a transaction refers to stay until its COMMIT: a DELETE waits.
    user_lock = " FOR KEY SHARE"

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

    def claim_statement(self, due: str, set_clause: str, returning: str) -> tuple[str, tuple[str, ...]]:
        # The materialized CTE runs once and its row locks skip what another worker
        # holds; a row another worker claimed meanwhile fails the re-checked status. (A
        # plain ``id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`` may be re-scanned by
        # the planner and claim more than n rows.)
        columns = self.all_columns("n") if returning == "*" else "n.id"
        sql = (
            f"WITH claim AS MATERIALIZED ({due} FOR UPDATE SKIP LOCKED) "  # noqa: S608
            f"UPDATE {self.table} AS n SET {set_clause} FROM claim "
            f"WHERE n.id = claim.id AND n.status = %s RETURNING {columns}"
        )
        return sql, ("due", "set", "status")
