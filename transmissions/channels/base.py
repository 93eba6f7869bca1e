"""The channel base class: how a notification is checked and sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from transmissions.behaviors import TriggerBehavior
from transmissions.trigger import Triggerable

if TYPE_CHECKING:
    from transmissions.models import Notification


# Set by ``transmissions.testing.capture()``: while set, ``send()`` hands it
# ``(channel, payload)`` in place of transmitting. None outside such tests.
capture_hook: Callable[[BaseChannel, Any], Any] | None = None


class BaseChannel(Triggerable):
    """Base of every channel and so of every message class.

    A worker builds ``Channel(notification)``, calls ``check_validity()`` and, when
    it returns true, ``send()``. ``send()`` is a template method: ``build()`` makes
    the payload, ``transmit()`` hands it to the provider, ``record()`` keeps what the
    provider answered: the provider's id of the message goes in
    ``provider_message_id``, which the worker stores on the notification with its
    outcome (delivery events find it by that id). Override the steps, not ``send()``,
    where you can.
    Raise ``ChannelSendException`` for a permanent failure and
    ``TransientChannelError`` for one worth retrying.
    """

    trigger_name: ClassVar[str]
    behavior: ClassVar[TriggerBehavior]
    # The kind of channel, stored on each notification (``Notification.channel``): "email",
    # "sms", "push", "inapp", or a project's own. Preferences and feeds go by it.
    channel: ClassVar[str] = ""

    # What the provider called the message sent, set by ``record()``; None: no id.
    provider_message_id: str | None = None

    def __init__(self, notification: Notification) -> None:
        self.notification = notification

    @property
    def target_user(self) -> Any:
        return self.notification.target_user

    @property
    def trigger_user(self) -> Any:
        return self.notification.trigger_user

    @property
    def content(self) -> Any:
        return self.notification.content

    @property
    def data(self) -> Any:
        return self.notification.data

    @property
    def digest_items(self) -> list[Any]:
        """A digest's items (``DigestItem``: ``trigger_user``, ``content``, ``data``,
        ``datetime_created``), in the order they were triggered; ``[]`` for a message that is
        not digested (``digests.py``)."""
        return self.notification.digest_items

    @property
    def digest_count(self) -> int:
        """How many items the digest holds."""
        return len(self.notification.digest_items)

    def check_validity(self) -> bool:
        """Return whether the notification should still be sent (False cancels it)."""
        return True

    def get_cancel_reason(self) -> str:
        """Return why ``check_validity()`` said no, in a few words (shown in the admin and
        logged). Override it where your ``check_validity()`` can say more."""
        return "check_validity() returned false"

    def send(self) -> Any:
        """Send the notification; return what the provider answered."""
        payload = self.build()
        if capture_hook is not None:
            return capture_hook(self, payload)
        result = self.transmit(payload)
        self.record(result)
        return result

    def build(self) -> Any:
        """Return the payload to transmit. Must be implemented by a subclass."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement build() or send().")

    def transmit(self, payload: Any) -> Any:
        """Hand ``payload`` to the provider. Must be implemented by a subclass."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement transmit() or send().")

    def get_address(self) -> str | None:
        """Return the address this notification goes to (an email address, a phone number),
        for the suppression list (``tracking.py``); None: the channel has none. Must not
        send anything."""
        return None

    # This default has no address whatever the notification: the suppression policy skips
    # every row of a class that keeps it, without building the channel per row.
    get_address.never_an_address = True  # type: ignore[attr-defined]

    def record(self, result: Any) -> None:
        """Keep what the provider answered: set ``provider_message_id`` to its id of the
        message, if it gave one. Does nothing by default."""


__all__ = ["BaseChannel"]
