"""The recipient's language and time zone, under which each notification is rendered.

``TRANSMISSIONS_RECIPIENT_LANGUAGE`` and ``TRANSMISSIONS_RECIPIENT_TIMEZONE`` each name a
user attribute ("language", "timezone") or, with a dot, a callable taking the user. A
value that is empty, unknown, or that the source fails to give falls back to
``LANGUAGE_CODE`` / ``TIME_ZONE`` (with a WARNING when it was given but is unusable).
``delivery.deliver()`` builds and sends each notification inside ``activated(user)``: its
templates, ``gettext`` calls and dates come out in the recipient's language and zone, and
the worker's own are back in force afterwards.
"""

from __future__ import annotations

import functools
import logging
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.utils import timezone, translation
from django.utils.module_loading import import_string

from transmissions.conf import conf

logger = logging.getLogger("transmissions")


@functools.cache
def _callable(path: str) -> Callable[[Any], Any]:
    found = import_string(path)
    if not callable(found):
        raise TypeError(f"{path!r} is not callable")
    return found  # type: ignore[no-any-return]


def _read(source: Any, user: Any, what: str) -> Any:
    """Return what ``source`` (an attribute name, or a callable's dotted path) says of ``user``."""
    if not source:
        return None
    try:
        return _callable(source)(user) if "." in source else getattr(user, source, None)
    except Exception as exc:  # a project's callable must not cost the notification
        logger.warning("The %s of user %s could not be read (%r): the default is used.", what, user.pk, exc)
        return None


def timezone_of(user: Any) -> zoneinfo.ZoneInfo:
    """Return ``user``'s time zone: ``TRANSMISSIONS_RECIPIENT_TIMEZONE``'s when it names a known
    zone, else ``TIME_ZONE``'s."""
    name = _read(conf.TRANSMISSIONS_RECIPIENT_TIMEZONE, user, "time zone")
    if isinstance(name, zoneinfo.ZoneInfo):
        return name
    if name:
        try:
            return zoneinfo.ZoneInfo(str(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            fallback = settings.TIME_ZONE
            logger.warning("User %s has an unknown time zone %r: %s is used.", user.pk, name, fallback)
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def language_of(user: Any) -> str:
    """Return ``user``'s language: ``TRANSMISSIONS_RECIPIENT_LANGUAGE``'s when it is one of
    ``LANGUAGES`` (or a variant of one: "de-at" gives "de"), else ``LANGUAGE_CODE``."""
    code = _read(conf.TRANSMISSIONS_RECIPIENT_LANGUAGE, user, "language")
    if code:
        try:
            return translation.get_supported_language_variant(str(code))
        except LookupError:
            logger.warning(
                "User %s has a language %r that LANGUAGES does not list: %s is used.",
                user.pk,
                code,
                settings.LANGUAGE_CODE,
            )
    return str(settings.LANGUAGE_CODE)


def in_force() -> tuple[str, Any]:
    """Return the language and time zone active now (a worker reads them once per batch: reading
    the thread's locale costs more than the rest)."""
    return translation.get_language(), timezone.get_current_timezone()


def reads_user() -> bool:
    """Whether a language or time zone source is set (else the user is not read at all: a
    batch's users are loaded only if something reads them)."""
    return bool(conf.TRANSMISSIONS_RECIPIENT_LANGUAGE or conf.TRANSMISSIONS_RECIPIENT_TIMEZONE)


def fixed_locale() -> tuple[str, zoneinfo.ZoneInfo] | None:
    """Every recipient's language and time zone when no source is set (the defaults, the same
    for all: a worker reads them once per batch), else None (each recipient's own)."""
    return None if reads_user() else locale_of(None)


def locale_of(user: Any) -> tuple[str, zoneinfo.ZoneInfo]:
    """Return ``(language_of(user), timezone_of(user))``."""
    return language_of(user), timezone_of(user)


@contextmanager
def switched(locale: tuple[str, Any]) -> Iterator[None]:
    """Activate the language and time zone ``locale`` for the block; restore the previous ones after."""
    with translation.override(locale[0]), timezone.override(locale[1]):
        yield


def activated(user: Any) -> Any:
    """Return a context manager in which ``user``'s language and time zone are active."""
    return switched(locale_of(user))


__all__ = [
    "activated",
    "fixed_locale",
    "in_force",
    "language_of",
    "locale_of",
    "reads_user",
    "switched",
    "timezone_of",
]
