"""The statuses a notification goes through, stored as the original package's integers."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.IntegerChoices):
    """``Notification.Status``: values as in the original package, so old rows keep their meaning.

    CREATED waits for its schedule; PROCESSING is held by a worker (never final: an
    abandoned claim is taken back once its lease expires, see ``lifecycle.py``); the
    other four are final and set ``datetime_processed``.
    """

    CREATED = 0, _("created")
    SUCCESSFULLY_SENT = 1, _("successfully sent")
    FAILED = -1, _("failed")
    CANCELLED = -2, _("cancelled")
    BROKEN = -3, _("broken")
    PROCESSING = 2, _("processing")


# The longest reason stored (``Notification.reason``); longer ones are cut.
# The most ``attempts`` a row counts: the column is a small integer (32767 on PostgreSQL),
# so a claim stops counting there instead of failing its whole batch.
ATTEMPTS_MAX = 32767
REASON_MAX_LENGTH = 255


def clip_reason(reason: str) -> str:
    """Return ``reason`` cut to fit ``Notification.reason``."""
    return reason if len(reason) <= REASON_MAX_LENGTH else reason[: REASON_MAX_LENGTH - 1] + "…"


# The statuses whose rows may be put back in the queue on purpose (``requeue()``).
REQUEUEABLE = (Status.FAILED, Status.CANCELLED, Status.BROKEN)


# The longest provider's message id stored (``Notification.provider_message_id``).
PROVIDER_ID_MAX_LENGTH = 255


class DeliveryState(models.TextChoices):
    """``Notification.delivery_state``: what the provider's delivery events say became of a sent
    notification (see ``tracking.py``); empty until the first event is recorded.

    Declared in the order a message moves along: the state only ever moves down this
    list (``DELIVERY_RANK``), so a late event never takes it back.
    """

    ACCEPTED = "accepted", _("accepted")
    DEFERRED = "deferred", _("deferred")
    DELIVERED = "delivered", _("delivered")
    OPENED = "opened", _("opened")
    CLICKED = "clicked", _("clicked")
    FAILED = "failed", _("failed")
    BOUNCED = "bounced", _("bounced")
    COMPLAINED = "complained", _("complained")


# How far along each delivery state is: an event moves a notification only further.
DELIVERY_RANK: dict[str, int] = {state.value: rank for rank, state in enumerate(DeliveryState)}
