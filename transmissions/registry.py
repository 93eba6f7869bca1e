"""The ``@message`` decorator and the registry of message classes by trigger name."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from transmissions.behaviors import TriggerBehavior
from transmissions.exceptions import (
    AlreadyRegistered,
    MessageRegistrationError,
    UnknownTriggerException,
)

T = TypeVar("T", bound=type)

# Must fit Notification.trigger_name (a SlugField of this length).
TRIGGER_NAME_MAX_LENGTH = 100
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+\Z")


class MessageRegistry:
    """Message classes by trigger name, filled by ``@message`` at import time."""

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}

    def register(self, cls: type, trigger_name: str) -> None:
        existing = self._classes.get(trigger_name)
        if existing is not None and not _same_class(existing, cls):
            raise AlreadyRegistered(
                f"Trigger name {trigger_name!r} is already used by "
                f"{existing.__module__}.{existing.__qualname__}; "
                f"{cls.__module__}.{cls.__qualname__} needs another one."
            )
        self._classes[trigger_name] = cls

    def unregister(self, trigger_name: str) -> None:
        self._classes.pop(trigger_name, None)

    def get(self, trigger_name: str) -> type:
        """Return the class registered under ``trigger_name`` or raise UnknownTriggerException."""
        try:
            return self._classes[trigger_name]
        except KeyError:
            raise UnknownTriggerException(
                f"No message is registered under trigger name {trigger_name!r}."
            ) from None

    def __contains__(self, trigger_name: object) -> bool:
        return trigger_name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._classes))

    def items(self) -> list[tuple[str, type]]:
        return sorted(self._classes.items())


def _same_class(a: type, b: type) -> bool:
    # A module imported twice (autoreload, a test re-import) defines the class again.
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


registry = MessageRegistry()


def message(
    trigger_name: str, behavior: TriggerBehavior | str | None = None, **attrs: Any
) -> Callable[[T], T]:
    """Register the decorated channel class as the message ``trigger_name``.

    Sets ``cls.trigger_name`` and ``cls.behavior``, copies ``attrs`` (``subject=``...)
    onto the class, and returns the class itself, which gains ``trigger()``.
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
        registry.register(cls, trigger_name)
        cls.trigger_name = trigger_name  # type: ignore[attr-defined]
        cls.behavior = resolved  # type: ignore[attr-defined]
        cls.message_attrs = dict(attrs)  # type: ignore[attr-defined]
        for name, value in attrs.items():
            setattr(cls, name, value)
        if not hasattr(cls, "trigger"):
            # Classes that do not derive from BaseChannel get the same entry points.
            from transmissions.channels.base import BaseChannel

            cls.trigger = classmethod(BaseChannel.trigger.__func__)  # type: ignore[attr-defined]
        if not hasattr(cls, "trigger_many"):
            from transmissions.channels.base import BaseChannel

            cls.trigger_many = classmethod(BaseChannel.trigger_many.__func__)  # type: ignore[attr-defined]
        return cls

    return decorator
