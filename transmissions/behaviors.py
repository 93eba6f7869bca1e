"""The seven trigger behaviours and the deduplication key each one claims."""

from __future__ import annotations

import enum
import hashlib
from typing import Any

from django.core.exceptions import ImproperlyConfigured

# The longest key stored as-is; longer ones are hashed (see ``dedup_key``).
MAX_KEY_LENGTH = 255


class TriggerBehavior(enum.StrEnum):
    """How a message reacts when it is triggered again for the same user.

    The behaviours that refuse or replace a trigger do so through a unique
    ``Notification.dedup_key``, so the rule is enforced by the database and holds
    when many processes trigger at once.
    """

    DEFAULT = "default"
    DELETE_AFTER_PROCESSING = "delete_after_processing"
    TRIGGER_ONCE = "trigger_once"
    TRIGGER_ONCE_PER_CONTENT = "trigger_once_per_content"
    SEND_ONCE = "send_once"
    SEND_ONCE_PER_CONTENT = "send_once_per_content"
    LAST_ONLY = "last_only"

    @classmethod
    def coerce(cls, value: Any) -> TriggerBehavior:
        """Return the behaviour for ``value``: a member, its value, None for DEFAULT, or the
        integer transmissions 0.2 gave it (``LEGACY_VALUES``)."""
        if value is None:
            return cls.DEFAULT
        if isinstance(value, int) and not isinstance(value, bool) and value in LEGACY_VALUES:
            return LEGACY_VALUES[value]
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(f"TriggerBehavior.{m.name}" for m in cls)
            integers = ", ".join(str(i) for i in LEGACY_VALUES)
            raise ImproperlyConfigured(
                f"Unknown trigger behavior {value!r}; use one of {choices} (or 0.2's integers {integers})."
            ) from None

    @property
    def legacy_value(self) -> int:
        """The integer transmissions 0.2 stored for this behaviour."""
        return next(number for number, member in LEGACY_VALUES.items() if member is self)

    @property
    def per_content(self) -> bool:
        return self in (TriggerBehavior.TRIGGER_ONCE_PER_CONTENT, TriggerBehavior.SEND_ONCE_PER_CONTENT)

    @property
    def keeps_key_when_sent(self) -> bool:
        """A sent row keeps blocking new triggers (the SEND_ONCE family)."""
        return self in (TriggerBehavior.SEND_ONCE, TriggerBehavior.SEND_ONCE_PER_CONTENT)

    @property
    def key_prefix(self) -> str | None:
        return _PREFIXES.get(self)

    def dedup_key(
        self, trigger_name: str, user_pk: Any, content_key: tuple[int, str] | None = None
    ) -> str | None:
        """Return the unique key a pending row of this behaviour holds, or None.

        The prefix keeps behaviours apart, so changing a message's behaviour never
        makes old rows block new ones of another kind.
        """
        prefix = self.key_prefix
        if prefix is None:
            return None
        parts = [prefix, trigger_name, str(user_pk)]
        if self.per_content:
            assert content_key is not None
            parts += [str(content_key[0]), content_key[1]]
        key = ":".join(parts)
        if len(key) > MAX_KEY_LENGTH:
            key = f"{prefix}:#" + hashlib.sha256(key.encode()).hexdigest()
        return key


# transmissions 0.2's TriggerBehavior was an integer enum; ``@message`` accepts its values.
LEGACY_VALUES = {
    0: TriggerBehavior.DELETE_AFTER_PROCESSING,
    10: TriggerBehavior.DEFAULT,
    20: TriggerBehavior.TRIGGER_ONCE,
    25: TriggerBehavior.TRIGGER_ONCE_PER_CONTENT,
    30: TriggerBehavior.SEND_ONCE,
    35: TriggerBehavior.SEND_ONCE_PER_CONTENT,
    40: TriggerBehavior.LAST_ONLY,
}

_PREFIXES = {
    TriggerBehavior.TRIGGER_ONCE: "t",
    TriggerBehavior.TRIGGER_ONCE_PER_CONTENT: "t",
    TriggerBehavior.SEND_ONCE: "s",
    TriggerBehavior.SEND_ONCE_PER_CONTENT: "s",
    TriggerBehavior.LAST_ONLY: "l",
}

# Keys with this prefix (the SEND_ONCE family's) still block once their row is processed;
# the others stop blocking when ``datetime_processed`` is set (``Notification.active_key``).
KEPT_WHEN_PROCESSED_PREFIX = "s:"

# Keys with this prefix are released when a worker claims the row: a row being sent
# can no longer be cancelled, so it must not stop LAST_ONLY from queueing a newer one.
RELEASED_ON_CLAIM_PREFIX = "l:"
