"""``Notification.objects``: intention-named filters, on top of the lifecycle's transitions."""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone

from transmissions.lifecycle import LifecycleQuerySet
from transmissions.registry import escalations
from transmissions.status import Status

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger("transmissions")

# The code of the reason an escalation's waiting steps are cancelled with once a step is seen.
SEEN_CODE = "seen"

# The channel kind of in-app messages (``Notification.channel``): what a feed lists.
FEED_CHANNEL = "inapp"


class NotificationQuerySet(LifecycleQuerySet):
    def due(self, now: datetime.datetime | None = None) -> NotificationQuerySet:
        """Waiting to be sent and scheduled at or before ``now`` (served by the due index)."""
        waiting = self.filter(status=Status.CREATED, datetime_processed__isnull=True)
        return waiting.filter(datetime_scheduled__lte=now or timezone.now())

    def pending(self) -> NotificationQuerySet:
        """Not yet processed: waiting, or held by a worker right now (``datetime_processed`` unset)."""
        return self.filter(status__in=(Status.CREATED, Status.PROCESSING), datetime_processed__isnull=True)

    def processed(self) -> NotificationQuerySet:
        """Processed: ``datetime_processed`` is set (a final state, or marked processed by hand)."""
        return self.filter(datetime_processed__isnull=False)

    def sent(self) -> NotificationQuerySet:
        """Successfully sent: what a user's inbox shows."""
        return self.filter(status=Status.SUCCESSFULLY_SENT)

    def failed(self) -> NotificationQuerySet:
        return self.filter(status=Status.FAILED)

    def for_user(self, user: AbstractBaseUser | Any) -> NotificationQuerySet:
        return self.filter(target_user=user)

    def feed(self, user: AbstractBaseUser | Any = None) -> NotificationQuerySet:
        """Sent in-app notifications (of ``user`` when given), newest first.

        Each one's text is in ``notification.data["inapp"]``; see ``channels/inapp.py``.
        The rows are chosen by the channel they were triggered on, so an entry stays in
        the feed after its message class is changed or removed.
        """
        qs = self.sent().filter(channel=FEED_CHANNEL)
        if user is not None:
            qs = qs.filter(target_user=user)
        return qs.order_by("-datetime_created", "-pk")

    def held(self, code: str | None = None) -> NotificationQuerySet:
        """Held back by a policy (``policies.Hold``): cancelled by one, or waiting for the time one
        deferred them to; only by the policy whose code is ``code`` ("suppressed", "opted-out",
        "quiet-hours"...) when given. Their reason reads ``"<code>: <why>"``."""
        if code:
            return self.filter(reason__startswith=f"{code}: ")
        return self.filter(reason__regex=r"^[a-z0-9-]+: ")

    def one_per_event(self) -> NotificationQuerySet:
        """Leave out the steps of an escalation but its earliest sent one, so that an event lists
        once (the inbox, the unseen count). No change where the project declares no escalation."""
        if not escalations.declared():
            return self
        earlier = self.model._default_manager.filter(
            escalation=models.OuterRef("escalation"),
            status=Status.SUCCESSFULLY_SENT,
            pk__lt=models.OuterRef("pk"),
        )
        return self.exclude(models.Q(escalation__isnull=False) & models.Exists(earlier))

    def unseen(self) -> NotificationQuerySet:
        """Sent and not yet seen by its user (an escalation's steps count once: ``one_per_event()``)."""
        return self.sent().filter(datetime_seen__isnull=True).one_per_event()

    def unconsumed(self) -> NotificationQuerySet:
        """Sent and not yet acted upon by its user."""
        return self.sent().filter(datetime_consumed__isnull=True)

    def unseen_count(self) -> int:
        """Return how many sent notifications are unseen (``user.notifications.unseen_count()``)."""
        return self.unseen().count()

    def mark_seen(self, when: datetime.datetime | None = None) -> int:
        """Set ``datetime_seen`` on those not seen yet, in one query; return how many.

        When the project declares escalations, one more UPDATE first cancels the waiting
        steps of the escalations these belong to (``end_escalations()``). It commits first:
        once a row reads seen, no worker can claim a step of its event any more.
        """
        unseen = self.filter(datetime_seen__isnull=True)
        if escalations.declared():
            unseen.end_escalations()
        return unseen.update(datetime_seen=when or timezone.now())

    def mark_consumed(self, when: datetime.datetime | None = None) -> int:
        """Set ``datetime_consumed`` (and ``datetime_seen`` if unset) in one query; return how many.
        Like ``mark_seen()``, ends the escalations these belong to."""
        when = when or timezone.now()
        unconsumed = self.filter(datetime_consumed__isnull=True)
        if escalations.declared():
            unconsumed.end_escalations()
        return unconsumed.update(
            datetime_consumed=when, datetime_seen=Coalesce("datetime_seen", models.Value(when))
        )

    def end_escalations(self, reason: str = "") -> int:
        """Cancel the waiting steps of the escalations any of these belong to, in one UPDATE;
        return how many. The reason reads ``"seen: ..."`` unless ``reason`` is given."""
        groups = self.filter(escalation__isnull=False).values("escalation")
        steps = self.model._default_manager.using(self._write_db()).filter(escalation__in=groups)
        seen = f"{SEEN_CODE}: an earlier step of this event was seen before this step was due"
        cancelled = int(steps.cancel(reason or seen))
        if cancelled:
            logger.info("Cancelled %d waiting escalation step(s): %s", cancelled, reason or seen)
        return cancelled
