"""Email through the project's ``EMAIL_BACKEND``, with optional Django templates.

SMTP errors are mapped to outcomes (see ``smtp_error()``): a refusal (5xx, a refused
recipient) raises ``ChannelSendException`` and the notification ends FAILED; a
temporary one (4xx, a timeout, a refused or dropped connection) raises
``TransientChannelError`` and the notification is retried with backoff.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.core.mail.utils import DNS_NAME
from django.utils.html import strip_tags

from transmissions.channels.base import BaseChannel
from transmissions.channels.rendering import TemplateContextMixin, render
from transmissions.exceptions import ChannelSendException, TransientChannelError

logger = logging.getLogger("transmissions")


class DefaultEmailMessage(TemplateContextMixin, BaseChannel):
    """Send a Django email to ``target_user``'s email address.

    ``subject`` comes from ``@message(..., subject="...")`` (or a class attribute),
    ``body`` is set by the subclass, as an attribute or in ``send()`` before calling
    ``super().send()``. Or name templates: ``subject_template_name``,
    ``text_template_name`` and ``html_template_name`` are rendered with
    ``get_context_data()``; the HTML body is sent as an alternative part. An explicit
    ``body`` wins over the text template; with only an HTML template the text part is
    the HTML with its tags stripped. A user without an email address cancels the
    notification.
    """

    channel = "email"

    subject: str = ""
    body: str = ""
    subject_template_name: str | None = None
    text_template_name: str | None = None
    html_template_name: str | None = None
    from_email: str | None = None  # None: DEFAULT_FROM_EMAIL
    reply_to: list[str] | tuple[str, ...] = ()
    headers: dict[str, str] = {}

    def get_recipient(self) -> str:
        """Return the address to send to (the user model's email field by default)."""
        user = self.target_user
        return getattr(user, user.get_email_field_name(), "") or ""

    def get_address(self) -> str | None:
        return self.get_recipient() or None

    def check_validity(self) -> bool:
        return bool(self.get_recipient())

    def get_cancel_reason(self) -> str:
        return "the user has no email address"

    def get_subject(self) -> str:
        """Return the subject: the rendered ``subject_template_name``, else ``subject``."""
        if self.subject_template_name:
            text = render(self.subject_template_name, self.get_context_data(), autoescape=False)
            # A header cannot hold a newline; templates often end with one.
            return " ".join(text.split())
        return str(self.subject)

    def get_html_body(self) -> str | None:
        """Return the HTML body (``html_template_name`` rendered), or None for text only."""
        if self.html_template_name:
            return render(self.html_template_name, self.get_context_data())
        return None

    def get_body(self, html: str | None = None) -> str:
        """Return the text body: ``body``, else the text template, else ``html`` untagged."""
        if self.body:
            return str(self.body)
        if self.text_template_name:
            return render(self.text_template_name, self.get_context_data(), autoescape=False)
        return strip_tags(html) if html else ""

    def get_headers(self) -> dict[str, str]:
        """Return the extra headers; a Message-ID is added so record() can keep it."""
        headers = dict(self.headers)
        headers.setdefault("Message-ID", make_msgid(domain=DNS_NAME))
        return headers

    def build(self) -> EmailMultiAlternatives:
        html = self.get_html_body()
        email = EmailMultiAlternatives(
            subject=self.get_subject(),
            body=self.get_body(html),
            from_email=self.from_email,
            to=[self.get_recipient()],
            reply_to=list(self.reply_to),
            headers=self.get_headers(),
        )
        if html is not None:
            email.attach_alternative(html, "text/html")
        return email

    def transmit(self, payload: Any) -> Any:
        try:
            sent = payload.send(fail_silently=False)
        except Exception as exc:
            raise smtp_error(exc, f"Email to {self.get_recipient()} failed") from exc
        if not sent:
            raise ChannelSendException(f"Email to {self.get_recipient()} failed: the backend sent nothing.")
        return payload

    def record(self, result: Any) -> None:
        # django-anymail's backends put the ESP's id in ``anymail_status``; with any other
        # backend the Message-ID header (get_headers() sets one) names the email.
        esp_id = getattr(getattr(result, "anymail_status", None), "message_id", None)
        if isinstance(esp_id, set):  # one per recipient; a notification has one recipient
            esp_id = " ".join(sorted(str(i) for i in esp_id))
        self.provider_message_id = result.extra_headers.get("Message-ID") if esp_id is None else str(esp_id)
        logger.info(
            "Sent notification %s (%s) as email %s.",
            self.notification.pk,
            self.trigger_name,
            self.provider_message_id,
        )


def smtp_error(exc: BaseException, prefix: str) -> ChannelSendException:
    """Return the exception to raise for ``exc``, raised while sending an email.

    Transient: a 4xx reply (also when every refused recipient got a 4xx), a dropped
    connection, a timeout or any other network error. Permanent: a 5xx reply, a
    refused recipient, a TLS failure (a configuration matter) and anything else.
    """
    message = f"{prefix}: {type(exc).__name__}: {exc}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        transient = bool(codes) and all(400 <= code < 500 for code in codes)
    elif isinstance(exc, smtplib.SMTPResponseException):
        transient = 400 <= exc.smtp_code < 500
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        transient = True
    elif isinstance(exc, smtplib.SMTPException | ssl.SSLError):
        transient = False
    else:
        # OSError covers refused connections, timeouts and failed name lookups.
        transient = isinstance(exc, OSError)
    return TransientChannelError(message) if transient else ChannelSendException(message)
