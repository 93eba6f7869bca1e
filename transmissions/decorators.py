"""``@message``: define a message by registering a channel class under a trigger name.

Like the admin's ``register``: the class is validated, a clash is refused loudly, and
the class itself is returned, with ``trigger()``/``trigger_many()`` when it does not
derive from a channel (which already has them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from transmissions.behaviors import TriggerBehavior
from transmissions.categories import CATEGORY_MAX_LENGTH
from transmissions.digests import Digest
from transmissions.exceptions import MessageRegistrationError
from transmissions.registry import CHANNEL_MAX_LENGTH, TRIGGER_NAME_MAX_LENGTH, registry
from transmissions.throttle import Throttle
from transmissions.trigger import Triggerable

T = TypeVar("T", bound=type)

_SLUG = re.compile(r"^[-a-zA-Z0-9_]+\Z")


def message(
    trigger_name: str, behavior: TriggerBehavior | str | None = None, **attrs: Any
) -> Callable[[T], T]:
    """Register the decorated channel class as the message ``trigger_name``.

    Sets ``cls.trigger_name`` and ``cls.behavior`` (a ``TriggerBehavior``, its value, or
    the integer transmissions 0.2 used), copies ``attrs`` (``subject=``...) onto the
    class and keeps them as the dict ``cls.kwargs`` (0.2's name), and returns the class
    itself, which gains ``trigger()``.
    ``category="comments"`` puts the message in a category its recipients may turn off
    (``preferences.py``); ``required=True`` makes it ignore their choices; ``urgent=True``
    sends it inside quiet hours too (``quiet_hours.py``). ``throttle=(3, timedelta(hours=1))``
    (or a ``throttle.Throttle``) caps how many each user gets per period (``throttle.py``).
    ``digest=timedelta(hours=1)`` (with ``digest_key=`` and ``digest_lookback=``, or a
    ``digests.Digest``) collects each user's triggers for a window into one send (``digests.py``).
    """
    if not isinstance(trigger_name, str) or not _SLUG.match(trigger_name):
        raise MessageRegistrationError(
            f"Trigger name {trigger_name!r} must be a slug (letters, digits, '-' and '_')."
        )
    if len(trigger_name) > TRIGGER_NAME_MAX_LENGTH:
        raise MessageRegistrationError(
            f"Trigger name {trigger_name!r} is longer than {TRIGGER_NAME_MAX_LENGTH} characters."
        )
    resolved = TriggerBehavior.coerce(behavior)

    def decorator(cls: T) -> T:
        if not isinstance(cls, type):
            raise MessageRegistrationError(f"@message({trigger_name!r}) decorates classes, not {cls!r}.")
        if not callable(getattr(cls, "send", None)):
            raise MessageRegistrationError(
                f"{cls.__qualname__} has no send() method; derive it from a channel "
                "such as transmissions.channels.email.DefaultEmailMessage."
            )
        channel = attrs.get("channel", getattr(cls, "channel", ""))
        if not isinstance(channel, str) or len(channel) > CHANNEL_MAX_LENGTH:
            raise MessageRegistrationError(
                f"{cls.__qualname__}.channel must be a string of at most {CHANNEL_MAX_LENGTH} "
                f"characters, not {channel!r}."
            )
        category = attrs.get("category", getattr(cls, "category", None))
        if category is not None and not (
            isinstance(category, str) and _SLUG.match(category) and len(category) <= CATEGORY_MAX_LENGTH
        ):
            raise MessageRegistrationError(
                f"{cls.__qualname__}.category must be None or a slug of at most "
                f"{CATEGORY_MAX_LENGTH} characters, not {category!r}."
            )
        for flag in ("required", "urgent"):
            if not isinstance(attrs.get(flag, getattr(cls, flag, False)), bool):
                raise MessageRegistrationError(f"{cls.__qualname__}.{flag} must be True or False.")
        limit = Throttle.coerce(attrs.get("throttle", getattr(cls, "throttle", None)), cls.__qualname__)
        if limit is not None and resolved in (
            TriggerBehavior.LAST_ONLY,
            TriggerBehavior.DELETE_AFTER_PROCESSING,
        ):
            raise MessageRegistrationError(
                f"{cls.__qualname__}: throttle does not combine with {resolved.name} (a replaced or "
                "deleted row would give its throttle slot up early)."
            )
        digest = Digest.coerce(
            attrs.get("digest", getattr(cls, "digest", None)),
            attrs.get("digest_key", getattr(cls, "digest_key", None)),
            attrs.get("digest_lookback", getattr(cls, "digest_lookback", False)),
            cls.__qualname__,
        )
        if digest is not None and limit is not None:
            raise MessageRegistrationError(
                f"{cls.__qualname__}: a digest does not combine with a throttle (it already sends "
                "one message per window)."
            )
        if digest is not None and resolved is not TriggerBehavior.DEFAULT:
            raise MessageRegistrationError(
                f"{cls.__qualname__}: a digest does not combine with {resolved.name} (its open digest "
                "holds the key the behaviour would)."
            )
        registry.register(cls, trigger_name)
        cls.trigger_name = trigger_name  # type: ignore[attr-defined]
        cls.behavior = resolved  # type: ignore[attr-defined]
        cls.message_attrs = dict(attrs)  # type: ignore[attr-defined]
        cls.kwargs = dict(attrs)  # type: ignore[attr-defined]
        for name, value in attrs.items():
            setattr(cls, name, value)
        cls.throttle = limit  # type: ignore[attr-defined]
        cls.digest = digest  # type: ignore[attr-defined]
        if not hasattr(cls, "trigger"):
            cls.trigger = Triggerable.__dict__["trigger"]  # type: ignore[attr-defined]
        if not hasattr(cls, "trigger_many"):
            cls.trigger_many = Triggerable.__dict__["trigger_many"]  # type: ignore[attr-defined]
        return cls

    return decorator
