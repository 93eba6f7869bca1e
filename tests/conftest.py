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
    """Run the tests that bring their own SQLite database only in the SQLite pass."""
    if os.environ.get("TRANSMISSIONS_TEST_DB", "sqlite") == "sqlite":
        return
    own = [item for item in items if item.get_closest_marker("own_database")]
    if own:
        config.hook.pytest_deselected(items=own)
        items[:] = [item for item in items if not item.get_closest_marker("own_database")]
