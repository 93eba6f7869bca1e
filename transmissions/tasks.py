"""The Celery tasks: the one the beat schedule runs, and 0.2's one-notification task.

Importable without a Celery app configured.
"""

from __future__ import annotations

from celery import shared_task

from transmissions import worker


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
