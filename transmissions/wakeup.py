"""Waking a worker up when due notifications are committed, instead of at the next sweep.

``TRANSMISSIONS_WAKE_UP`` chooses what wakes it (``conf.py`` has the precedence over the
older ``TRANSMISSIONS_DISPATCH_ON_COMMIT = True``, which means ``"celery"``):

- ``None`` (the default): nothing; the Celery beat entry, cron or
  ``process_notifications --loop`` finds due notifications within its interval.
- ``"celery"``: ``trigger()`` and ``trigger_many()`` queue the Celery task
  ``transmissions.tasks.process_all_notifications`` with ``transaction.on_commit``.
- ``"django_tasks"``: they enqueue the ``django.tasks`` task
  ``transmissions.tasks.process_due_notifications`` (on ``TRANSMISSIONS_TASKS_BACKEND``
  and ``TRANSMISSIONS_TASKS_QUEUE``) the same way.

For both:

- once per transaction: ten triggers in one ``atomic()`` block (or one request under
  ``ATOMIC_REQUESTS``) queue one task; outside a transaction every trigger is its own
  commit, and so its own task;
- never for a transaction that rolls back (nor for a rolled-back savepoint);
- not for notifications scheduled in the future, except with ``"django_tasks"`` on a
  backend that supports ``run_after`` (``supports_defer``): one task per distinct
  scheduled time per transaction, deferred to that time. Elsewhere the sweep sends them
  when due.

The task claims what is due, as a beat run does, so a wake-up can never send a
notification twice, and an extra one (a backend that runs a task twice, a savepoint
rolled back after its trigger) only finds nothing to do. A Celery broker that cannot be
reached, or does not answer within ``TRANSMISSIONS_DISPATCH_TIMEOUT`` seconds, or a task
backend that fails, is logged at WARNING, never raised into (nor, for Celery, waited for
by) the code that triggered: the rows are committed and the next sweep sends them. The
``django.tasks`` enqueue runs in the committing thread (a database backend writes through
that thread's connection), bounded by the backend's own timeouts.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from transmissions import coalesce, internals, tasks
from transmissions.conf import DJANGO_TASKS, WAKE_UP_ENGINES, conf

logger = logging.getLogger("transmissions")


def after_commit(using: str, notifications: Sequence[Any]) -> bool:
    """Queue one wake-up for when the current transaction on ``using`` commits, if any of
    ``notifications`` is due (and, with ``"django_tasks"`` on a backend that defers, one
    per future schedule); return whether this call added one (False when the setting is
    off, none is due yet, or this transaction already has them)."""
    engine = conf.TRANSMISSIONS_WAKE_UP
    if engine not in WAKE_UP_ENGINES:
        return False
    now = timezone.now()
    due = False
    later: set[datetime.datetime] = set()
    for n in notifications:
        at = n.datetime_scheduled
        if at is None:
            continue
        if at <= now:
            due = True
        elif engine == DJANGO_TASKS:
            later.add(at)
    added = internals.on_commit_once(wake, using) if due else False
    if later and tasks.supports_defer():
        for at in sorted(later):
            added = internals.on_commit_once(Deferred(at), using) or added
    return added


def wake() -> None:
    """Queue the processing task, waiting at most ``TRANSMISSIONS_DISPATCH_TIMEOUT`` seconds
    for Celery's broker; log, never raise, when the broker or task backend fails or does not
    answer in time. With ``"django_tasks"``, ``tasks.enqueue()``.

    The publish runs in a thread of its own, without Celery's publish retries: a broker
    that accepts connections and then stays silent can hold that thread for as long as
    its socket allows, but never the request that committed. While it is held, later
    wake-ups are skipped (logged): at most one dispatch is in flight per process.
    """
    if not coalesce.reserve():
        return  # a worker is queued or looking already, and will see these rows (coalesce.py)
    if conf.TRANSMISSIONS_WAKE_UP == DJANGO_TASKS:
        tasks.enqueue()
        return
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


@dataclass(frozen=True)
class Deferred:
    """An on-commit callback that enqueues the ``django.tasks`` task to run at ``run_after``.
    Equal when their times are, so a transaction gets one per distinct time."""

    run_after: datetime.datetime

    def __call__(self) -> None:
        tasks.enqueue(self.run_after)
