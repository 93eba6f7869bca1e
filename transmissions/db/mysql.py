"""MySQL and MariaDB: no RETURNING, so the portable path, with raw outcome UPDATEs.

A claim is SELECT ... FOR UPDATE SKIP LOCKED then an UPDATE of those ids, in one
transaction, then one SELECT of the rows; a trigger is a ``save()`` in a savepoint.
"""

from __future__ import annotations

from transmissions.db.base import Dialect


class MySQLDialect(Dialect):
    vendor = "mysql"

    # InnoDB's "Deadlock found when trying to get lock; try restarting transaction": it
    # rolled the whole transaction back. Ours alone may go round again; a caller's is gone.
    DEADLOCK = 1213

    def lost_race(self, exc: Exception) -> bool:
        cause = exc.__cause__
        code = cause.args[0] if cause is not None and cause.args else None
        return code == self.DEADLOCK and self.connection.get_autocommit()
