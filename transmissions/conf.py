"""Settings, read lazily through one typed property each, so ``override_settings`` just works.

As in django-cors-headers: ``from transmissions.conf import conf`` then
``conf.TRANSMISSIONS_BATCH_SIZE``. A misspelt name is an attribute error that mypy
catches, not a run-time ``KeyError``. Every setting is optional; the defaults are
below. ``checks.py`` validates them.

Values are cached (a missing setting costs Django's ``LazySettings.__getattr__`` on
every read, which the hot paths read per row); the cache is cleared on Django's
``setting_changed`` signal, which ``override_settings`` sends (connected in
``apps.py``), as django-debug-toolbar does.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

# The original package's spelling of the serializer setting, still honoured.
LEGACY_SERIALIZER_SETTING = "TRANSMISSION_SERIALIZER"
DEFAULT_SERIALIZER = "transmissions.serializers.PickleSerializer"
DEFAULT_POLICIES = [
    "transmissions.tracking.SuppressionPolicy",
    "transmissions.preferences.PreferencePolicy",
    "transmissions.escalation.EscalationPolicy",
    "transmissions.quiet_hours.QuietHoursPolicy",
]
DEFAULT_PREFERENCE_SOURCE = "transmissions.preferences.ModelPreferenceSource"
# What TRANSMISSIONS_WAKE_UP may name besides None (wakeup.py).
CELERY, DJANGO_TASKS = "celery", "django_tasks"
WAKE_UP_ENGINES = (CELERY, DJANGO_TASKS)


_UNSET = object()


class Settings:
    """The ``TRANSMISSIONS_*`` settings, each with its default."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def _get(self, name: str, default: Any) -> Any:
        value = self._cache.get(name, _UNSET)
        if value is _UNSET:
            value = self._cache[name] = getattr(settings, name, default)
        return value

    def clear_cache(self, **kwargs: Any) -> None:
        """Forget the cached values (a ``setting_changed`` receiver)."""
        self._cache.clear()

    @property
    def TRANSMISSIONS_SERIALIZER(self) -> Any:
        """Dotted path of the class that stores ``Notification.data``."""
        return self.serializer_setting()[1]

    def serializer_setting(self) -> tuple[str, Any]:
        """Return ``(setting name, value)`` of the serializer setting in force."""
        for name in ("TRANSMISSIONS_SERIALIZER", LEGACY_SERIALIZER_SETTING):
            if hasattr(settings, name):
                return name, getattr(settings, name)
        return "TRANSMISSIONS_SERIALIZER", DEFAULT_SERIALIZER

    @property
    def TRANSMISSION_USER_MODEL(self) -> Any:
        """transmissions 0.2's user model setting: not read any more (check E100), None if unset."""
        return self._get("TRANSMISSION_USER_MODEL", None)

    @property
    def TRANSMISSIONS_BATCH_SIZE(self) -> Any:
        """Notifications claimed per query by a worker."""
        return self._get("TRANSMISSIONS_BATCH_SIZE", 100)

    @property
    def TRANSMISSIONS_TIME_LIMIT(self) -> Any:
        """Seconds one ``process_all_notifications`` run may keep claiming batches; keep it
        well under the beat interval (60 s) so runs never pile up."""
        return self._get("TRANSMISSIONS_TIME_LIMIT", 45)

    @property
    def TRANSMISSIONS_LEASE_SECONDS(self) -> Any:
        """Seconds a worker holds a claimed notification before it counts as abandoned."""
        return self._get("TRANSMISSIONS_LEASE_SECONDS", 600)

    @property
    def TRANSMISSIONS_EXPIRED_LEASE_POLICY(self) -> Any:
        """What happens to a notification whose lease expired: "broken" (never sent twice:
        at-most-once) or "retry" (queued again: at-least-once)."""
        return self._get("TRANSMISSIONS_EXPIRED_LEASE_POLICY", "broken")

    @property
    def TRANSMISSIONS_MAX_ATTEMPTS(self) -> Any:
        """Attempts (including the first) before a transient channel error is FAILED."""
        return self._get("TRANSMISSIONS_MAX_ATTEMPTS", 5)

    @property
    def TRANSMISSIONS_RETRY_DELAY(self) -> Any:
        """Backoff after a transient error: RETRY_DELAY * 2**(attempt-1), at most RETRY_MAX_DELAY."""
        return self._get("TRANSMISSIONS_RETRY_DELAY", 60)

    @property
    def TRANSMISSIONS_RETRY_MAX_DELAY(self) -> Any:
        return self._get("TRANSMISSIONS_RETRY_MAX_DELAY", 3600)

    @property
    def TRANSMISSIONS_DISPATCH_ON_COMMIT(self) -> Any:
        """Queue the processing task when a due notification is committed (``wakeup.py``),
        instead of waiting for the next beat run."""
        return self._get("TRANSMISSIONS_DISPATCH_ON_COMMIT", False)

    @property
    def TRANSMISSIONS_MAX_DATA_BYTES(self) -> Any:
        """The most bytes one notification's serialized ``data`` may take: a trigger with more
        is refused (InvalidTrigger), so a batch or an inbox page cannot hold gigabytes."""
        return self._get("TRANSMISSIONS_MAX_DATA_BYTES", 256 * 1024)

    @property
    def TRANSMISSIONS_BATCH_MAX_BYTES(self) -> Any:
        """The data a worker's batch may hold at most: a batch has at most this divided by
        TRANSMISSIONS_MAX_DATA_BYTES rows (at least 1), whatever TRANSMISSIONS_BATCH_SIZE says."""
        return self._get("TRANSMISSIONS_BATCH_MAX_BYTES", 32 * 1024 * 1024)

    @property
    def TRANSMISSIONS_SEND_RATES(self) -> Any:
        """The most transmits per second, minute, hour or day on a channel kind (or a message's
        ``send_rate_key``), whatever the number of workers: ``{"email": "14/s", "sms": "1/s"}``
        (``sendrate.py``). Empty (the default): no limit, and no query."""
        return self._get("TRANSMISSIONS_SEND_RATES", {})

    @property
    def TRANSMISSIONS_WAKE_UP(self) -> Any:
        """What wakes a worker when a due notification is committed: ``None`` (the beat,
        cron or ``process_notifications --loop`` finds it), ``"celery"`` or
        ``"django_tasks"``. Unset, ``TRANSMISSIONS_DISPATCH_ON_COMMIT = True`` means
        ``"celery"``; set, it wins over that setting (W060 says so)."""
        value = self._cache.get("TRANSMISSIONS_WAKE_UP", _UNSET)
        if value is _UNSET:
            value = getattr(settings, "TRANSMISSIONS_WAKE_UP", _UNSET)
            if value is _UNSET:
                value = CELERY if self.TRANSMISSIONS_DISPATCH_ON_COMMIT is True else None
            self._cache["TRANSMISSIONS_WAKE_UP"] = value
        return value

    @property
    def TRANSMISSIONS_WAKE_UP_CACHE(self) -> Any:
        """The alias of a cache every process shares (Redis, Memcached, the database) that
        coalesces wake-ups: one woken worker at a time (``coalesce.py``); ``None``: one
        wake-up per committed transaction."""
        return self._get("TRANSMISSIONS_WAKE_UP_CACHE", None)

    @property
    def TRANSMISSIONS_WAKE_UP_LINGER(self) -> Any:
        """Seconds a worker keeps looking for new due rows once the backlog is empty, while
        wake-ups are coalesced."""
        return self._get("TRANSMISSIONS_WAKE_UP_LINGER", 0.5)

    @property
    def TRANSMISSIONS_TASKS_BACKEND(self) -> Any:
        """The ``TASKS`` alias that ``"django_tasks"`` wake-ups are enqueued on."""
        return self._get("TRANSMISSIONS_TASKS_BACKEND", "default")

    @property
    def TRANSMISSIONS_TASKS_QUEUE(self) -> Any:
        """The queue name that ``"django_tasks"`` wake-ups are enqueued on."""
        return self._get("TRANSMISSIONS_TASKS_QUEUE", "default")

    @property
    def TRANSMISSIONS_DISPATCH_TIMEOUT(self) -> Any:
        """Seconds a commit waits for the broker to take the processing task (dispatch on
        commit); past it the commit goes on and the beat sends the rows."""
        return self._get("TRANSMISSIONS_DISPATCH_TIMEOUT", 2.0)

    @property
    def TRANSMISSIONS_SMS_BACKEND(self) -> Any:
        """Where DefaultSMSMessage hands its messages."""
        return self._get("TRANSMISSIONS_SMS_BACKEND", "transmissions.channels.sms.ConsoleSMSBackend")

    @property
    def TRANSMISSIONS_TWILIO_ACCOUNT_SID(self) -> Any:
        """TwilioSMSBackend's credentials and sender: set FROM_NUMBER (E.164 or an alphanumeric
        sender id) or MESSAGING_SERVICE_SID ("MG...")."""
        return self._get("TRANSMISSIONS_TWILIO_ACCOUNT_SID", None)

    @property
    def TRANSMISSIONS_TWILIO_AUTH_TOKEN(self) -> Any:
        return self._get("TRANSMISSIONS_TWILIO_AUTH_TOKEN", None)

    @property
    def TRANSMISSIONS_TWILIO_FROM_NUMBER(self) -> Any:
        return self._get("TRANSMISSIONS_TWILIO_FROM_NUMBER", None)

    @property
    def TRANSMISSIONS_TWILIO_MESSAGING_SERVICE_SID(self) -> Any:
        return self._get("TRANSMISSIONS_TWILIO_MESSAGING_SERVICE_SID", None)

    @property
    def TRANSMISSIONS_TWILIO_TIMEOUT(self) -> Any:
        """Seconds to wait for Twilio; a timeout is retried with backoff."""
        return self._get("TRANSMISSIONS_TWILIO_TIMEOUT", 10)

    @property
    def TRANSMISSIONS_TWILIO_API_URL(self) -> Any:
        """Where the Messages API lives: change only for a proxy or a local stand-in."""
        return self._get("TRANSMISSIONS_TWILIO_API_URL", "https://api.twilio.com")

    @property
    def TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL(self) -> Any:
        """The public URL of ``webhooks.TwilioStatusCallbackView``: when set, every SMS asks
        Twilio to post its status changes there (and signatures are checked against it)."""
        return self._get("TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL", None)

    @property
    def TRANSMISSIONS_PUSH_SERVICES(self) -> Any:
        """Device types PushMessage sends to: any of "webpush", "fcm", "apns"."""
        return self._get("TRANSMISSIONS_PUSH_SERVICES", ["webpush", "fcm", "apns"])

    @property
    def TRANSMISSIONS_PUSH_TTL(self) -> Any:
        """Seconds a push provider keeps a message for a device that is offline."""
        return self._get("TRANSMISSIONS_PUSH_TTL", 86400)

    @property
    def TRANSMISSIONS_POLICIES(self) -> Any:
        """Dotted paths of the ``policies.Policy`` classes that may hold a notification back
        before it is sent, in order. By default the suppression list (hard bounces and
        complaints); a project that sets it chooses its own list."""
        return self._get("TRANSMISSIONS_POLICIES", DEFAULT_POLICIES)

    @property
    def TRANSMISSIONS_CATEGORIES(self) -> Any:
        """The categories messages belong to, by name: ``{"comments": {"label": ..., "description":
        ..., "channels": {"email": True, "sms": False}, "default": True}}`` (``categories.py``)."""
        return self._get("TRANSMISSIONS_CATEGORIES", {})

    @property
    def TRANSMISSIONS_PREFERENCE_SOURCE(self) -> Any:
        """Dotted path of the ``preferences.PreferenceSource`` that reads and writes the users'
        choices (the ``Preference`` model by default)."""
        return self._get("TRANSMISSIONS_PREFERENCE_SOURCE", DEFAULT_PREFERENCE_SOURCE)

    @property
    def TRANSMISSIONS_UNSUBSCRIBE_BASE_URL(self) -> Any:
        """The site's public root ("https://example.com"): one-click unsubscribe links are this
        plus the path of ``transmissions:unsubscribe``. None: emails carry no List-Unsubscribe."""
        return self._get("TRANSMISSIONS_UNSUBSCRIBE_BASE_URL", None)

    @property
    def TRANSMISSIONS_IDEMPOTENCY_WINDOW(self) -> Any:
        """How long a caller's idempotency key names its notification: seconds or a timedelta
        (default a day). A trigger with the key within it returns that notification."""
        return self._get("TRANSMISSIONS_IDEMPOTENCY_WINDOW", 86400)

    @property
    def TRANSMISSIONS_DIGEST_FREQUENCIES(self) -> Any:
        """The digest frequencies a recipient may choose, by name: seconds or a timedelta each
        (0: at once). Default instant, hourly, daily, weekly (``digests.py``)."""
        return self._get(
            "TRANSMISSIONS_DIGEST_FREQUENCIES",
            {"instant": 0, "hourly": 3600, "daily": 86400, "weekly": 604800},
        )

    @property
    def TRANSMISSIONS_QUIET_HOURS(self) -> Any:
        """Everyone's quiet hours, two "HH:MM" wall-clock times in the recipient's time zone
        (``("22:00", "07:00")``); None: none (``quiet_hours.py``)."""
        return self._get("TRANSMISSIONS_QUIET_HOURS", None)

    @property
    def TRANSMISSIONS_QUIET_HOURS_SOURCE(self) -> Any:
        """Dotted path of a callable taking a user and returning their own window, None (the
        default window) or False (none)."""
        return self._get("TRANSMISSIONS_QUIET_HOURS_SOURCE", None)

    @property
    def TRANSMISSIONS_QUIET_HOURS_EXEMPT_CHANNELS(self) -> Any:
        """Channel kinds sent even inside quiet hours."""
        return self._get("TRANSMISSIONS_QUIET_HOURS_EXEMPT_CHANNELS", ["inapp"])

    @property
    def TRANSMISSIONS_RECIPIENT_TIMEZONE(self) -> Any:
        """A user's time zone: the name of a user attribute holding a zone name ("timezone"), or
        the dotted path of a callable taking the user; None: ``TIME_ZONE`` for everyone."""
        return self._get("TRANSMISSIONS_RECIPIENT_TIMEZONE", None)

    @property
    def TRANSMISSIONS_RECIPIENT_LANGUAGE(self) -> Any:
        """A user's language: the name of a user attribute holding a language code ("language"),
        or the dotted path of a callable taking the user; None: ``LANGUAGE_CODE`` for everyone."""
        return self._get("TRANSMISSIONS_RECIPIENT_LANGUAGE", None)

    @property
    def TRANSMISSIONS_FAST_PATH(self) -> Any:
        """Use the shortcuts in ``internals.py`` that lean on Django internals (on by default).
        Turn off if a Django release breaks them: everything then goes through public APIs."""
        return self._get("TRANSMISSIONS_FAST_PATH", True)


conf = Settings()
