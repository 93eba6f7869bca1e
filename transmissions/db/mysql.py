"""MySQL and MariaDB: no RETURNING, so the portable path, with raw outcome UPDATEs.

A claim is SELECT ... FOR UPDATE SKIP LOCKED then an UPDATE of those ids, in one
transaction, then one SELECT of the rows; a trigger is a ``save()`` in a savepoint.
"""

from __future__ import annotations

from transmissions.db.base import Dialect


class MySQLDialect(Dialect):
    vendor = "mysql"
