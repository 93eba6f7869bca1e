"""Low latency: hand due notifications to a Celery worker as soon as they are committed.

Off by default: the beat schedule sends every notification within a beat interval.
With ``TRANSMISSIONS_DISPATCH_ON_COMMIT = True``, ``trigger()`` of a notification that
is due now also queues ``transmissions.tasks.process_all_notifications`` with
``transaction.on_commit``:

- once per transaction: ten triggers in one ``atomic()`` block (or one request under
  ``ATOMIC_REQUESTS``) queue one task; outside a transaction every trigger is its own
  commit, and so its own task;
- never for a transaction that rolls back (nor for a rolled-back savepoint);
- never for a notification scheduled in the future: the beat sends it when it is due.

The task claims what is due, as a beat run does, so a dispatch can never send a
notification twice. A broker that cannot be reached is logged, never raised into
the code that triggered: the row is committed and the next beat run sends it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import router, transaction
from django.utils import timezone

from transmissions.conf import conf
from transmissions.models import Notification

logger = logging.getLogger("transmissions")

P = ParamSpec("P")
R = TypeVar("R")


def after_trigger(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate ``trigger()``: schedule a dispatch for the notification it created."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        notification = func(*args, **kwargs)
        if isinstance(notification, Notification):
            schedule_dispatch(notification)
        return notification

    return wrapper


def schedule_dispatch(notification: Notification) -> bool:
    """Queue one ``dispatch()`` for when the current transaction commits; return whether
    this call added it (False when the setting is off, the notification is not due yet,
    or this transaction already has one)."""
    if not conf.TRANSMISSIONS_DISPATCH_ON_COMMIT:
        return False
    if notification.datetime_scheduled is None or notification.datetime_scheduled > timezone.now():
        return False
    using = router.db_for_write(Notification)
    connection = transaction.get_connection(using)
    # Django drops the callbacks of a rolled-back savepoint from run_on_commit, so a
    # dispatch found here will run at commit, and one found missing must be added.
    if connection.in_atomic_block and any(entry[1] is dispatch for entry in connection.run_on_commit):
        return False
    transaction.on_commit(dispatch, using=using)
    return True


def dispatch() -> None:
    """Queue the processing task now; log, never raise, when the broker fails."""
    from transmissions.tasks import process_all_notifications

    try:
        process_all_notifications.delay()
    except Exception:
        logger.warning(
            "Could not queue process_all_notifications; the next beat run will send the "
            "committed notifications.",
            exc_info=True,
        )
