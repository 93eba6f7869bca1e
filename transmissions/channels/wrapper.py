"""``Channel(notification)``: transmissions 0.2's wrapper around a notification's message.

The worker does not use it (``delivery.py`` calls the message class directly and maps
each exception to an outcome); it is here for code written against 0.2, which builds
``Channel(notification)`` to reach ``channel.message`` or to check and send by hand.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any

from transmissions.exceptions import ChannelSendException
from transmissions.registry import registry

if TYPE_CHECKING:
    from transmissions.models import Notification

logger = logging.getLogger("transmissions")


class Channel:
    """The message class registered under ``notification.trigger_name``, built as ``message``.

    Raises ``UnknownTriggerException`` when no message is registered under that name.
    """

    class Types(enum.IntEnum):
        """0.2's channel kinds (``Notification.channel`` holds today's, as text)."""

        EMAIL = 1
        SMS = 2

    def __init__(self, notification: Notification) -> None:
        self.notification = notification
        self.message = self.get_template()(notification)

    def get_template(self) -> type:
        """Return the message class registered under the notification's trigger name."""
        return registry.get(self.notification.trigger_name)

    def check_validity(self) -> bool:
        """Return whether the message should still be sent (true when it has no check)."""
        check = getattr(self.message, "check_validity", None)
        return True if check is None else bool(check())

    def send(self) -> Any:
        """Send the message; return what its ``send()`` returned.

        A ``ChannelSendException`` (and so a ``TransientChannelError``) propagates as it is;
        any other exception is logged and raised again as a ``ChannelSendException``.
        """
        try:
            return self.message.send()
        except ChannelSendException:
            raise
        except Exception as exc:
            logger.exception(
                "Sending notification %s (%s) raised.", self.notification.pk, self.notification.trigger_name
            )
            raise ChannelSendException(f"{type(exc).__name__}: {exc}") from exc
