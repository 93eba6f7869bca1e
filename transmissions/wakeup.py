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
notification twice. A broker that cannot be reached, or does not answer within
``TRANSMISSIONS_DISPATCH_TIMEOUT`` seconds, is logged, never raised into (nor waited
for by) the code that triggered: the rows are committed and the next beat run sends them.
"""

from __future__ import annotations

import logging
import threading
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
    """Queue the processing task, waiting at most ``TRANSMISSIONS_DISPATCH_TIMEOUT`` seconds;
    log, never raise, when the broker fails or does not answer in time.

    The publish runs in a thread of its own, without Celery's publish retries: a broker
    that accepts connections and then stays silent can hold that thread for as long as
    its socket allows, but never the request that committed. While it is held, later
    wake-ups are skipped (logged): at most one dispatch is in flight per process.
    """
    # Resolved here: the app current in this thread (a new thread would get Celery's default app).
    task: Any = tasks.process_all_notifications._get_current_object()  # type: ignore[attr-defined]
    if task.app.conf.task_always_eager:
        # Runs here and now (tests, scripts): no broker to wait for.
        _dispatch(task)
        return
    global _in_flight
    with _lock:
        if _in_flight is not None and _in_flight.is_alive():
            logger.warning(
                "Did not queue process_all_notifications: an earlier dispatch is still waiting "
                "for the broker; the next beat run will send the committed notifications."
            )
            return
        thread = _in_flight = threading.Thread(
            target=_dispatch, args=(task,), name="transmissions-dispatch", daemon=True
        )
    thread.start()
    timeout = conf.TRANSMISSIONS_DISPATCH_TIMEOUT
    thread.join(timeout)
    if thread.is_alive():
        logger.warning(
            "Could not queue process_all_notifications within %s s (TRANSMISSIONS_DISPATCH_TIMEOUT): "
            "the broker does not answer; the next beat run will send the committed notifications.",
            timeout,
        )


_in_flight: threading.Thread | None = None
_lock = threading.Lock()


def _dispatch(task: Any) -> None:
    try:
        task.apply_async(retry=False)
    except Exception:
        logger.warning(
            "Could not queue process_all_notifications; the next beat run will send the "
            "committed notifications.",
            exc_info=True,
        )
