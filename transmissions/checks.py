"""System checks for every setting. Ids are never reused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from transmissions import legacy as legacy_checks  # noqa: F401 - registers W101 (0.2 rows without keys)
from transmissions.channels import checks as channel_checks  # noqa: F401 - registers its checks
from transmissions.conf import LEGACY_SERIALIZER_SETTING, conf


def _error(msg: str, id: str, hint: str | None = None) -> checks.Error:
    return checks.Error(msg, hint=hint, id=id)


def _positive_number(name: str, id: str, integer: bool = True) -> list[checks.CheckMessage]:
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


@checks.register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    name, value = conf.serializer_setting()
    errors = _importable(
        name, value, "transmissions.E001", _is_serializer, "a class with dumps() and loads()"
    )
    errors += _positive_number("TRANSMISSIONS_BATCH_SIZE", "transmissions.E002")
    errors += _positive_number("TRANSMISSIONS_TIME_LIMIT", "transmissions.E003", integer=False)
    errors += _positive_number("TRANSMISSIONS_LEASE_SECONDS", "transmissions.E004", integer=False)
    policy = conf.TRANSMISSIONS_EXPIRED_LEASE_POLICY
    if policy not in ("broken", "retry"):
        errors.append(
            _error(
                f"TRANSMISSIONS_EXPIRED_LEASE_POLICY must be 'broken' or 'retry', not {policy!r}.",
                "transmissions.E005",
            )
        )
    errors += _positive_number("TRANSMISSIONS_MAX_ATTEMPTS", "transmissions.E006")
    errors += _positive_number("TRANSMISSIONS_RETRY_DELAY", "transmissions.E007", integer=False)
    errors += _positive_number("TRANSMISSIONS_RETRY_MAX_DELAY", "transmissions.E008", integer=False)
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
    errors += _warnings()
    return errors


@checks.register()
def check_push(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    # Its own module: it looks at django-push-notifications, an optional extra.
    from transmissions.channels.push_checks import check_push_settings

    return check_push_settings()


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
