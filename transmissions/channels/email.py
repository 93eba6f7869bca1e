"""Email through the project's ``EMAIL_BACKEND``."""

from __future__ import annotations

from typing import Any

from django.core.mail import EmailMessage

from transmissions.channels.base import BaseChannel
from transmissions.exceptions import ChannelSendException


class DefaultEmailMessage(BaseChannel):
    """Send a Django email to ``target_user``'s email address.

    ``subject`` comes from ``@message(..., subject="...")`` (or a class attribute),
    ``body`` is set by the subclass, as an attribute or in ``send()`` before calling
    ``super().send()``. A user without an email address cancels the notification.
    """

    subject: str = ""
    body: str = ""
    from_email: str | None = None  # None: DEFAULT_FROM_EMAIL

    def get_recipient(self) -> str:
        """Return the address to send to (the user model's email field by default)."""
        user = self.target_user
        return getattr(user, user.get_email_field_name(), "") or ""

    def check_validity(self) -> bool:
        return bool(self.get_recipient())

    def build(self) -> EmailMessage:
        return EmailMessage(
            subject=str(self.subject),
            body=str(self.body),
            from_email=self.from_email,
            to=[self.get_recipient()],
        )

    def transmit(self, payload: Any) -> Any:
        try:
            return payload.send(fail_silently=False)
        except Exception as exc:
            raise ChannelSendException(
                f"Email to {self.get_recipient()} failed: {type(exc).__name__}: {exc}"
            ) from exc
