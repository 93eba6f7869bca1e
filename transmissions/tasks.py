"""The Celery task the beat schedule runs. Importable without a Celery app configured."""

from __future__ import annotations

from celery import shared_task

from transmissions import worker


@shared_task(name="transmissions.tasks.process_all_notifications", ignore_result=True)
def process_all_notifications() -> int:
    """Process every due notification within the run's time budget; return how many."""
    return worker.process_all_notifications()
