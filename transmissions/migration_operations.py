"""Migration operations of transmissions' own, used by 0005 and the squashed migration.

Each one behaves like Django's, with one difference said in its docstring. They live
outside the migration files so both migrations share them.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from transmissions.exceptions import DowngradeRefused

TABLE = "transmissions_notification"


# Unapplying one of these (or anything before them) takes the table below today's schema.
UPGRADE_MIGRATIONS = frozenset({"0005_transmissions_1_0", "0001_squashed_0005_transmissions_1_0"})


def refuse_if_rows(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Refuse to undo the upgrade (or the initial migration) while notifications exist.

    Undoing drops columns that 0.2 cannot rebuild (``data``, ``dedup_key``...) or, below
    0001, the whole table: nothing of the kind happens silently. Empty the table first
    if that is really meant.
    """
    _refuse_over_rows(schema_editor.connection)


def refuse_downgrade_plan(sender: Any, plan: Any = None, using: str = "default", **kwargs: Any) -> None:
    """``pre_migrate`` receiver: refuse a plan that unapplies the upgrade over rows, before it
    unapplies anything (the migrations added since 0005 included)."""
    backwards = {m.name for m, back in plan or () if back and m.app_label == "transmissions"}
    if not backwards & UPGRADE_MIGRATIONS:
        return
    connection = connections[using]
    if TABLE in connection.introspection.table_names():
        _refuse_over_rows(connection)


def _refuse_over_rows(connection: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(TABLE)}")  # noqa: S608
        count = cursor.fetchone()[0]
    if count:
        raise DowngradeRefused(
            f"Refusing to unapply transmissions' migrations: {TABLE} holds {count} "
            "notification(s), which this would drop or cut down to what transmissions 0.2 "
            "could store. Back the table up and delete its rows first "
            "(Notification.objects.all().delete()) if that is what you want; see "
            "docs/upgrading.md."
        )


def noop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Nothing to do in this direction."""


def refuse_reversal_over_rows() -> migrations.RunPython:
    """The operation that ends 0005 and the squashed migration: unapplying starts with it."""
    return migrations.RunPython(noop, refuse_if_rows, elidable=False)


class AddIndexConcurrently(migrations.AddIndex):
    """AddIndex that builds concurrently on PostgreSQL (writes go on meanwhile).

    Outside a transaction only: the migration using it must be ``atomic = False``.
    """

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql" or schema_editor.connection.in_atomic_block:
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)


class AlterFieldElsewhere(migrations.AlterField):
    """An AlterField that ``upgrade.retype_columns`` has done already on PostgreSQL."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def _has_column(schema_editor: Any, table: str, column: str) -> bool:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if table not in connection.introspection.table_names(cursor):
            return False  # sqlmigrate on a database without the table
        return column in {c.name for c in connection.introspection.get_table_description(cursor, table)}


def _has_constraint(schema_editor: Any, table: str, name: str) -> bool:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if table not in connection.introspection.table_names(cursor):
            return False
        return name in connection.introspection.get_constraints(cursor, table)


class AddFieldUnlessPresent(migrations.AddField):
    """AddField that leaves a column ``upgrade.retype_columns`` added already alone.

    On PostgreSQL the upgrade from 0.2 adds ``active_key`` in 0005's one table rewrite,
    rather than in a second rewrite here; a new database has no such column yet.
    """

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not _has_column(schema_editor, model._meta.db_table, self.name):
            super().database_forwards(app_label, schema_editor, from_state, to_state)


class AddConstraintUnlessPresent(migrations.AddConstraint):
    """AddConstraint that leaves a constraint ``upgrade.retype_columns`` added already alone."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not _has_constraint(schema_editor, model._meta.db_table, self.constraint.name):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
