"""Settings, read lazily so that ``override_settings`` just works.

Every setting is optional; the defaults are below. ``checks.py`` validates them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Dotted path of the class that stores ``Notification.data``.
    "TRANSMISSIONS_SERIALIZER": "transmissions.serializers.PickleSerializer",
    # Notifications claimed per query by a worker.
    "TRANSMISSIONS_BATCH_SIZE": 100,
    # Seconds one ``process_all_notifications`` run may keep claiming batches;
    # keep it well under the beat interval (60 s) so runs never pile up.
    "TRANSMISSIONS_TIME_LIMIT": 45,
    # Seconds a worker holds a claimed notification before it counts as abandoned.
    "TRANSMISSIONS_LEASE_SECONDS": 600,
    # What happens to a notification whose lease expired: "broken" (never sent
    # twice: at-most-once) or "retry" (queued again: at-least-once).
    "TRANSMISSIONS_EXPIRED_LEASE_POLICY": "broken",
    # Attempts (including the first) before a transient channel error is FAILED.
    "TRANSMISSIONS_MAX_ATTEMPTS": 5,
    # Backoff after a transient error: RETRY_DELAY * 2**(attempt-1), at most RETRY_MAX_DELAY.
    "TRANSMISSIONS_RETRY_DELAY": 60,
    "TRANSMISSIONS_RETRY_MAX_DELAY": 3600,
    # Queue the processing task when a due notification is committed (see dispatch.py),
    # instead of waiting for the next beat run.
    "TRANSMISSIONS_DISPATCH_ON_COMMIT": False,
    # Where DefaultSMSMessage hands its messages.
    "TRANSMISSIONS_SMS_BACKEND": "transmissions.channels.sms.ConsoleSMSBackend",
    # transmissions.channels.twilio.TwilioSMSBackend: credentials and sender. Set
    # FROM_NUMBER (E.164 or an alphanumeric sender id) or MESSAGING_SERVICE_SID ("MG...").
    "TRANSMISSIONS_TWILIO_ACCOUNT_SID": None,
    "TRANSMISSIONS_TWILIO_AUTH_TOKEN": None,
    "TRANSMISSIONS_TWILIO_FROM_NUMBER": None,
    "TRANSMISSIONS_TWILIO_MESSAGING_SERVICE_SID": None,
    # Seconds to wait for Twilio; a timeout is retried with backoff.
    "TRANSMISSIONS_TWILIO_TIMEOUT": 10,
    # Where the Messages API lives: change only for a proxy or a local stand-in.
    "TRANSMISSIONS_TWILIO_API_URL": "https://api.twilio.com",
    # Device types PushMessage sends to: any of "webpush", "fcm", "apns".
    "TRANSMISSIONS_PUSH_SERVICES": ["webpush", "fcm", "apns"],
    # Seconds a push provider keeps a message for a device that is offline.
    "TRANSMISSIONS_PUSH_TTL": 86400,
}

# The original package's spelling, still honoured.
LEGACY_SERIALIZER_SETTING = "TRANSMISSION_SERIALIZER"


def get(name: str) -> Any:
    """Return the setting ``name``, or its default."""
    if name == "TRANSMISSIONS_SERIALIZER":
        return serializer_setting()[1]
    return getattr(settings, name, DEFAULTS[name])


def serializer_setting() -> tuple[str, Any]:
    """Return ``(setting name, value)`` of the serializer setting in force."""
    for name in ("TRANSMISSIONS_SERIALIZER", LEGACY_SERIALIZER_SETTING):
        if hasattr(settings, name):
            return name, getattr(settings, name)
    return "TRANSMISSIONS_SERIALIZER", DEFAULTS["TRANSMISSIONS_SERIALIZER"]
