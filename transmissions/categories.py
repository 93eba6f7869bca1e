"""Categories: what a recipient can turn on or off, per channel kind.

A message joins one with ``@message(..., category="comments")``; ``required=True``
(security, billing, legal) makes it ignore every opt-out. A category is declared once,
in the ``TRANSMISSIONS_CATEGORIES`` setting or in code with ``register_category()``,
with a label, a description and whether each channel kind is on by default ("opt-out":
sent until the user turns it off) or off ("opt-in": sent once the user turns it on).

This module only declares and looks up; ``preferences.py`` stores and applies the
users' choices.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from transmissions.conf import conf

_SLUG = re.compile(r"^[-a-zA-Z0-9_]+\Z")
CATEGORY_MAX_LENGTH = 64


@dataclass(frozen=True)
class Category:
    """A category of messages: ``name`` (a slug), what the preferences page shows, and the defaults.

    ``channels`` maps a channel kind ("email", "sms", "push", "inapp", or a project's
    own) to its default: True, on until the user turns it off; False, off until the user
    turns it on. A channel kind not listed gets ``default``.
    """

    name: str
    label: str = ""
    description: str = ""
    channels: Mapping[str, bool] = field(default_factory=dict)
    default: bool = True

    def default_for(self, channel: str) -> bool:
        """Return whether ``channel`` is on for a user who never chose."""
        return bool(self.channels.get(channel, self.default))

    @property
    def title(self) -> str:
        return self.label or self.name


class CategoryError(ValueError):
    """A category declaration that cannot be used (the system check quotes it)."""


# Declared in code with register_category(), by name.
_declared: dict[str, Category] = {}


def register_category(
    name: str,
    label: str = "",
    description: str = "",
    channels: Mapping[str, bool] | None = None,
    default: bool = True,
) -> Category:
    """Declare the category ``name`` in code (an app's ``messages.py``, say); return it.

    Declaring the same name again replaces it. A category of the setting wins over one
    declared in code.
    """
    category = build(
        name, {"label": label, "description": description, "channels": channels or {}, "default": default}
    )
    _declared[name] = category
    return category


def unregister_category(name: str) -> None:
    _declared.pop(name, None)


def build(name: Any, spec: Any) -> Category:
    """Return the Category ``spec`` (a dict of the setting) declares; raise CategoryError if invalid."""
    if not isinstance(name, str) or not _SLUG.match(name) or len(name) > CATEGORY_MAX_LENGTH:
        raise CategoryError(
            f"category name {name!r} must be a slug of at most {CATEGORY_MAX_LENGTH} characters"
        )
    if not isinstance(spec, Mapping):
        raise CategoryError(f"category {name!r} must be a dict, not {spec!r}")
    unknown = set(spec) - {"label", "description", "channels", "default"}
    if unknown:
        raise CategoryError(f"category {name!r} has unknown keys {sorted(unknown)}")
    channels = spec.get("channels", {})
    if not isinstance(channels, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, bool) for k, v in channels.items()
    ):
        raise CategoryError(f"category {name!r}: 'channels' must map channel kinds to True or False")
    default = spec.get("default", True)
    if not isinstance(default, bool):
        raise CategoryError(f"category {name!r}: 'default' must be True or False, not {default!r}")
    label, description = spec.get("label", ""), spec.get("description", "")
    if not isinstance(label, str) or not isinstance(description, str):
        # A lazy translation is a Promise, not a str: accept it by its text.
        label, description = str(label), str(description)
    return Category(name, label, description, dict(channels), default)


def categories() -> dict[str, Category]:
    """Return every declared category by name: the code's, then the setting's (which win).

    Raise CategoryError when the setting is malformed (system check transmissions.E070).
    """
    found = dict(_declared)
    setting = conf.TRANSMISSIONS_CATEGORIES
    if not isinstance(setting, Mapping):
        raise CategoryError(f"TRANSMISSIONS_CATEGORIES must be a dict, not {setting!r}")
    for name, spec in setting.items():
        found[name] = build(name, spec)
    return found


def get(name: str) -> Category | None:
    """Return the category ``name``, or None when it is not declared."""
    return categories().get(name)


def of(message_cls: type | None) -> str | None:
    """Return the category a message class is subject to, or None: none, or ``required``."""
    if message_cls is None or getattr(message_cls, "required", False):
        return None
    category = getattr(message_cls, "category", None)
    return category or None


__all__ = ["Category", "CategoryError", "categories", "get", "of", "register_category"]
