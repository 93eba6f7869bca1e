"""System checks of the push channel's configuration (transmissions.E030-E040, W030).

A missing key or library is reported when ``manage.py check`` (or any command) runs,
instead of failing every push notification one by one in the workers. The settings of
django-push-notifications are checked only when a ``PushMessage`` is registered, and
only for the services it sends to.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from typing import Any

from django.apps import apps
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from transmissions.channels.push_services import SERVICES
from transmissions.checks import positive_number
from transmissions.conf import conf
from transmissions.registry import registry

_LIBRARIES = {"webpush": "pywebpush", "fcm": "firebase_admin", "apns": "aioapns"}


def _error(msg: str, id: str, hint: str | None = None) -> checks.Error:
    return checks.Error(msg, hint=hint, id=id)


def _bad_services(value: Any) -> bool:
    return (
        not isinstance(value, list | tuple)
        or not value
        or any(not isinstance(s, str) or s not in SERVICES for s in value)
    )


def check_push(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Check TRANSMISSIONS_PUSH_* and, when push messages are registered, their libraries and keys."""
    errors: list[checks.CheckMessage] = []
    services = conf.TRANSMISSIONS_PUSH_SERVICES
    if _bad_services(services):
        errors.append(
            _error(
                f"TRANSMISSIONS_PUSH_SERVICES must be a non-empty list of 'webpush', 'fcm', "
                f"'apns', not {services!r}.",
                "transmissions.E030",
            )
        )
        services = []
    errors += positive_number("TRANSMISSIONS_PUSH_TTL", "transmissions.E031")
    needed: set[str] = set()
    for name, cls in _push_messages():
        own = getattr(cls, "push_services", None)
        if own is not None and _bad_services(own):
            errors.append(
                _error(
                    f"{cls.__qualname__}.push_services ({name!r}) must be a non-empty list of "
                    f"'webpush', 'fcm', 'apns', not {own!r}.",
                    "transmissions.E037",
                )
            )
            continue
        needed.update(services if own is None else own)
    if needed:
        errors += _check_library(sorted(needed))
    return errors


def _push_messages() -> list[tuple[str, Any]]:
    # By the channel kind PushMessage declares, so that this module needs no channel class.
    return [(name, cls) for name, cls in registry.items() if getattr(cls, "channel", "") == "push"]


def _check_library(services: list[str]) -> list[checks.CheckMessage]:
    hint = 'pip install "transmissions[push]" and add "push_notifications" to INSTALLED_APPS.'
    if find_spec("push_notifications") is None or not apps.is_installed("push_notifications"):
        return [
            _error(
                "Push messages are registered but django-push-notifications is not installed "
                "or 'push_notifications' is not in INSTALLED_APPS.",
                "transmissions.E032",
                hint,
            )
        ]
    try:
        # Importing the module already builds django-push-notifications' config manager.
        from push_notifications.conf import LegacyConfig, get_manager  # type: ignore[attr-defined]

        manager = get_manager()
    except ImproperlyConfigured as exc:
        return [_error(f"PUSH_NOTIFICATIONS_SETTINGS: {exc}", "transmissions.E038")]
    errors: list[checks.CheckMessage] = []
    for service in services:
        library = _LIBRARIES[service]
        if find_spec(library) is None:
            errors.append(
                _error(
                    f"Push service {service!r} needs {library}, which is not installed.",
                    "transmissions.E033",
                    hint,
                )
            )
        # Per-application configs (APPLICATIONS) are validated by django-push-notifications
        # itself when its manager is built; only the single-application settings are read here.
        elif isinstance(manager, LegacyConfig):
            errors += {"webpush": _check_webpush, "fcm": _check_fcm, "apns": _check_apns}[service](manager)
    return errors


def _get(getter: Any) -> Any:
    # The legacy config raises ImproperlyConfigured for a key deleted from its defaults.
    try:
        return getter(None)
    except ImproperlyConfigured:
        return None


def _check_webpush(manager: Any) -> list[checks.CheckMessage]:
    from py_vapid import Vapid

    errors: list[checks.CheckMessage] = []
    key = _get(manager.get_wp_private_key)
    hint = "Generate a VAPID key pair (vapid --gen) and set PUSH_NOTIFICATIONS_SETTINGS['WP_PRIVATE_KEY']."
    if not key:
        errors.append(
            _error(
                "Web Push needs PUSH_NOTIFICATIONS_SETTINGS['WP_PRIVATE_KEY'].", "transmissions.E034", hint
            )
        )
    else:
        try:
            # The forms pywebpush accepts: a key file, or the key as a string (raw or DER).
            is_file = isinstance(key, str | os.PathLike) and os.path.isfile(key)
            Vapid.from_file(key) if is_file else Vapid.from_string(key)
        except Exception as exc:
            errors.append(
                _error(
                    f"PUSH_NOTIFICATIONS_SETTINGS['WP_PRIVATE_KEY'] is not a VAPID private key: {exc!r}",
                    "transmissions.E039",
                    hint,
                )
            )
    claims = _get(manager.get_wp_claims)
    sub = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
        errors.append(
            _error(
                f"PUSH_NOTIFICATIONS_SETTINGS['WP_CLAIMS'] must be a dict whose 'sub' is a "
                f"mailto: or https: contact, not {claims!r}.",
                "transmissions.E035",
                hint='e.g. {"sub": "mailto:push@example.com"}',
            )
        )
    return errors


def _check_fcm(manager: Any) -> list[checks.CheckMessage]:
    import firebase_admin

    if _get(manager.get_firebase_app) is not None:
        return []
    try:
        firebase_admin.get_app()
    except ValueError:
        return [
            checks.Warning(
                "FCM: no Firebase app is initialised yet and PUSH_NOTIFICATIONS_SETTINGS"
                "['FIREBASE_APP'] is not set; FCM pushes fail until one is.",
                hint="Call firebase_admin.initialize_app(...) in an AppConfig.ready(), or set FIREBASE_APP.",
                id="transmissions.W030",
            )
        ]
    return []


def _check_apns(manager: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if not _get(manager.get_apns_topic):
        errors.append(
            _error(
                "APNs needs PUSH_NOTIFICATIONS_SETTINGS['APNS_TOPIC'] (the app's bundle id).",
                "transmissions.E036",
            )
        )
    if not manager.has_auth_token_creds(None):
        if not _get(manager.get_apns_certificate):
            errors.append(
                _error(
                    "APNs needs credentials: APNS_AUTH_KEY_PATH, APNS_AUTH_KEY_ID and APNS_TEAM_ID, "
                    "or APNS_CERTIFICATE, in PUSH_NOTIFICATIONS_SETTINGS.",
                    "transmissions.E040",
                )
            )
    return errors
