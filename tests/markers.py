"""Marks for the tests that need several processes on one server database."""

import os

import pytest

# Children and Celery workers are other processes: SQLite's in-memory test database
# cannot be shared with them. On PostgreSQL (or MariaDB/MySQL) an unreachable server
# fails the database setup, so these tests error; they are never skipped there.
server_db = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        os.environ.get("TRANSMISSIONS_TEST_DB", "sqlite") == "sqlite",
        reason="needs several processes on one server database: TRANSMISSIONS_TEST_DB=postgres",
    ),
    pytest.mark.django_db(transaction=True),
]
