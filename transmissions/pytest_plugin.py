"""A pytest fixture for projects that use transmissions.

Enable it in the project's top ``conftest.py``: ``pytest_plugins = ["transmissions.pytest_plugin"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from transmissions.testing import Outbox, capture


@pytest.fixture
def transmissions_outbox() -> Iterator[Outbox]:
    """Capture what channels would send during the test; yield the outbox."""
    with capture() as outbox:
        yield outbox
