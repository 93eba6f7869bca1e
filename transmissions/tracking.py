"""What happened after send: delivery events, the delivery state, the suppression list.

A provider tells what became of a message it accepted through webhooks. django-anymail
turns every ESP's into its ``tracking`` signal, which ``providers.on_anymail_tracking()``
receives (connected in ``apps.py`` when anymail is installed); Twilio posts status
callbacks to ``webhooks.TwilioStatusCallbackView``. ``providers.py`` turns both into an
``Event``, and ``record()``

1. finds the notification by the provider's message id (``Notification.provider_message_id``,
   written with the outcome); an event about anything else is ignored;
2. stores the event once per ``(provider, event id)``: a webhook delivered twice is
   stored once, the second time is a no-op;
3. moves the notification's ``delivery_state`` forward, never back (see ``advance()``);
4. puts the address on the suppression list after a hard bounce or a complaint;
5. sends ``signals.delivery_event_recorded``.

``SuppressionPolicy`` (a ``policies.Policy``, in ``TRANSMISSIONS_POLICIES`` by default)
then cancels, with the reason, every later notification to a suppressed address on
that channel, until the ``Suppression`` row is deleted or the user has a new address.
"""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import IntegrityError, router, transaction

from transmissions import db, signals
from transmissions.lifecycle import notification_model
from transmissions.policies import Hold, Policy
from transmissions.registry import registry
from transmissions.status import DELIVERY_RANK, clip_reason

logger = logging.getLogger("transmissions")


@dataclass(frozen=True)
class Event:
    """A delivery event, as a provider's webhook told it, normalised."""

    provider: str
    event_id: str
    # The provider's own word for it, and the DeliveryState it means.
    event_type: str
    state: str
    # The provider's id of the message (what the notification's provider_message_id holds).
    message_id: str
    timestamp: datetime.datetime
    address: str = ""
    description: str = ""
    detail: Any = None
    # A hard bounce or a complaint: the address goes on the suppression list.
    suppress: bool = False


@dataclass
class Recorded:
    """What ``record()`` did: ``notification`` None when no notification has the message id;
    ``event`` None when the event was stored before (a webhook delivered twice)."""

    notification: Any = None
    event: Any = None
    state_changed: bool = False
    suppression: Any = None


def record(event: Event) -> Recorded:
    """Store ``event`` for its notification, move its delivery state, suppress its address
    if need be, and send ``delivery_event_recorded``. Once per (provider, event id)."""
    model = notification_model()
    # '' is what a notification that no provider named holds: no event is theirs. (And on
    # PostgreSQL the look-up's index leaves those rows out: migration 0016.)
    found = None
    if event.message_id:
        found = model._default_manager.filter(provider_message_id=event.message_id).order_by("-pk").first()
    if found is None:
        return Recorded()
    done = Recorded(found)
    event_model = apps.get_model("transmissions", "DeliveryEvent")
    with transaction.atomic(using=router.db_for_write(event_model)):
        try:
            with transaction.atomic(using=router.db_for_write(event_model)):
                done.event = event_model._default_manager.create(
                    notification=found,
                    provider=event.provider[:64],
                    event_id=event.event_id[:255],
                    event_type=event.event_type[:64],
                    state=event.state,
                    timestamp=event.timestamp,
                    address=event.address[:255],
                    description=clip_reason(event.description),
                    detail=jsonable(event.detail),
                )
        except IntegrityError:
            return done  # stored already: the provider sent it again
        done.state_changed = advance(found, event.state, event.timestamp)
        if event.suppress and event.address:
            why = f"{event.state} ({event.provider}, {event.timestamp:%Y-%m-%d})"
            if event.description:
                why += f": {event.description}"
            done.suppression = suppress(found.channel, event.address, why, done.event)
    if signals.delivery_event_recorded.has_listeners():
        signals.delivery_event_recorded.send(
            sender=event_model,
            event=done.event,
            notification=found,
            state_changed=done.state_changed,
            suppression=done.suppression,
        )
    return done


def advance(notification: Any, state: str, at: datetime.datetime) -> bool:
    """Move ``notification``'s delivery state to ``state`` (reached at ``at``) if that is further
    along (``DELIVERY_RANK``); return whether it moved.

    **Decided**: by the lifecycle's order, not by the events' times. Twilio's callbacks
    carry no time and may arrive out of order, and an ESP's delivery and click-tracking
    clocks differ; the order of the states cannot disagree with itself. So a late
    "delivered" never undoes an "opened", nor a late "deferred" a "delivered". One
    UPDATE, conditional on the row's state: two webhooks at once cannot both win.
    """
    rank = DELIVERY_RANK[state]
    not_behind = [name for name, other in DELIVERY_RANK.items() if other >= rank]
    moved = (
        type(notification)
        ._default_manager.filter(pk=notification.pk)
        .exclude(delivery_state__in=not_behind)
        .update(delivery_state=state, delivery_state_at=at)
    )
    if moved:
        notification.delivery_state, notification.delivery_state_at = state, at
    return bool(moved)


def normalise_address(channel: str, address: str) -> str:
    """Return ``address`` as the suppression list keeps it: an email address in lower case."""
    address = address.strip()
    return address.lower() if "@" in address else address


def suppress(channel: str, address: str, reason: str, event: Any = None) -> Any:
    """Put ``address`` on the suppression list of ``channel``; return the new Suppression, or
    None if it was there already."""
    model = apps.get_model("transmissions", "Suppression")
    try:
        with transaction.atomic(using=router.db_for_write(model)):
            row = model._default_manager.create(
                channel=channel,
                address=normalise_address(channel, address)[:255],
                reason=clip_reason(reason),
                event=event,
            )
    except IntegrityError:
        return None
    logger.warning("Suppressed %s on %s: %s.", row.address, channel, row.reason)
    return row


class SuppressionPolicy(Policy):
    """Cancel a notification whose address is on its channel's suppression list.

    The address is the channel's ``get_address()`` (email: ``get_recipient()``, SMS:
    ``get_phone_number()``); one query per batch looks them all up, none when no
    notification of the batch has an address. Subclass it to change the rule: override
    ``address()`` or ``check()``, and name your class in ``TRANSMISSIONS_POLICIES``.
    """

    def prepare(self, batch: list[Any]) -> None:
        self.keys: dict[int, tuple[str, str]] = {}
        # Trigger names whose message has no address (in-app, webhooks, a channel that keeps
        # BaseChannel's get_address()): asked once per name, not once per row.
        without: set[str] = set()
        plain = type(self).address is SuppressionPolicy.address
        for notification in batch:
            name = notification.trigger_name
            if name in without:
                continue
            if plain:
                get_address = getattr(registry.find(name), "get_address", None)
                if get_address is None or getattr(get_address, "never_an_address", False):
                    without.add(name)
                    continue
            key = self.address(notification)
            if key is not None:
                self.keys[notification.pk] = key
        self.suppressed: dict[tuple[str, str], str] = {}
        if self.keys:
            model = apps.get_model("transmissions", "Suppression")
            using = router.db_for_read(model)
            self.suppressed = db.dialect(using, notification_model()).suppressed(
                model,
                {channel for channel, _ in self.keys.values()},
                {address for _, address in self.keys.values()},
            )

    def address(self, notification: Any) -> tuple[str, str] | None:
        """Return ``(channel, address)`` of ``notification``, normalised, or None if it has none."""
        message_cls = registry.find(notification.trigger_name)
        if message_cls is None or not hasattr(message_cls, "get_address"):
            return None
        try:
            address = message_cls(notification).get_address()
        except Exception:
            return None  # deliver() builds it again, and says what is wrong
        if not address:
            return None
        channel = notification.channel or getattr(message_cls, "channel", "")
        return channel, normalise_address(channel, str(address))

    def lets_all_through(self) -> bool:
        # No address of the batch is suppressed (unless a subclass decides in its own check()).
        return not self.suppressed and type(self).check is SuppressionPolicy.check

    def check(self, notification: Any, message_cls: type | None) -> Hold | None:
        key = self.keys.get(notification.pk)
        reason = None if key is None else self.suppressed.get(key)
        if key is None or reason is None:
            return None
        return Hold(f"{key[1]} is on the {key[0]} suppression list: {reason}", code="suppressed")


def jsonable(raw: Any) -> Any:
    """Return the provider's raw event as something a JSONField stores (``{}`` for None)."""
    if raw is None:
        return {}
    if hasattr(raw, "lists"):  # a QueryDict: every value of every key
        raw = {key: values if len(values) > 1 else values[0] for key, values in raw.lists()}
    try:
        return json.loads(json.dumps(raw, default=str))
    except (TypeError, ValueError):
        return {"repr": repr(raw)}


__all__ = ["Event", "Recorded", "SuppressionPolicy", "advance", "record", "suppress"]
