"""``lock(key, timeout)``: transmissions 0.2's cache lock, kept for the code that imports it.

0.2 took it around each trigger of the deduplicating behaviours and around each
``process_notification``. Nothing in transmissions uses it any more: the database's
unique ``dedup_key`` and the claim hold those rules. It is as good as the cache behind
it: a cache shared by every process (Redis, Memcached) makes it a lock between them,
the default local-memory cache only within one process.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from django.core.cache import cache

# How long a lock outlives a holder that never released it (a killed process), in seconds.
EXPIRY_SECONDS = 90
# How often a waiting caller tries again, in milliseconds.
POLL_MS = 10


@contextlib.contextmanager
def lock(key: str, timeout: int = 5000) -> Iterator[None]:
    """Hold the lock named ``key`` for the ``with`` block.

    Wait up to ``timeout`` milliseconds for it, then raise ``RuntimeError("Lock could
    not be acquired after <n>ms")``. The lock is released when the block ends, or
    expires after ``EXPIRY_SECONDS``.
    """
    lock_id = f"lock-transmission-{key}"
    waited = 0
    while not cache.add(lock_id, 1, EXPIRY_SECONDS):
        time.sleep(POLL_MS / 1000)
        waited += POLL_MS
        if waited > timeout:
            raise RuntimeError(f"Lock could not be acquired after {waited}ms")
    try:
        yield
    finally:
        cache.delete(lock_id)
