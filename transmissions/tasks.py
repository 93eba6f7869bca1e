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

from typing import Any

from celery import shared_task
from django.core.exceptions import ImproperlyConfigured

from transmissions import taskapi, worker
from transmissions.conf import conf

DJANGO_TASK = "process_due_notifications"


@shared_task(name="transmissions.tasks.process_all_notifications", ignore_result=True)
def process_all_notifications() -> int:
    """Process every due notification within the run's time budget; return how many."""
    return worker.process_all_notifications()


@shared_task(name="transmissions.tasks.process_notification", ignore_result=True)
def process_notification(notification_id: int) -> None:
    """Process notification ``notification_id`` now if it is still waiting (transmissions 0.2's task).

    Calling it again, or from several workers at once, does nothing more: the row is
    claimed as a batch claims it. A message that breaks while being built or checked is
    written BROKEN and its exception raised, so Celery records the failure.
    """
    worker.process_one(notification_id)


def _process_due_notifications() -> int:
    """Process every due notification within the run's time budget; return how many."""
    return worker.process_all_notifications()


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


def __getattr__(name: str) -> Any:
    if name == DJANGO_TASK:
        return django_task()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
