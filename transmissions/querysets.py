"""QuerySet-first manager of Notification: intention-named filters and bulk helpers."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


def _status() -> Any:
    from transmissions.models import Notification

    return Notification.Status


class NotificationQuerySet(models.QuerySet):
    def due(self, now: datetime.datetime | None = None) -> NotificationQuerySet:
        """Waiting to be sent and scheduled at or before ``now`` (served by the due index)."""
        return self.filter(status=_status().CREATED, datetime_scheduled__lte=now or timezone.now())

    def pending(self) -> NotificationQuerySet:
        """Not yet processed: waiting, or held by a worker right now."""
        s = _status()
        return self.filter(status__in=(s.CREATED, s.PROCESSING))

    def processed(self) -> NotificationQuerySet:
        """In a final state (sent, failed, cancelled or broken)."""
        return self.filter(datetime_processed__isnull=False)

    def sent(self) -> NotificationQuerySet:
        """Successfully sent: what a user's inbox shows."""
        return self.filter(status=_status().SUCCESSFULLY_SENT)

    def failed(self) -> NotificationQuerySet:
        return self.filter(status=_status().FAILED)

    def for_user(self, user: AbstractBaseUser) -> NotificationQuerySet:
        return self.filter(target_user=user)

    def feed(self, user: AbstractBaseUser | None = None) -> NotificationQuerySet:
        """Sent in-app notifications (of ``user`` when given), newest first.

        Each one's text is in ``notification.data["inapp"]``; see ``channels/inapp.py``.
        """
        from transmissions.channels.inapp import inapp_trigger_names

        qs = self.sent().filter(trigger_name__in=inapp_trigger_names())
        if user is not None:
            qs = qs.filter(target_user=user)
        return qs.order_by("-datetime_created", "-pk")

    def unseen(self) -> NotificationQuerySet:
        """Sent and not yet seen by its user."""
        return self.sent().filter(datetime_seen__isnull=True)

    def unconsumed(self) -> NotificationQuerySet:
        """Sent and not yet acted upon by its user."""
        return self.sent().filter(datetime_consumed__isnull=True)

    def unseen_count(self) -> int:
        """Return how many sent notifications are unseen (``user.notifications.unseen_count()``)."""
        return self.unseen().count()

    def mark_seen(self, when: datetime.datetime | None = None) -> int:
        """Set ``datetime_seen`` on those not seen yet, in one query; return how many."""
        return self.filter(datetime_seen__isnull=True).update(datetime_seen=when or timezone.now())

    def mark_consumed(self, when: datetime.datetime | None = None) -> int:
        """Set ``datetime_consumed`` (and ``datetime_seen`` if unset) in one query; return how many."""
        when = when or timezone.now()
        return self.filter(datetime_consumed__isnull=True).update(
            datetime_consumed=when, datetime_seen=Coalesce("datetime_seen", models.Value(when))
        )
