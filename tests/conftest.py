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
