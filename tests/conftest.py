import pytest

from tests import messages


@pytest.fixture(autouse=True)
def _clear_sent():
    messages.sent.clear()
    from transmissions.channels import sms

    sms.outbox.clear()
    yield
