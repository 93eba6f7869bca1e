"""Database dialects: the SQL that differs between vendors, one module per vendor.

``dialect(using, model)`` returns the dialect for a database alias. ``base.Dialect``
is the portable path, the ORM only, which any database Django supports can run; a
vendor module overrides what its SQL does in fewer round trips. Adding a vendor is
adding a module here and a line in ``_DIALECTS``.
"""

from __future__ import annotations

from django.db import connections
from django.db.models import Model
from django.db.models.signals import post_save, pre_save

from transmissions import internals
from transmissions.db.base import Dialect
from transmissions.db.mysql import MySQLDialect
from transmissions.db.postgresql import PostgreSQLDialect
from transmissions.db.sqlite import SQLiteDialect

_DIALECTS: dict[str, type[Dialect]] = {
    "postgresql": PostgreSQLDialect,
    "sqlite": SQLiteDialect,
    "mysql": MySQLDialect,
}


def dialect(using: str, model: type[Model]) -> Dialect:
    """Return the dialect that writes ``model``'s rows on database ``using``.

    A project listening to the model's ``pre_save``/``post_save`` gets the portable
    path for inserts, which goes through ``Model.save()`` and so sends them.
    """
    connection = connections[using]
    signals = internals.listened(model, pre_save, post_save)
    # One object per connection (each thread has its own), model and signal state, so
    # the statements a dialect builds are built once. Kept on the connection itself: it
    # lives as long as the connection (a finished thread's goes, with its dialects).
    per_connection = internals.kept_on(connection)
    found = per_connection.get((model, signals))
    if found is None:
        cls = _DIALECTS.get(connection.vendor, Dialect)
        found = per_connection[(model, signals)] = cls(connection, model, signals=signals)
    return found


__all__ = ["Dialect", "dialect"]
