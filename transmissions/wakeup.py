"""Waking a worker up when due notifications are committed, instead of at the next beat.

Off by default: the beat schedule sends every notification within a beat interval.
With ``TRANSMISSIONS_DISPATCH_ON_COMMIT = True``, ``trigger()`` and ``trigger_many()``
of notifications due now also queue ``transmissions.tasks.process_all_notifications``
with ``transaction.on_commit``:

- once per transaction: ten triggers in one ``atomic()`` block (or one request under
  ``ATOMIC_REQUESTS``) queue one task; outside a transaction every trigger is its own
  commit, and so its own task;
- never for a transaction that rolls back (nor for a rolled-back savepoint);
- never for notifications scheduled in the future: the beat sends them when due.

The task claims what is due, as a beat run does, so a wake-up can never send a
notification twice. A broker that cannot be reached is logged, never raised into
the code that triggered: the rows are committed and the next beat run sends them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from transmissions import internals, tasks
from transmissions.conf import conf

logger = logging.getLogger("transmissions")


def after_commit(using: str, notifications: Sequence[Any]) -> bool:
    """Queue one ``wake()`` for when the current transaction on ``using`` commits, if any of
    ``notifications`` is due; return whether this call added it (False when the setting is
    off, none is due yet, or this transaction already has one)."""
    if not conf.TRANSMISSIONS_DISPATCH_ON_COMMIT:
        return False
    now = timezone.now()
    if not any(n.datetime_scheduled is not None and n.datetime_scheduled <= now for n in notifications):
        return False
    return internals.on_commit_once(wake, using)


def wake() -> None:
    """Queue the processing task now; log, never raise, when the broker fails."""
    try:
        tasks.process_all_notifications.delay()
    except Exception:
        logger.warning(
            "Could not queue process_all_notifications; the next beat run will send the "
            "committed notifications.",
            exc_info=True,
        )
