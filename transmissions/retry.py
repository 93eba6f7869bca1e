"""Putting processed notifications back in the queue on purpose."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, router, transaction
from django.db.models import QuerySet
from django.utils import timezone

from transmissions.models import Notification
from transmissions.registry import registry

REQUEUEABLE = (
    Notification.Status.FAILED,
    Notification.Status.CANCELLED,
    Notification.Status.BROKEN,
)


def requeue(queryset: QuerySet[Notification]) -> tuple[int, int]:
    """Make the FAILED, CANCELLED or BROKEN rows of ``queryset`` CREATED again, due now.

    A row whose behaviour is blocked by another row (a newer pending TRIGGER_ONCE,
    a sent SEND_ONCE) is skipped. Return ``(queued, skipped)``.
    """
    using = router.db_for_write(Notification)
    queued = skipped = 0
    now = timezone.now()
    for notification in queryset.filter(status__in=REQUEUEABLE).iterator():
        message_cls: Any = registry._classes.get(notification.trigger_name)
        key = None
        if message_cls is not None:
            key = message_cls.behavior.dedup_key(
                notification.trigger_name,
                notification.target_user_id,
                (notification.content_type_id, notification.object_id or "")
                if notification.content_type_id
                else None,
            )
        try:
            with transaction.atomic(using=using):
                Notification.objects.using(using).filter(pk=notification.pk).update(
                    status=Notification.Status.CREATED,
                    datetime_scheduled=now,
                    datetime_processed=None,
                    attempts=0,
                    dedup_key=key,
                )
        except IntegrityError:
            skipped += 1
        else:
            queued += 1
    return queued, skipped
