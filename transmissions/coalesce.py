"""Coalesced wake-ups: at most one woken worker looking at a time, whatever the commit rate.

Without it, every committed transaction that triggered a due notification queues its own
task: a burst of 2,000 separately committed triggers queues 2,000 tasks, most of which
find nothing left to do. With ``TRANSMISSIONS_WAKE_UP_CACHE`` naming a cache that all
processes share (Redis, Memcached, the database cache), one key says "a worker will look":

- a commit queues a task only if it can ``add()`` the key (``reserve()``); if the key is
  there, a worker is queued or running and will see the committed rows;
- a worker's run holds the key while it claims (``hold()``), and keeps claiming for
  ``TRANSMISSIONS_WAKE_UP_LINGER`` seconds after the backlog runs dry, so a burst that
  trickles in is claimed by the worker already running instead of waking another;
- it then deletes the key and claims once more (``release()`` then the caller's claim):
  a commit that saw the key just before it went was committed before that last claim.

So no committed row waits for more than the worker's own pace, and a burst costs about one
task per pause longer than the linger. A key whose worker died expires after
``PENDING_SECONDS``; until then the rows wait for the beat (or cron, or ``--loop``), as they
would without a wake-up.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import caches

from transmissions.conf import conf

KEY = "transmissions:wake-up"
# How long the key outlives its last hold() (a worker refreshes it at every claim).
PENDING_SECONDS = 60


def _cache() -> Any:
    alias = conf.TRANSMISSIONS_WAKE_UP_CACHE
    return None if alias is None else caches[alias]


def enabled() -> bool:
    return conf.TRANSMISSIONS_WAKE_UP_CACHE is not None


def reserve() -> bool:
    """Whether the caller should queue a wake-up: True when coalescing is off, or when this
    call set the key (no worker was queued or looking)."""
    cache = _cache()
    return cache is None or bool(cache.add(KEY, 1, PENDING_SECONDS))


def hold() -> None:
    """A worker is looking: later commits need not wake another (refreshes the key)."""
    cache = _cache()
    if cache is not None:
        cache.set(KEY, 1, PENDING_SECONDS)


def release() -> None:
    """The worker stops looking: the next commit wakes one. Claim once more after this."""
    cache = _cache()
    if cache is not None:
        cache.delete(KEY)
