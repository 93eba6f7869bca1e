"""SMS: the message base and the backends it hands messages to.

Like Django's email, the provider is a setting: ``TRANSMISSIONS_SMS_BACKEND`` names a
class with ``send_messages(messages)``. ``ConsoleSMSBackend`` (the default) prints,
``LocmemSMSBackend`` keeps them in ``transmissions.channels.sms.outbox`` for tests.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

from transmissions import conf
from transmissions.channels.base import BaseChannel
from transmissions.exceptions import ChannelSendException


@dataclass
class SMS:
    to: str
    body: str
    sender: str | None = None


class ConsoleSMSBackend:
    """Write each SMS to standard output (the default, like Django's console email)."""

    def send_messages(self, messages: list[SMS]) -> int:
        for sms in messages:
            sys.stdout.write(f"SMS to {sms.to} from {sms.sender or '-'}: {sms.body}\n")
        return len(messages)


# What LocmemSMSBackend has sent, oldest first.
outbox: list[SMS] = []


class LocmemSMSBackend:
    """Append each SMS to ``transmissions.channels.sms.outbox``."""

    def send_messages(self, messages: list[SMS]) -> int:
        outbox.extend(messages)
        return len(messages)


def get_sms_backend() -> Any:
    """Return an instance of the backend ``TRANSMISSIONS_SMS_BACKEND`` names."""
    return import_string(conf.get("TRANSMISSIONS_SMS_BACKEND"))()


class DefaultSMSMessage(BaseChannel):
    """Base of SMS messages: subclasses return the text from ``create_message()``.

    The number comes from ``get_phone_number()`` (the user's ``phone_number_field``
    attribute by default); without one the notification is cancelled.
    """

    phone_number_field = "phone_number"
    sender: str | None = None

    def get_phone_number(self) -> str:
        return getattr(self.target_user, self.phone_number_field, "") or ""

    def check_validity(self) -> bool:
        return bool(self.get_phone_number())

    def create_message(self) -> str:
        """Return the text of the SMS. Must be implemented by a subclass."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement create_message().")

    def build(self) -> SMS:
        return SMS(to=self.get_phone_number(), body=self.create_message(), sender=self.sender)

    def transmit(self, payload: Any) -> Any:
        backend = get_sms_backend()
        try:
            return backend.send_messages([payload])
        except ChannelSendException:
            raise
        except Exception as exc:
            raise ChannelSendException(f"SMS to {payload.to} failed: {exc}") from exc
