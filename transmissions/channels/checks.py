"""System checks of the channels' settings: Twilio (when it is the SMS backend), templates, mailers.

Ids transmissions.E020-E029 and W020-W029. W021/W022: an SMTP mailer without a timeout, or
with one a send could outlast the worker's lease by (``worker.send_cutoff()``).
"""

from __future__ import annotations

import importlib
import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template
from django.utils.module_loading import import_string

from transmissions.channels.email import HAS_MAILERS, DefaultEmailMessage, configured_mailers
from transmissions.channels.phone import is_e164
from transmissions.channels.rendering import TemplateContextMixin
from transmissions.channels.twilio import TwilioSMSBackend
from transmissions.conf import conf
from transmissions.registry import registry

# Twilio's alphanumeric sender id: up to 11 letters, digits and spaces, one letter at least.
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}\Z")
TEMPLATE_ATTRIBUTES = ("subject_template_name", "text_template_name", "html_template_name", "template_name")


def _uses_twilio() -> bool:
    try:
        backend = import_string(conf.TRANSMISSIONS_SMS_BACKEND)
    except (ImportError, TypeError, ValueError):
        return False  # transmissions.E009 reports it
    return isinstance(backend, type) and issubclass(backend, TwilioSMSBackend)


def _is_sid(value: Any, prefix: str) -> bool:
    return isinstance(value, str) and bool(re.match(rf"^{prefix}[0-9a-fA-F]{{32}}\Z", value))


def _twilio_errors() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    hint = "See docs/channels.md, section Twilio."
    try:
        importlib.import_module("twilio.rest")
    except ImportError:
        errors.append(
            checks.Error(
                "TRANSMISSIONS_SMS_BACKEND is the Twilio backend but the twilio package is not installed.",
                hint='pip install "transmissions[twilio]"',
                id="transmissions.E020",
            )
        )
    sid = conf.TRANSMISSIONS_TWILIO_ACCOUNT_SID
    if not _is_sid(sid, "AC"):
        msg = (
            f"TRANSMISSIONS_TWILIO_ACCOUNT_SID must be an account SID ('AC' and 32 hex digits), not {sid!r}."
        )
        errors.append(checks.Error(msg, hint=hint, id="transmissions.E021"))
    token = conf.TRANSMISSIONS_TWILIO_AUTH_TOKEN
    if not isinstance(token, str) or not token:
        errors.append(
            checks.Error("TRANSMISSIONS_TWILIO_AUTH_TOKEN must be set.", hint=hint, id="transmissions.E022")
        )
    sender = conf.TRANSMISSIONS_TWILIO_FROM_NUMBER
    service = conf.TRANSMISSIONS_TWILIO_MESSAGING_SERVICE_SID
    if not sender and not service:
        msg = "Set TRANSMISSIONS_TWILIO_FROM_NUMBER or TRANSMISSIONS_TWILIO_MESSAGING_SERVICE_SID."
        errors.append(checks.Error(msg, hint=hint, id="transmissions.E023"))
    if sender and not (is_e164(sender) or (isinstance(sender, str) and _ALPHANUMERIC_SENDER.match(sender))):
        msg = (
            "TRANSMISSIONS_TWILIO_FROM_NUMBER must be an E.164 number or an alphanumeric "
            f"sender id, not {sender!r}."
        )
        errors.append(checks.Error(msg, id="transmissions.E024"))
    if service and not _is_sid(service, "MG"):
        msg = f"TRANSMISSIONS_TWILIO_MESSAGING_SERVICE_SID must be 'MG' and 32 hex digits, not {service!r}."
        errors.append(checks.Error(msg, id="transmissions.E025"))
    timeout = conf.TRANSMISSIONS_TWILIO_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        msg = f"TRANSMISSIONS_TWILIO_TIMEOUT must be a positive number of seconds, not {timeout!r}."
        errors.append(checks.Error(msg, id="transmissions.E026"))
    errors += _api_url_errors(conf.TRANSMISSIONS_TWILIO_API_URL)
    return errors


def _api_url_errors(url: Any) -> list[checks.CheckMessage]:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"TRANSMISSIONS_TWILIO_API_URL must be an http(s) URL, not {url!r}."
        return [checks.Error(msg, id="transmissions.E027")]
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        return [
            checks.Warning(
                f"TRANSMISSIONS_TWILIO_API_URL {url!r} is plain http: the auth token would cross the "
                "network unencrypted.",
                hint="Use https, or http only to a stand-in on this machine.",
                id="transmissions.W020",
            )
        ]
    return []


def _template_errors() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for trigger_name, cls in registry.items():
        if not (isinstance(cls, type) and issubclass(cls, TemplateContextMixin)):
            continue
        for attribute in TEMPLATE_ATTRIBUTES:
            name = getattr(cls, attribute, None)
            if not name:
                continue
            try:
                get_template(name)
            except (TemplateDoesNotExist, TemplateSyntaxError) as exc:
                msg = f"Message {trigger_name!r} ({cls.__name__}.{attribute}): template {name!r} {_why(exc)}"
                errors.append(checks.Error(msg, obj=cls, id="transmissions.E028"))
    return errors


def _why(exc: Exception) -> str:
    return "does not exist." if isinstance(exc, TemplateDoesNotExist) else f"does not compile: {exc}"


def _mailer_errors() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    aliases = configured_mailers()
    if HAS_MAILERS:
        hint = "Add it to MAILERS, or set mailer = None to send through the default mailer."
    else:
        hint = (
            "Named mailers need Django 6.1 or later (the MAILERS setting); before it every email "
            "goes through EMAIL_BACKEND. Set mailer = None."
        )
    for trigger_name, cls in registry.items():
        if not (isinstance(cls, type) and issubclass(cls, DefaultEmailMessage)) or cls.mailer is None:
            continue
        mailer = cls.mailer
        if not isinstance(mailer, str) or mailer not in aliases:
            msg = f"Message {trigger_name!r} ({cls.__name__}.mailer): mailer {mailer!r} is not configured."
            errors.append(checks.Error(msg, hint=hint, obj=cls, id="transmissions.E029"))
    return errors


def _is_smtp(path: Any) -> bool:
    try:
        backend = import_string(path)
    except (ImportError, TypeError, ValueError):
        return False  # Django reports a mailer it cannot load
    return isinstance(backend, type) and issubclass(backend, SMTPBackend)


def smtp_timeouts() -> list[tuple[str, Any]]:
    """Return ``(setting, timeout)`` of each SMTP mailer: ``MAILERS[alias]["OPTIONS"]["timeout"]``
    on Django 6.1+ with MAILERS, else ``EMAIL_TIMEOUT`` when ``EMAIL_BACKEND`` is SMTP."""
    if HAS_MAILERS and hasattr(settings, "MAILERS"):
        found = []
        for alias, config in settings.MAILERS.items():
            if isinstance(config, dict) and _is_smtp(config.get("BACKEND")):
                options: Any = config.get("OPTIONS") or {}
                found.append((f"MAILERS[{alias!r}]['OPTIONS']['timeout']", options.get("timeout")))
        return found
    if _is_smtp(getattr(settings, "EMAIL_BACKEND", None)):
        return [("EMAIL_TIMEOUT", getattr(settings, "EMAIL_TIMEOUT", None))]
    return []


def _timeout_warnings() -> list[checks.CheckMessage]:
    """A send must end well within the half lease the worker leaves it (see worker.py)."""
    warnings: list[checks.CheckMessage] = []
    lease = conf.TRANSMISSIONS_LEASE_SECONDS
    half = lease / 2 if isinstance(lease, int | float) and lease > 0 else None
    for name, timeout in smtp_timeouts():
        if timeout is None:
            msg = (
                f"{name} is not set: an SMTP server that accepts the connection and then stays "
                "silent holds a send, and its worker's whole batch, as long as the socket allows."
            )
            hint = "Set it to a few seconds (10, say), well under half TRANSMISSIONS_LEASE_SECONDS."
            warnings.append(checks.Warning(msg, hint=hint, id="transmissions.W021"))
        elif half is not None and isinstance(timeout, int | float) and timeout >= half:
            msg = (
                f"{name} ({timeout} s) is not under half TRANSMISSIONS_LEASE_SECONDS ({half:g} s): "
                "a send the worker starts just before half its lease may outlast the lease."
            )
            warnings.append(checks.Warning(msg, id="transmissions.W022"))
    return warnings


def check_channels(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Check the registered messages' templates and mailers, the SMTP timeouts, and Twilio's
    settings when it is the SMS backend."""
    errors = _template_errors() + _mailer_errors() + _timeout_warnings()
    if _uses_twilio():
        errors += _twilio_errors()
    return errors
