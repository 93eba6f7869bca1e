"""Marks for the tests that need several processes on one server database."""

import pytest

# Children and Celery workers are other processes: SQLite's in-memory test database
# cannot be shared with them, so the SQLite pass deselects these (conftest.py) and the
# PostgreSQL and MariaDB passes run them. There an unreachable server fails the
# database setup, so these tests error; they are never skipped.
server_db = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]
