import time

import pytest
from django.core.cache import cache

from transmissions.lock import EXPIRY_SECONDS, lock


def test_the_block_runs_holding_the_lock_and_releases_it():
    with lock("k1"):
        assert cache.get("lock-transmission-k1") == 1
        assert not cache.add("lock-transmission-k1", 1, EXPIRY_SECONDS)
    assert cache.get("lock-transmission-k1") is None


def test_released_when_the_block_raises():
    with pytest.raises(ValueError), lock("k2"):
        raise ValueError("boom")
    assert cache.get("lock-transmission-k2") is None


def test_a_held_lock_times_out_with_runtime_error_after_the_timeout():
    cache.add("lock-transmission-k3", 1, 60)
    try:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match=r"^Lock could not be acquired after 60ms$"), lock("k3", 50):
            pytest.fail("the block ran without the lock")
        assert time.monotonic() - started >= 0.05
        # The other holder's lock is left alone.
        assert cache.get("lock-transmission-k3") == 1
    finally:
        cache.delete("lock-transmission-k3")
