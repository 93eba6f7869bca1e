import os

import pytest

from tests import messages

# The fixture projects get from transmissions.pytest_plugin, tested in test_testing.py.
from transmissions.pytest_plugin import transmissions_outbox  # noqa: F401


@pytest.fixture(autouse=True)
def _clear_sent():
    messages.sent.clear()
    from transmissions.channels import sms

    sms.outbox.clear()
    yield


def pytest_collection_modifyitems(config, items):
    """Deselect, never skip, the tests that cannot run on this pass's database.

    ``own_database`` tests bring their own SQLite file: the SQLite pass runs them.
    ``postgres`` tests need several processes on one server database: the PostgreSQL
    and MariaDB passes run them (``.ci/run`` runs all three passes).
    """
    on_sqlite = os.environ.get("TRANSMISSIONS_TEST_DB", "sqlite") == "sqlite"
    unwanted = "postgres" if on_sqlite else "own_database"
    drop = [item for item in items if item.get_closest_marker(unwanted)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if not item.get_closest_marker(unwanted)]
