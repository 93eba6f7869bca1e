"""What each provider's webhooks mean, as ``tracking.Event``: django-anymail's ``tracking``
signal (every ESP it supports) and Twilio's message status callbacks.

Which provider word is which ``DeliveryState``, which events are hard bounces (they
suppress the address), and the event id that makes a webhook sent twice count once.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.utils import timezone

from transmissions.status import DeliveryState
from transmissions.tracking import Event, Recorded, record

logger = logging.getLogger("transmissions")

# anymail's normalised event types and the state each one means; the others
# (autoresponded, unsubscribed, subscribed, inbound, unknown) are not delivery events.
ANYMAIL_STATES = {
    "queued": DeliveryState.ACCEPTED,
    "sent": DeliveryState.ACCEPTED,
    "deferred": DeliveryState.DEFERRED,
    "delivered": DeliveryState.DELIVERED,
    "opened": DeliveryState.OPENED,
    "clicked": DeliveryState.CLICKED,
    "rejected": DeliveryState.FAILED,
    "failed": DeliveryState.FAILED,
    "bounced": DeliveryState.BOUNCED,
    "complained": DeliveryState.COMPLAINED,
}
# anymail's reasons for a "rejected" (the ESP's own list refused the address) that mean
# the address itself is bad.
ANYMAIL_BAD_ADDRESS = frozenset({"bounced", "invalid", "spam"})
# anymail reports some ESPs' soft bounces as "bounced" too; these raw markers say soft:
# Postmark's Type, Brevo's event, SparkPost's bounce class (soft, DNS, mailbox full, too
# large, timeout, transient), and Amazon SES's bounce type, which starts the description.
POSTMARK_SOFT = frozenset({"SoftBounce", "DnsError", "Transient"})
SPARKPOST_SOFT = frozenset({"20", "21", "22", "23", "24", "70"})
SES_SOFT_PREFIXES = ("Transient", "Undetermined")

# Twilio's MessageStatus values and the state each one means.
TWILIO_STATES = {
    "accepted": DeliveryState.ACCEPTED,
    "scheduled": DeliveryState.ACCEPTED,
    "queued": DeliveryState.ACCEPTED,
    "sending": DeliveryState.ACCEPTED,
    "sent": DeliveryState.ACCEPTED,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.OPENED,
    "undelivered": DeliveryState.BOUNCED,
    "failed": DeliveryState.FAILED,
    "canceled": DeliveryState.FAILED,
}
# Twilio error codes that say the number itself cannot receive (a hard bounce): 21610 the
# recipient replied STOP, 30004 blocked by the recipient, 30005 unknown or inactive
# number, 30006 a landline or unreachable carrier. Others (30003 handset off, 30007
# carrier filtering...) may pass next time.
TWILIO_HARD_ERRORS = frozenset({"21610", "30004", "30005", "30006"})


def on_anymail_tracking(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> Recorded | None:
    """Receive anymail's ``tracking`` signal: record ``event`` if it is about a notification."""
    state = ANYMAIL_STATES.get(str(event.event_type))
    if state is None or not event.message_id:
        return None
    timestamp = event.timestamp or timezone.now()
    address = event.recipient or ""
    event_id = event.event_id or _derived_id(esp_name, event.message_id, event.event_type, timestamp, address)
    suppress = (
        event.event_type == "complained"
        or (event.event_type == "bounced" and not soft_bounce(event))
        or (event.event_type == "rejected" and event.reject_reason in ANYMAIL_BAD_ADDRESS)
    )
    done = record(
        Event(
            provider=str(esp_name).lower(),
            event_id=str(event_id),
            event_type=str(event.event_type),
            state=state,
            message_id=str(event.message_id),
            timestamp=timestamp,
            address=address,
            description=str(event.description or event.mta_response or event.reject_reason or ""),
            detail=event.esp_event,
            suppress=suppress,
        )
    )
    if done.notification is None:
        logger.debug("No notification has the %s message id %r; event ignored.", esp_name, event.message_id)
    return done


def soft_bounce(event: Any) -> bool:
    """Return whether anymail's "bounced" ``event`` was a soft (temporary) bounce: anymail's
    reason "timed_out", or an ESP's own soft marker (see ``POSTMARK_SOFT``...)."""
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    message_event = raw.get("msys", {}).get("message_event", {}) if isinstance(raw.get("msys"), dict) else {}
    return (
        event.reject_reason == "timed_out"
        or raw.get("Type") in POSTMARK_SOFT
        or raw.get("event") == "soft_bounce"
        or str(message_event.get("bounce_class", "")) in SPARKPOST_SOFT
        or str(event.description or "").startswith(SES_SOFT_PREFIXES)
    )


def twilio_event(params: Any) -> Event | None:
    """Return the Event of a Twilio status callback's POST ``params``, or None if it is not one."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    state = TWILIO_STATES.get(status)
    if not sid or state is None:
        return None
    error = params.get("ErrorCode") or ""
    return Event(
        provider="twilio",
        # Twilio gives a callback no id of its own; a message reaches each status once.
        event_id=f"{sid}:{status}",
        event_type=status,
        state=state,
        message_id=sid,
        timestamp=timezone.now(),
        address=params.get("To") or "",
        description=f"Twilio error {error}" if error else "",
        detail=params,
        suppress=error in TWILIO_HARD_ERRORS,
    )


def _derived_id(*parts: Any) -> str:
    # For an ESP that names no event: the same event sent twice gets the same id.
    text = "\x1f".join(str(part) for part in parts)
    return "derived:" + hashlib.sha256(text.encode()).hexdigest()
