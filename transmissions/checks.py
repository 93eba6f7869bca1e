"""System checks of the core settings (transmissions.E001-E015, W001-W003), of the rows
(W004, a database check) and of delivery tracking (E050-E052).

The channels' checks are in ``channels/checks.py`` and ``channels/push_checks.py``;
``apps.py`` registers all of them. An id is never reused: ``docs/checks.md`` lists them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.db import connections, router
from django.db.models import Count
from django.utils.module_loading import import_string

from transmissions.conf import LEGACY_SERIALIZER_SETTING, conf
from transmissions.lifecycle import notification_model
from transmissions.policies import Policy
from transmissions.status import Status


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
    errors += _policies()
    errors += _tracking()
    errors += _warnings()
    return errors


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
