"""The tasks that run processing: Celery's and ``django.tasks``'. Importable with neither configured.

- ``process_all_notifications``: the Celery task the beat schedule runs (its dotted name
  is the README's beat entry, unchanged since 0.2) and that ``TRANSMISSIONS_WAKE_UP =
  "celery"`` queues.
- ``process_notification``: transmissions 0.2's Celery task for one notification, through
  the workers' claim.
- ``process_due_notifications``: the ``django.tasks`` task (Django 6.0+, or the
  django-tasks backport on 5.2) that ``TRANSMISSIONS_WAKE_UP = "django_tasks"`` enqueues.
  Making a ``django.tasks`` task reads ``TASKS`` and builds its backend, so it is made on
  first use (a module ``__getattr__``), never at import: a project without ``TASKS``, or
  with a broken one (a system check says so), imports this module as before. A worker
  finds it by its path, ``transmissions.tasks.process_due_notifications``.

The two that process everything due run the same loop (``worker.process_all_notifications``)
and return how many notifications they took. The claim makes each notification go to one
worker, so a task that runs twice, or two at once, cannot send anything twice.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from celery import shared_task
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Min

from transmissions import coalesce, lifecycle, taskapi, worker
from transmissions.conf import conf
from transmissions.status import Status

logger = logging.getLogger("transmissions")

DJANGO_TASK = "process_due_notifications"


@shared_task(name="transmissions.tasks.process_all_notifications", ignore_result=True)
def process_all_notifications() -> int:
    """Process every due notification within the run's time budget; return how many."""
    summary = worker.run()
    if summary.stopped_early and coalesce.reserve():
        # Coalesced wake-ups (coalesce.py): the commits this run stood for get a next run.
        process_all_notifications.apply_async()
    return summary.taken


@shared_task(name="transmissions.tasks.process_notification", ignore_result=True)
def process_notification(notification_id: int) -> None:
    """Process notification ``notification_id`` now if it is still waiting (transmissions 0.2's task).

    Calling it again, or from several workers at once, does nothing more: the row is
    claimed as a batch claims it. A message that breaks while being built or checked is
    written BROKEN and its exception raised, so Celery records the failure.
    """
    worker.process_one(notification_id)


def _process_due_notifications() -> int:
    """Process every due notification within the run's time budget, enqueue what the run
    leaves to do (``follow_up()``); return how many it took."""
    summary = worker.run(detail=True)
    follow_up(summary)
    return summary.taken


# Outcomes that give a row a new schedule in the future.
RESCHEDULED = ("retried", "deferred")


def follow_up(summary: worker.Summary) -> list[Any]:
    """Enqueue what a run of ``process_due_notifications`` leaves to do; return the results.

    - now, when notifications are still due (the run stopped at ``TRANSMISSIONS_TIME_LIMIT``
      with a backlog, or handed rows back unsent): a backlog is worked off without a sweep.
      With coalesced wake-ups (``coalesce.py``) the run says so itself (``stopped_early``)
      and the next run is queued only if no other is; without, one query asks;
    - at the earliest new schedule of the rows it retried (a transient error) or a policy
      deferred, on a backend that supports ``run_after``.

    A run that took nothing enqueues nothing (unless it stopped early, coalesced), so a chain
    ends when the work does; each run enqueues at most two, so the tasks in flight never
    outnumber the runs that made them.
    """
    queued = []
    notifications = lifecycle.notification_model().objects
    if summary.stopped_early:
        # Coalesced wake-ups (coalesce.py): the commits this run stood for get a next run.
        if coalesce.reserve():
            queued.append(enqueue())
    elif not summary.taken:
        return queued
    elif not coalesce.enabled() and notifications.due().exists():
        queued.append(enqueue())
    later = [pk for pk, _, outcome, _ in summary.rows if outcome in RESCHEDULED]
    if later and supports_defer():
        pending = notifications.filter(pk__in=later, status=Status.CREATED)
        at = pending.aggregate(at=Min("datetime_scheduled"))["at"]
        if at is not None:
            queued.append(enqueue(at))
    return queued


# django.tasks names a task by its function's module and qualified name: this one's path is
# where __getattr__ below answers with the Task.
_process_due_notifications.__name__ = _process_due_notifications.__qualname__ = DJANGO_TASK


def django_task() -> Any:
    """Return the ``django.tasks`` Task ``transmissions.tasks.process_due_notifications``,
    made on the first call on ``TRANSMISSIONS_TASKS_BACKEND`` and ``TRANSMISSIONS_TASKS_QUEUE``.

    Raises ``ImproperlyConfigured`` when neither ``django.tasks`` nor the backport is
    installed, and what the task framework raises for a backend it cannot load.
    """
    task = globals().get(DJANGO_TASK)
    if task is None:
        api = taskapi.module()
        if api is None:
            raise ImproperlyConfigured(
                "transmissions.tasks.process_due_notifications needs django.tasks: Django 6.0+, "
                'or the django-tasks backport on Django 5.2 (pip install "transmissions[tasks]").'
            )
        make = api.task(backend=conf.TRANSMISSIONS_TASKS_BACKEND, queue_name=conf.TRANSMISSIONS_TASKS_QUEUE)
        task = globals()[DJANGO_TASK] = make(_process_due_notifications)
    return task


def enqueue(run_after: datetime.datetime | None = None) -> Any:
    """Enqueue ``process_due_notifications`` on ``TRANSMISSIONS_TASKS_BACKEND`` and
    ``TRANSMISSIONS_TASKS_QUEUE`` (at ``run_after``, if given); return its ``TaskResult``, or
    None, logged at WARNING, when it could not be."""
    try:
        task = django_task().using(
            backend=conf.TRANSMISSIONS_TASKS_BACKEND,
            queue_name=conf.TRANSMISSIONS_TASKS_QUEUE,
            run_after=run_after,
        )
        return task.enqueue()
    except Exception:
        logger.warning(
            "Could not enqueue transmissions.tasks.process_due_notifications on the %r task "
            "backend; the next sweep will send the committed notifications.",
            conf.TRANSMISSIONS_TASKS_BACKEND,
            exc_info=True,
        )
        return None


def supports_defer() -> bool:
    """Whether ``TRANSMISSIONS_TASKS_BACKEND`` can run a task later (``run_after``)."""
    api = taskapi.module()
    try:
        return api is not None and bool(api.task_backends[conf.TRANSMISSIONS_TASKS_BACKEND].supports_defer)
    except Exception:
        return False  # enqueue() logs what is wrong when something is due


def __getattr__(name: str) -> Any:
    if name == DJANGO_TASK:
        return django_task()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
