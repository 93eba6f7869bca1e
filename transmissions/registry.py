"""The registry of message classes by trigger name, filled by ``@message`` (``decorators.py``).

It only stores and finds classes, so that every stage (the worker, the admin, the
checks) can look a trigger name up without importing how messages are defined.
"""

from __future__ import annotations

from collections.abc import Iterator

from transmissions.exceptions import AlreadyRegistered, UnknownTriggerException

# The longest trigger name and channel kind: they must fit Notification's columns.
TRIGGER_NAME_MAX_LENGTH = 100
CHANNEL_MAX_LENGTH = 32


class MessageRegistry:
    """Message classes by trigger name."""

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}

    def register(self, cls: type, trigger_name: str) -> None:
        """Register ``cls`` under ``trigger_name``; raise AlreadyRegistered on a clash."""
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
                f"No message is registered under trigger name {trigger_name!r}. Messages are "
                "discovered from the messages.py and notifications.py modules of installed apps "
                "(or any module imported at start-up)."
            ) from None

    def find(self, trigger_name: str) -> type | None:
        """Return the class registered under ``trigger_name``, or None."""
        return self._classes.get(trigger_name)

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
