"""SMS: the message base and the backends it hands messages to.

Like Django's email, the provider is a setting: ``TRANSMISSIONS_SMS_BACKEND`` names a
class with ``send_messages(messages)``. ``ConsoleSMSBackend`` (the default) prints,
``LocmemSMSBackend`` keeps them in ``transmissions.channels.sms.outbox`` for tests.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

from transmissions.channels.base import BaseChannel
from transmissions.channels.phone import is_e164
from transmissions.conf import conf
from transmissions.exceptions import ChannelSendException

logger = logging.getLogger("transmissions")


@dataclass
class SMS:
    to: str
    body: str
    sender: str | None = None
    # Set by a backend whose provider names each message (Twilio's "SM..." sid).
    provider_message_id: str | None = None


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
    return import_string(conf.TRANSMISSIONS_SMS_BACKEND)()


class DefaultSMSMessage(BaseChannel):
    """Base of SMS messages: subclasses return the text from ``create_message()``.

    The number comes from ``get_phone_number()`` (the user's ``phone_number_field``
    attribute by default) and must be in E.164 form (``+14155552671``); without one,
    or with one in another form, the notification is cancelled. Override
    ``get_phone_number()`` to read or normalise the number elsewhere.
    """

    channel = "sms"

    phone_number_field = "phone_number"
    sender: str | None = None  # None: the backend's default sender
    # 0.2's attributes: ``subject`` from ``@message(..., subject=...)``, and ``body``, the
    # text ``create_message()`` returns unless a subclass overrides it.
    subject: str = ""
    body: str = ""

    @property
    def to(self) -> Any:
        """Who the SMS goes to: the notification's target user (0.2's attribute), or the user a
        subclass set instead."""
        return self.__dict__.get("_to", self.target_user)

    @to.setter
    def to(self, value: Any) -> None:
        self.__dict__["_to"] = value

    def get_phone_number(self) -> str:
        """Return the number to send to, in E.164 form (``to``'s ``phone_number_field``)."""
        return getattr(self.to, self.phone_number_field, "") or ""

    def get_address(self) -> str | None:
        return self.get_phone_number() or None

    def check_validity(self) -> bool:
        return is_e164(self.get_phone_number())

    def get_cancel_reason(self) -> str:
        number = self.get_phone_number()
        if not number:
            return f"the user has no phone number (user.{self.phone_number_field} is empty)"
        return f"{number!r} is not an E.164 phone number (+ and country code, e.g. +14155552671)"

    def create_message(self) -> str:
        """Return the text of the SMS: ``body`` if set, else a subclass must implement it."""
        if self.body:
            return str(self.body)
        raise NotImplementedError(f"{type(self).__qualname__} must implement create_message() or set body.")

    def build(self) -> SMS:
        return SMS(to=self.get_phone_number(), body=self.create_message(), sender=self.sender)

    def transmit(self, payload: Any) -> Any:
        backend = get_sms_backend()
        try:
            backend.send_messages([payload])
        except ChannelSendException:
            raise  # a backend that knows its provider decided (TransientChannelError or not)
        except Exception as exc:
            raise ChannelSendException(f"SMS to {payload.to} failed: {exc}") from exc
        return payload

    def record(self, result: Any) -> None:
        self.provider_message_id = result.provider_message_id
        logger.info(
            "Sent notification %s (%s) as SMS %s.",
            self.notification.pk,
            self.trigger_name,
            self.provider_message_id or "-",
        )
