import os

import pytest

from tests import messages
from tests.utils import make_user
from transmissions.channels.email import HAS_MAILERS

# The fixture projects get from transmissions.pytest_plugin, tested in test_testing.py.
from transmissions.pytest_plugin import transmissions_outbox  # noqa: F401
from transmissions.registry import registry


@pytest.fixture
def user(db):
    """A user every channel can reach: an email address, an E.164 phone number, a first name."""
    return make_user(phone_number="+15005550006", first_name="Ada")


@pytest.fixture
def cleanup():
    """Trigger names a test registers; unregistered after it."""
    names = []
    yield names
    for name in names:
        registry.unregister(name)


@pytest.fixture(autouse=True)
def _clear_sent():
    messages.sent.clear()
    messages.on_send.clear()
    from transmissions.channels import sms

    sms.outbox.clear()
    yield


_VENDORS = {"sqlite": "sqlite", "postgres": "postgresql", "mysql": "mysql"}


def _unwanted(item, on_sqlite, vendor):
    if item.get_closest_marker("postgres" if on_sqlite else "own_database"):
        return True
    if item.get_closest_marker("fast_path") and os.environ.get("TRANSMISSIONS_TEST_FAST_PATH") == "0":
        return True
    if item.get_closest_marker("before_mailers" if HAS_MAILERS else "mailers"):
        return True
    only, not_on = item.get_closest_marker("only_on"), item.get_closest_marker("not_on")
    return (only is not None and only.args[0] != vendor) or (not_on is not None and not_on.args[0] == vendor)


def pytest_collection_modifyitems(config, items):
    """Deselect, never skip, the tests that cannot run on this pass's database.

    ``own_database`` tests bring their own SQLite file: the SQLite pass runs them.
    ``postgres`` tests need several processes on one server database: the PostgreSQL
    and MariaDB passes run them. ``only_on(vendor)`` tests (query plans) run on that
    vendor's pass, ``not_on(vendor)`` tests on the others. ``fast_path`` tests assert what
    the shortcuts of ``transmissions/internals.py`` give: the pass that turns them off
    (TRANSMISSIONS_TEST_FAST_PATH=0) leaves them out. ``mailers`` tests need Django 6.1+ and
    ``before_mailers`` tests an older Django: ``.ci/run``'s Django 6.1 pass runs the first,
    its other passes the second. ``.ci/run`` runs all five passes, so each test runs somewhere.
    """
    db = os.environ.get("TRANSMISSIONS_TEST_DB", "sqlite")
    on_sqlite, vendor = db == "sqlite", _VENDORS.get(db, db)
    drop = [item for item in items if _unwanted(item, on_sqlite, vendor)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if not _unwanted(item, on_sqlite, vendor)]
