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


class EscalationRegistry:
    """Escalations (``escalation.Escalation``) by the trigger name of each of their steps."""

    def __init__(self) -> None:
        self._by_step: dict[str, tuple[object, int]] = {}
        self._by_name: dict[str, object] = {}

    def register(self, escalation: object, name: str, step_names: list[str]) -> None:
        """Register ``escalation`` as ``name`` with its steps' trigger names, in order; raise
        AlreadyRegistered when the name or a step belongs to another one."""
        for step_name in step_names:
            owner = self._by_step.get(step_name)
            other = None if owner is None else getattr(owner[0], "name", None)
            if owner is not None and other != name:
                raise AlreadyRegistered(
                    f"Message {step_name!r} is already a step of escalation {other!r}; "
                    "a message is a step of at most one escalation."
                )
        self.unregister(name)
        self._by_name[name] = escalation
        for index, step_name in enumerate(step_names):
            self._by_step[step_name] = (escalation, index)

    def unregister(self, name: str) -> None:
        self._by_name.pop(name, None)
        self._by_step = {k: v for k, v in self._by_step.items() if getattr(v[0], "name", None) != name}

    def of(self, trigger_name: str) -> tuple[object, int] | None:
        """Return (escalation, step index) for a step's trigger name, or None."""
        return self._by_step.get(trigger_name)

    def declared(self) -> bool:
        """Whether any escalation is declared."""
        return bool(self._by_name)

    def all(self) -> list[object]:
        return [self._by_name[name] for name in sorted(self._by_name)]


registry = MessageRegistry()
escalations = EscalationRegistry()
