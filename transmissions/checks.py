"""System checks of the core settings (transmissions.E001-E015, W001-W003, E100), of the rows
(W004, a database check), of delivery tracking (E050-E052), of the wake-up (E060-E066,
W060-W064), of categories, preferences and unsubscribe links (E070-E073, W070-W073) and of
idempotency keys, throttling and digests (E080-E089, W080-W089).


The channels' checks are in ``channels/checks.py`` and ``channels/push_checks.py``;
``apps.py`` registers all of them. An id is never reused: ``docs/checks.md`` lists them.
"""

from __future__ import annotations

import datetime
import importlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import connections, router
from django.db.models import Count
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from transmissions import categories, taskapi
from transmissions.conf import CELERY, DJANGO_TASKS, LEGACY_SERIALIZER_SETTING, WAKE_UP_ENGINES, conf
from transmissions.lifecycle import notification_model
from transmissions.policies import Policy
from transmissions.preferences import PreferencePolicy, PreferenceSource
from transmissions.quiet_hours import QuietHoursError, parse_window
from transmissions.registry import registry
from transmissions.status import Status
from transmissions.unsubscribe import URL_NAME


def _error(msg: str, id: str, hint: str | None = None) -> checks.Error:
    return checks.Error(msg, hint=hint, id=id)


def positive_number(name: str, id: str, integer: bool = True) -> list[checks.CheckMessage]:
    """Return error ``id`` unless setting ``name`` is a positive integer (or number)."""
    value: Any = getattr(conf, name)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or (integer and not isinstance(value, int)) or value <= 0:
        kind = "integer" if integer else "number"
        return [_error(f"{name} must be a positive {kind}, not {value!r}.", id)]
    return []


def _importable(
    name: str, value: Any, id: str, test: Callable[[Any], bool], what: str
) -> list[checks.CheckMessage]:
    if not isinstance(value, str):
        return [_error(f"{name} must be a dotted path string, not {value!r}.", id)]
    try:
        obj = import_string(value)
    except ImportError as exc:
        return [_error(f"{name} = {value!r} cannot be imported: {exc}", id)]
    if not test(obj):
        return [_error(f"{name} = {value!r} is not {what}.", id)]
    return []


def _is_serializer(cls: Any) -> bool:
    return (
        isinstance(cls, type)
        and callable(getattr(cls, "dumps", None))
        and callable(getattr(cls, "loads", None))
    )


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Check every core TRANSMISSIONS_* setting."""
    name, value = conf.serializer_setting()
    errors = _importable(
        name, value, "transmissions.E001", _is_serializer, "a class with dumps() and loads()"
    )
    errors += positive_number("TRANSMISSIONS_BATCH_SIZE", "transmissions.E002")
    errors += positive_number("TRANSMISSIONS_TIME_LIMIT", "transmissions.E003", integer=False)
    errors += positive_number("TRANSMISSIONS_LEASE_SECONDS", "transmissions.E004", integer=False)
    policy = conf.TRANSMISSIONS_EXPIRED_LEASE_POLICY
    if policy not in ("broken", "retry"):
        errors.append(
            _error(
                f"TRANSMISSIONS_EXPIRED_LEASE_POLICY must be 'broken' or 'retry', not {policy!r}.",
                "transmissions.E005",
            )
        )
    errors += positive_number("TRANSMISSIONS_MAX_ATTEMPTS", "transmissions.E006")
    errors += positive_number("TRANSMISSIONS_RETRY_DELAY", "transmissions.E007", integer=False)
    errors += positive_number("TRANSMISSIONS_RETRY_MAX_DELAY", "transmissions.E008", integer=False)
    errors += positive_number("TRANSMISSIONS_DISPATCH_TIMEOUT", "transmissions.E013", integer=False)
    errors += positive_number("TRANSMISSIONS_MAX_DATA_BYTES", "transmissions.E014")
    errors += positive_number("TRANSMISSIONS_BATCH_MAX_BYTES", "transmissions.E015")
    errors += _importable(
        "TRANSMISSIONS_SMS_BACKEND",
        conf.TRANSMISSIONS_SMS_BACKEND,
        "transmissions.E009",
        lambda cls: isinstance(cls, type) and callable(getattr(cls, "send_messages", None)),
        "a class with send_messages()",
    )
    dispatch = conf.TRANSMISSIONS_DISPATCH_ON_COMMIT
    if not isinstance(dispatch, bool):
        errors.append(
            _error(
                f"TRANSMISSIONS_DISPATCH_ON_COMMIT must be True or False, not {dispatch!r}.",
                "transmissions.E010",
            )
        )
    errors += _idempotency()
    errors += _policies()
    errors += _tracking()
    errors += _wake_up()
    errors += _preferences()
    errors += _legacy()
    errors += _warnings()
    return errors


def _idempotency() -> list[checks.CheckMessage]:
    """Idempotency keys, throttling and digests (E080-E089, W080-W089)."""
    value = conf.TRANSMISSIONS_IDEMPOTENCY_WINDOW
    if isinstance(value, datetime.timedelta):
        good = value > datetime.timedelta(0)
    else:
        good = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    errors = []
    if not good:
        msg = "TRANSMISSIONS_IDEMPOTENCY_WINDOW must be a positive number of seconds or timedelta, "
        msg += f"not {value!r}."
        errors.append(_error(msg, "transmissions.E080"))
    return errors + _digest_frequencies()


def _digest_frequencies() -> list[checks.CheckMessage]:
    value = conf.TRANSMISSIONS_DIGEST_FREQUENCIES
    problem = ""
    if not isinstance(value, dict) or not value:
        problem = f"a non-empty dict of names to windows, not {value!r}"
    else:
        for name, window in value.items():
            if not isinstance(name, str) or not 0 < len(name) <= 32:
                problem = f"keyed by names of 1 to 32 characters, not {name!r}"
            elif isinstance(window, datetime.timedelta):
                problem = "" if window >= datetime.timedelta(0) else f"{name!r}: {window!r} is negative"
            elif not isinstance(window, int | float) or isinstance(window, bool) or window < 0:
                problem = f"{name!r}: a number of seconds (0 or more) or a timedelta, not {window!r}"
            if problem:
                break
    if problem:
        msg = f"TRANSMISSIONS_DIGEST_FREQUENCIES must be {problem}."
        return [_error(msg, "transmissions.E082", "See docs/digests.md.")]
    return []


def _legacy() -> list[checks.CheckMessage]:
    """Settings of transmissions 0.2 that no longer do what they did (E100-E109)."""
    user_model = conf.TRANSMISSION_USER_MODEL
    if user_model is None or user_model == settings.AUTH_USER_MODEL:
        return []
    return [
        _error(
            f"TRANSMISSION_USER_MODEL is {user_model!r}, but transmissions no longer reads it: "
            f"notifications belong to AUTH_USER_MODEL ({settings.AUTH_USER_MODEL!r}).",
            "transmissions.E100",
            hint="Remove TRANSMISSION_USER_MODEL. If your 0.2 notifications point to that other "
            "model's rows, move them to AUTH_USER_MODEL's before upgrading "
            "(docs/upgrading.md, 'Differences from 0.2').",
        )
    ]


def _tracking() -> list[checks.CheckMessage]:
    url = conf.TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL
    if url is None:
        return []
    hint = "See docs/tracking.md, section Twilio."
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        msg = f"TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL must be an absolute http(s) URL, not {url!r}."
        return [_error(msg, "transmissions.E050", hint)]
    errors: list[checks.CheckMessage] = []
    if not conf.TRANSMISSIONS_TWILIO_AUTH_TOKEN:
        msg = (
            "TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL is set but TRANSMISSIONS_TWILIO_AUTH_TOKEN is not: "
            "every status callback's signature would be refused."
        )
        errors.append(_error(msg, "transmissions.E051", hint))
    try:
        importlib.import_module("twilio.request_validator")
    except ImportError:
        msg = (
            "TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL is set but the twilio package, which checks "
            "the callbacks' signatures, is not installed."
        )
        errors.append(_error(msg, "transmissions.E052", 'pip install "transmissions[twilio]"'))
    return errors


def _wake_up() -> list[checks.CheckMessage]:
    hint = "See docs/wakeup.md."
    engine = conf.TRANSMISSIONS_WAKE_UP
    if engine is not None and engine not in WAKE_UP_ENGINES:
        msg = f"TRANSMISSIONS_WAKE_UP must be None, 'celery' or 'django_tasks', not {engine!r}."
        return [_error(msg, "transmissions.E060", hint)]
    found: list[checks.CheckMessage] = []
    if hasattr(settings, "TRANSMISSIONS_WAKE_UP") and conf.TRANSMISSIONS_DISPATCH_ON_COMMIT is True:
        if engine != CELERY:
            msg = (
                f"TRANSMISSIONS_DISPATCH_ON_COMMIT = True is ignored: TRANSMISSIONS_WAKE_UP = {engine!r} "
                "is set and wins."
            )
            found.append(
                checks.Warning(msg, hint="Remove TRANSMISSIONS_DISPATCH_ON_COMMIT.", id="transmissions.W060")
            )
    if engine == DJANGO_TASKS:
        found += _django_tasks(hint)
    return found + _coalescing()


def _coalescing() -> list[checks.CheckMessage]:
    hint = "See docs/wakeup.md (coalesced wake-ups)."
    alias = conf.TRANSMISSIONS_WAKE_UP_CACHE
    found: list[checks.CheckMessage] = []
    linger = conf.TRANSMISSIONS_WAKE_UP_LINGER
    if isinstance(linger, bool) or not isinstance(linger, int | float) or not 0 <= linger < 60:
        msg = f"TRANSMISSIONS_WAKE_UP_LINGER must be a number of seconds from 0 to under 60, not {linger!r}."
        found.append(_error(msg, "transmissions.E066", hint))
    if alias is None:
        return found
    if not isinstance(alias, str) or alias not in settings.CACHES:
        caches = ", ".join(settings.CACHES)
        msg = f"TRANSMISSIONS_WAKE_UP_CACHE = {alias!r} is not an alias of CACHES ({caches})."
        return [*found, _error(msg, "transmissions.E065", hint)]
    backend = str(settings.CACHES[alias].get("BACKEND", ""))
    if backend.endswith((".locmem.LocMemCache", ".dummy.DummyCache")):
        msg = (
            f"TRANSMISSIONS_WAKE_UP_CACHE = {alias!r} is a {backend.rsplit('.', 1)[-1]}, which processes do "
            "not share: a worker cannot tell the web processes it stopped looking, so their commits "
            "would skip wake-ups until the key expires (60 s)."
        )
        found.append(
            checks.Warning(msg, hint="Name a Redis, Memcached or database cache.", id="transmissions.W064")
        )
    return found


def _django_tasks(hint: str) -> list[checks.CheckMessage]:
    api = taskapi.module()
    if api is None:
        msg = (
            "TRANSMISSIONS_WAKE_UP = 'django_tasks' needs django.tasks: Django 6.0+, or the "
            "django-tasks backport on Django 5.2, which is not installed."
        )
        return [_error(msg, "transmissions.E061", 'pip install "transmissions[tasks]"')]
    alias = conf.TRANSMISSIONS_TASKS_BACKEND
    configured = api.task_backends.settings
    if not isinstance(alias, str) or alias not in configured:
        msg = f"TRANSMISSIONS_TASKS_BACKEND = {alias!r} is not a backend of TASKS ({', '.join(configured)})."
        return [_error(msg, "transmissions.E062", hint)]
    try:
        backend = api.task_backends[alias]
    except Exception as exc:
        path = configured[alias].get("BACKEND") if isinstance(configured[alias], dict) else None
        msg = f"The {alias!r} task backend ({path!r}) of TASKS cannot be loaded: {exc}"
        return [_error(msg, "transmissions.E063", "Install the package that provides it.")]
    found: list[checks.CheckMessage] = []
    queue = conf.TRANSMISSIONS_TASKS_QUEUE
    if not isinstance(queue, str) or (backend.queues and queue not in backend.queues):
        queues = ", ".join(sorted(backend.queues))
        msg = (
            f"TRANSMISSIONS_TASKS_QUEUE = {queue!r} is not a queue of the {alias!r} task backend ({queues})."
        )
        found.append(_error(msg, "transmissions.E064", hint))
    kind = f"{type(backend).__module__}.{type(backend).__name__}"
    if kind == f"{api.__name__}.backends.immediate.ImmediateBackend" and not settings.DEBUG:
        msg = (
            f"The {alias!r} task backend is the ImmediateBackend: the process that commits a trigger "
            "sends every due notification itself, inside its request."
        )
        found.append(
            checks.Warning(
                msg, hint="Use a backend with workers, e.g. django-tasks-db.", id="transmissions.W061"
            )
        )
    if kind == f"{api.__name__}.backends.dummy.DummyBackend":
        msg = f"The {alias!r} task backend is the DummyBackend: it never runs a task, so nothing is woken."
        found.append(checks.Warning(msg, hint=hint, id="transmissions.W062"))
    if api.__name__ == "django_tasks" and not apps.is_installed("django_tasks"):
        msg = (
            "The django-tasks backport is used but 'django_tasks' is not in INSTALLED_APPS: "
            "its checks of TASKS do not run."
        )
        found.append(
            checks.Warning(msg, hint="Add 'django_tasks' to INSTALLED_APPS.", id="transmissions.W063")
        )
    return found


def _preferences() -> list[checks.CheckMessage]:
    hint = "See docs/preferences.md."
    try:
        declared = categories.categories()
    except categories.CategoryError as exc:
        return [_error(f"TRANSMISSIONS_CATEGORIES: {exc}.", "transmissions.E070", hint)]
    errors: list[checks.CheckMessage] = []
    in_categories = []
    for name, cls in registry.items():
        category = getattr(cls, "category", None)
        if category and category not in declared:
            msg = f"Message {name!r} names the category {category!r}, which is not declared."
            errors.append(_error(msg, "transmissions.E071", "Add it to TRANSMISSIONS_CATEGORIES. " + hint))
        if categories.of(cls) is not None:
            in_categories.append(cls)
    errors += _importable(
        "TRANSMISSIONS_PREFERENCE_SOURCE",
        conf.TRANSMISSIONS_PREFERENCE_SOURCE,
        "transmissions.E072",
        lambda cls: isinstance(cls, type) and issubclass(cls, PreferenceSource),
        "a transmissions.preferences.PreferenceSource subclass",
    )
    policies = conf.TRANSMISSIONS_POLICIES
    if (
        in_categories
        and isinstance(policies, list | tuple)
        and not any(_applies_preferences(p) for p in policies)
    ):
        msg = (
            "Messages name categories but no policy of TRANSMISSIONS_POLICIES applies the users' preferences."
        )
        errors.append(
            checks.Warning(
                msg, hint='Add "transmissions.preferences.PreferencePolicy".', id="transmissions.W073"
            )
        )
    errors += _quiet_hours()
    return errors + _unsubscribe_links(any(getattr(c, "channel", "") == "email" for c in in_categories))


def _quiet_hours() -> list[checks.CheckMessage]:
    hint = "See docs/preferences.md, section Quiet hours."
    errors: list[checks.CheckMessage] = []
    try:
        parse_window(conf.TRANSMISSIONS_QUIET_HOURS)
    except QuietHoursError as exc:
        errors.append(_error(f"TRANSMISSIONS_QUIET_HOURS: {exc}.", "transmissions.E074", hint))
    source = conf.TRANSMISSIONS_QUIET_HOURS_SOURCE
    if source is not None:
        errors += _importable(
            "TRANSMISSIONS_QUIET_HOURS_SOURCE", source, "transmissions.E075", callable, "callable"
        )
    errors += _user_source("TRANSMISSIONS_RECIPIENT_TIMEZONE", "transmissions.E076", hint)
    errors += _user_source("TRANSMISSIONS_RECIPIENT_LANGUAGE", "transmissions.E078", hint)
    exempt = conf.TRANSMISSIONS_QUIET_HOURS_EXEMPT_CHANNELS
    if not (isinstance(exempt, list | tuple) and all(isinstance(kind, str) for kind in exempt)):
        msg = f"TRANSMISSIONS_QUIET_HOURS_EXEMPT_CHANNELS must be a list of channel kinds, not {exempt!r}."
        errors.append(_error(msg, "transmissions.E077", hint))
    return errors


def _user_source(name: str, id: str, hint: str) -> list[checks.CheckMessage]:
    """Check a setting that names a user attribute, or a callable by its dotted path."""
    value = getattr(conf, name)
    if value is None:
        return []
    if not (isinstance(value, str) and value):
        found: list[checks.CheckMessage] = [_error(f"must be a name or a dotted path, not {value!r}.", "")]
    elif "." in value:
        found = _importable("", value, "", callable, "callable")
    else:
        found = []
    return [_error(f"{name} {error.msg.lstrip()}", id, hint) for error in found]


def _applies_preferences(path: Any) -> bool:
    try:
        cls = import_string(path)
    except ImportError:
        return False  # E012 says so
    return isinstance(cls, type) and issubclass(cls, PreferencePolicy)


def _unsubscribe_links(emails_in_categories: bool) -> list[checks.CheckMessage]:
    base = conf.TRANSMISSIONS_UNSUBSCRIBE_BASE_URL
    hint = "See docs/preferences.md, section One-click unsubscribe."
    if base is None:
        if emails_in_categories:
            msg = (
                "Emails of categories are sent without List-Unsubscribe headers: "
                "TRANSMISSIONS_UNSUBSCRIBE_BASE_URL is not set."
            )
            return [checks.Warning(msg, hint=hint, id="transmissions.W071")]
        return []
    parts = urlsplit(base) if isinstance(base, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        msg = f"TRANSMISSIONS_UNSUBSCRIBE_BASE_URL must be an absolute http(s) URL, not {base!r}."
        return [_error(msg, "transmissions.E073", hint)]
    found: list[checks.CheckMessage] = []
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        msg = f"TRANSMISSIONS_UNSUBSCRIBE_BASE_URL is plain http ({base}): RFC 8058 wants an https URL."
        found.append(checks.Warning(msg, hint=hint, id="transmissions.W070"))
    try:
        reverse(URL_NAME, kwargs={"token": "x"})
    except NoReverseMatch:
        msg = f"TRANSMISSIONS_UNSUBSCRIBE_BASE_URL is set but {URL_NAME!r} cannot be reversed: no links."
        hint = 'Include transmissions.urls: path("notifications/", include("transmissions.urls")).'
        found.append(checks.Warning(msg, hint=hint, id="transmissions.W072"))
    return found


def _policies() -> list[checks.CheckMessage]:
    value = conf.TRANSMISSIONS_POLICIES
    if not isinstance(value, list | tuple) or not all(isinstance(path, str) for path in value):
        return [
            _error(
                f"TRANSMISSIONS_POLICIES must be a list of dotted paths, not {value!r}.", "transmissions.E011"
            )
        ]
    errors: list[checks.CheckMessage] = []
    for path in value:
        errors += _importable(
            "TRANSMISSIONS_POLICIES",
            path,
            "transmissions.E012",
            _is_policy,
            "a transmissions.policies.Policy subclass",
        )
    return errors


def _is_policy(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, Policy)


def _warnings() -> list[checks.CheckMessage]:
    warnings: list[checks.CheckMessage] = []
    legacy = LEGACY_SERIALIZER_SETTING
    if hasattr(settings, legacy) and hasattr(settings, "TRANSMISSIONS_SERIALIZER"):
        if getattr(settings, legacy) != getattr(settings, "TRANSMISSIONS_SERIALIZER"):  # noqa: B009
            warnings.append(
                checks.Warning(
                    f"Both {legacy} and TRANSMISSIONS_SERIALIZER are set, to different "
                    "values; TRANSMISSIONS_SERIALIZER is used.",
                    hint=f"Remove {legacy}.",
                    id="transmissions.W001",
                )
            )
    time_limit, lease = conf.TRANSMISSIONS_TIME_LIMIT, conf.TRANSMISSIONS_LEASE_SECONDS
    numbers = (int, float)
    if isinstance(time_limit, numbers) and time_limit >= 60:
        warnings.append(
            checks.Warning(
                f"TRANSMISSIONS_TIME_LIMIT is {time_limit}s: a minutely beat would start "
                "a new run before this one ends.",
                hint="Keep it well under the beat interval, e.g. 45.",
                id="transmissions.W002",
            )
        )
    if isinstance(time_limit, numbers) and isinstance(lease, numbers) and 0 < lease <= time_limit:
        warnings.append(
            checks.Warning(
                f"TRANSMISSIONS_LEASE_SECONDS ({lease}) is not longer than "
                f"TRANSMISSIONS_TIME_LIMIT ({time_limit}): a live worker's claim could expire.",
                id="transmissions.W003",
            )
        )
    return warnings


def check_unknown_statuses(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """W004: notifications whose status is none of ``Notification.Status`` (written by hand,
    by other code, by a newer version): no worker takes them and no action changes them.

    A database check (``migrate`` and ``check --database`` run those): one catalog query
    and one grouped SELECT per database.
    """
    if app_configs is not None and not any(c.name == "transmissions" for c in app_configs):
        return []
    model = notification_model()
    warnings: list[checks.CheckMessage] = []
    for alias in databases or ():
        if not router.allow_migrate_model(alias, model):
            continue
        connection = connections[alias]
        with connection.cursor() as cursor:
            if model._meta.db_table not in connection.introspection.table_names(cursor):
                continue  # not migrated yet
        found = (
            model._base_manager.using(alias)
            .exclude(status__in=Status.values)
            .values_list("status")
            .annotate(count=Count("pk"))
            .order_by("status")
        )
        counts = dict(found)
        if counts:
            listed = ", ".join(f"{status} ({count} rows)" for status, count in counts.items())
            known = ", ".join(f"{s.value} {s.name}" for s in Status)
            warnings.append(
                checks.Warning(
                    f"Database {alias!r}: notifications with a status transmissions does not know: "
                    f"{listed}. No worker takes them, and nothing changes them.",
                    hint=f"Set them to a known status ({known}), e.g. with "
                    "Notification.objects.filter(status=...).update(status=Notification.Status.CANCELLED), "
                    "or delete them.",
                    id="transmissions.W004",
                )
            )
    return warnings
