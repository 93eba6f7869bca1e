"""Email through the project's mailers, with optional Django templates.

On Django 6.1 and later an email goes through a mailer of the ``MAILERS`` setting:
the message's ``mailer`` alias, or ``"default"``; nothing deprecated in 6.1
(``EMAIL_BACKEND``, ``get_connection()``, ``fail_silently``) is used. Before 6.1 it
goes through ``EMAIL_BACKEND``, and only the default mailer exists.

SMTP errors are mapped to outcomes (see ``smtp_error()``): a refusal (5xx, a refused
recipient) raises ``ChannelSendException`` and the notification ends FAILED; a
temporary one (4xx, a timeout, a refused or dropped connection) raises
``TransientChannelError`` and the notification is retried with backoff.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import smtplib
import ssl
from collections.abc import Iterator
from typing import Any

import django
from django.conf import settings
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.core.mail.utils import DNS_NAME
from django.utils.html import strip_tags

from transmissions import delivery, unsubscribe
from transmissions.channels.base import BaseChannel
from transmissions.channels.rendering import TemplateContextMixin, render
from transmissions.exceptions import ChannelSendException, TransientChannelError

logger = logging.getLogger("transmissions")

# Django 6.1 replaced EMAIL_BACKEND and the other EMAIL_* settings with MAILERS, and
# get_connection()/fail_silently with EmailMessage.send(using=alias).
HAS_MAILERS = django.VERSION >= (6, 1)
DEFAULT_MAILER = "default"


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

    ``mailer`` names the ``MAILERS`` alias to send through (Django 6.1+), as a class
    attribute or ``@message(..., mailer="transactional")``; None sends through the
    default mailer (``EMAIL_BACKEND`` before 6.1). An alias the project does not
    configure is system check transmissions.E029.
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
    mailer: str | None = None  # a MAILERS alias; None: the default mailer

    @property
    def to(self) -> Any:
        """Who the email goes to: the notification's target user (0.2's attribute), or what a
        subclass set instead (another user, or an address)."""
        try:
            return self.__dict__["_to"]
        except KeyError:
            return self.target_user

    @to.setter
    def to(self, value: Any) -> None:
        self.__dict__["_to"] = value

    def get_recipient(self) -> str:
        """Return the address to send to: ``to``'s email field (``to`` itself if it is text)."""
        to = self.to
        if isinstance(to, str):
            return to
        return getattr(to, to.get_email_field_name(), "") or ""

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
        """Return the extra headers; a Message-ID is added so record() can keep it, and
        List-Unsubscribe with List-Unsubscribe-Post (RFC 8058) to an email of a category
        (``unsubscribe.py``)."""
        headers = dict(self.headers)
        headers.setdefault("Message-ID", make_msgid(domain=DNS_NAME))
        for name, value in unsubscribe.headers(self.notification).items():
            headers.setdefault(name, value)
        return headers

    def get_mailer(self) -> str | None:
        """Return the ``MAILERS`` alias to send through (``mailer``; None for the default)."""
        return self.mailer

    def create_message(self) -> EmailMessage:
        """Return the email to send: a plain ``EmailMessage``, or an ``EmailMultiAlternatives``
        with the HTML as its alternative part when there is HTML.

        0.2's extension point: a subclass may override it to build its own email.
        """
        html = self.get_html_body()
        email_class = EmailMessage if html is None else EmailMultiAlternatives
        email = email_class(
            subject=self.get_subject(),
            body=self.get_body(html),
            from_email=self.from_email,
            to=[self.get_recipient()],
            reply_to=list(self.reply_to),
            headers=self.get_headers(),
        )
        if isinstance(email, EmailMultiAlternatives) and html is not None:
            email.attach_alternative(html, "text/html")
        return email

    def build(self) -> EmailMessage:
        return self.create_message()

    def transmit(self, payload: Any) -> Any:
        try:
            sent = send_email(payload, self.get_mailer())
        except ImproperlyConfigured:
            raise  # a missing or broken mailer is the project's to fix, not this email's
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


def configured_mailers() -> set[str]:
    """Return the mailer aliases an email can name: ``MAILERS``' keys on Django 6.1+.

    "default" always works: without ``MAILERS`` (and before 6.1) it is ``EMAIL_BACKEND``.
    """
    if HAS_MAILERS and hasattr(settings, "MAILERS"):
        return set(settings.MAILERS)
    return {DEFAULT_MAILER}


def send_email(email: EmailMessage, mailer: str | None = None) -> int:
    """Send ``email`` through the mailer aliased ``mailer`` (None: the default); return the count sent.

    Errors are raised, never silenced. Django 6.1+: through ``mailers[alias]``, as
    ``email.send(using=...)`` does, which raises ``ImproperlyConfigured``
    (``MailerDoesNotExist``) for an alias not in ``MAILERS``. Before 6.1 only the default
    mailer exists; another alias raises ``ImproperlyConfigured``. While a worker delivers a
    batch (``kept_open()``) each mailer's connection stays open from one email to the next:
    one SMTP session, or one HTTP session of an anymail backend, per batch and mailer.
    """
    if not HAS_MAILERS and mailer not in (None, DEFAULT_MAILER):
        raise ImproperlyConfigured(
            f"Mailer {mailer!r}: named mailers need Django 6.1 or later (the MAILERS setting); "
            f"Django {django.get_version()} sends every email through EMAIL_BACKEND."
        )
    held = _held.get()
    if held is None:
        if HAS_MAILERS:
            return email.send(using=mailer or DEFAULT_MAILER)
        return email.send(fail_silently=False)
    if not email.recipients():
        return 0  # as EmailMessage.send(): no connection for nobody
    alias = mailer or DEFAULT_MAILER
    backend = held.get(alias)
    if backend is None:
        backend = _mailer(alias)
        backend.open()  # raises as a send would: the email's outcome says why
        held[alias] = backend
    try:
        return int(backend.send_messages([email]) or 0)
    except BaseException:
        # The session may be unusable now (a dropped connection, a refusal mid-dialogue):
        # the next email of the batch opens a new one.
        del held[alias]
        _close(backend, alias)
        raise


# The mailers a worker holds open while it delivers a batch, by alias; None outside one.
_held: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "transmissions_held_mailers", default=None
)


@delivery.around_batch
@contextlib.contextmanager
def kept_open() -> Iterator[None]:
    """Keep each mailer's connection open from one email of a batch to the next, and close
    them all once the batch's outcomes are written (``delivery.around_batch``)."""
    token = _held.set({})
    try:
        yield
    finally:
        held = _held.get() or {}
        _held.reset(token)
        for alias, backend in held.items():
            _close(backend, alias)


def _mailer(alias: str) -> Any:
    if HAS_MAILERS:
        return mail.mailers[alias]
    return mail.get_connection(fail_silently=False)


def _close(backend: Any, alias: str) -> None:
    try:
        backend.close()
    except Exception as exc:  # every email of the batch is sent or failed already
        logger.info("Closing mailer %r after a batch raised %s: %s", alias, type(exc).__name__, exc)


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
