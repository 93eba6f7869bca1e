"""The recipients' choices: which categories of messages they get, on which channel kinds.

A choice is ``(user, category, channel kind) -> on/off``; where a user never chose, the
category's default for the channel applies (``categories.py``). Choices are read and
written through a ``PreferenceSource``: ``ModelPreferenceSource`` (the ``Preference``
model) by default, or a project's own (``TRANSMISSIONS_PREFERENCE_SOURCE``), say one
that reads its profile model.

``PreferencePolicy`` (in ``TRANSMISSIONS_POLICIES`` by default) applies them when a
notification is processed, not when it is triggered: a change in between is honoured.
A notification its user opted out of ends CANCELLED, with the reason
``"opted-out: ..."`` (``Notification.objects.held("opted-out")`` finds them). A batch's
choices cost one query, none when no notification of the batch has a category.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from transmissions import categories
from transmissions.categories import Category
from transmissions.conf import conf
from transmissions.exceptions import TransmissionsError
from transmissions.policies import Hold, Policy
from transmissions.registry import registry

# A user's choice, keyed as the sources return them: (user pk, category, channel kind).
Key = tuple[Any, str, str]

# The order channel kinds are shown in; a project's own kinds come after, by name.
CHANNEL_ORDER = ("email", "sms", "push", "inapp")
# What the preferences page calls them; a project's own kind is shown by its name.
CHANNEL_LABELS = {"email": _("Email"), "sms": _("SMS"), "push": _("Push"), "inapp": _("In the app")}
# What it calls the default digest frequencies; a project's own is shown by its name.
FREQUENCY_LABELS = {
    "instant": _("Instantly"),
    "hourly": _("Hourly"),
    "daily": _("Daily"),
    "weekly": _("Weekly"),
}


class InvalidPreference(TransmissionsError, ValueError):
    """A preference for a category or a channel kind that does not exist; nothing was written."""


class PreferenceSource:
    """Where the users' choices are kept. Subclass it to keep them elsewhere, and name your
    class in ``TRANSMISSIONS_PREFERENCE_SOURCE``."""

    def load(
        self, user_ids: Collection[Any], names: Collection[str], channels: Collection[str]
    ) -> dict[Key, bool]:
        """Return the choices the users ``user_ids`` made about the categories ``names`` on the
        channel kinds ``channels``, keyed ``(user pk, category, channel)``; leave out those
        never made. Must cost a constant number of queries, whatever the number of users.
        Must be implemented by a subclass."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement load().")

    def save(self, user: Any, category: str, channel: str, enabled: bool) -> None:
        """Store ``user``'s choice. Must be implemented by a subclass."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement save().")

    def load_frequency(self, user_id: Any, category: str, channel: str) -> str | None:
        """Return the digest frequency (a name of ``TRANSMISSIONS_DIGEST_FREQUENCIES``) the user
        chose for ``category`` on ``channel``, or None. Here: the ``DigestFrequency`` model;
        override it (and ``save_frequency()``) to keep the choice elsewhere."""
        model = apps.get_model("transmissions", "DigestFrequency")
        found: str | None = (
            model._default_manager.filter(user_id=user_id, category=category, channel=channel)
            .values_list("frequency", flat=True)
            .first()
        )
        return found

    def load_frequencies(
        self, user_id: Any, cells: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """Return the digest frequencies the user chose for the ``(category, channel)`` pairs
        ``cells``, keyed by pair; leave out those never chosen. Here one query on the
        ``DigestFrequency`` model, or ``load_frequency()`` per pair where a subclass overrides
        it (and not this)."""
        if type(self).load_frequency is not PreferenceSource.load_frequency:
            found = {cell: self.load_frequency(user_id, *cell) for cell in cells}
            return {cell: frequency for cell, frequency in found.items() if frequency is not None}
        if not cells:
            return {}
        wanted = set(cells)
        rows = (
            apps.get_model("transmissions", "DigestFrequency")
            ._default_manager.filter(
                user_id=user_id,
                category__in={category for category, _ in wanted},
                channel__in={channel for _, channel in wanted},
            )
            .values_list("category", "channel", "frequency")
        )
        return {(c, ch): f for c, ch, f in rows if (c, ch) in wanted}

    def save_frequency(self, user: Any, category: str, channel: str, frequency: str | None) -> None:
        """Store ``user``'s digest frequency (None: back to the message's own window)."""
        manager = apps.get_model("transmissions", "DigestFrequency")._default_manager
        mine = {"user_id": user.pk, "category": category, "channel": channel}
        if frequency is None:
            manager.filter(**mine).delete()
        else:
            manager.update_or_create(
                **mine, defaults={"frequency": frequency, "datetime_updated": timezone.now()}
            )


class ModelPreferenceSource(PreferenceSource):
    """The ``Preference`` model: one row per user, category and channel kind the user chose."""

    def model(self) -> Any:
        return apps.get_model("transmissions", "Preference")

    def load(
        self, user_ids: Collection[Any], names: Collection[str], channels: Collection[str]
    ) -> dict[Key, bool]:
        rows = (
            self.model()
            ._default_manager.filter(user_id__in=user_ids, category__in=names, channel__in=channels)
            .values_list("user_id", "category", "channel", "enabled")
        )
        return {(user_id, category, channel): enabled for user_id, category, channel, enabled in rows}

    def save(self, user: Any, category: str, channel: str, enabled: bool) -> None:
        # update_or_create() locks the row and, when two requests create it at once,
        # takes the other's row instead of failing on the unique constraint.
        self.model()._default_manager.update_or_create(
            user_id=user.pk,
            category=category,
            channel=channel,
            defaults={"enabled": enabled, "datetime_updated": timezone.now()},
        )


@functools.cache
def _source_class(path: str) -> type[PreferenceSource]:
    cls = import_string(path)
    if not (isinstance(cls, type) and issubclass(cls, PreferenceSource)):
        raise ImproperlyConfigured(
            f"TRANSMISSIONS_PREFERENCE_SOURCE: {path!r} is not a PreferenceSource subclass."
        )
    return cls


def source() -> PreferenceSource:
    """Return the preference source ``TRANSMISSIONS_PREFERENCE_SOURCE`` names."""
    return _source_class(conf.TRANSMISSIONS_PREFERENCE_SOURCE)()


def channel_key(channel: str) -> tuple[int, str]:
    """Sort key of channel kinds: email, SMS, push, in-app, then the others by name."""
    return (CHANNEL_ORDER.index(channel) if channel in CHANNEL_ORDER else len(CHANNEL_ORDER), channel)


def digest_windows_of(category: Category) -> dict[str, tuple[datetime.timedelta, ...]]:
    """Return the windows of the digested messages registered in ``category``, by channel
    kind (the kinds without one left out): where the recipient may choose a frequency."""
    found: dict[str, set[datetime.timedelta]] = {}
    for _name, message_cls in registry.items():
        digest = getattr(message_cls, "digest", None)
        kind = getattr(message_cls, "channel", "")
        if digest is not None and kind and categories.of(message_cls) == category.name:
            found.setdefault(kind, set()).add(digest.window)
    return {kind: tuple(sorted(windows)) for kind, windows in found.items()}


def frequency_label(name: str) -> str:
    """A digest frequency as the preferences page shows it ("Hourly"...)."""
    return str(FREQUENCY_LABELS.get(name, name))


def channels_of(category: Category) -> list[str]:
    """Return the channel kinds a user may choose for ``category``: those it declares a default
    for and those of the registered messages in it (but the required ones), in order."""
    kinds = set(category.channels)
    for _name, message_cls in registry.items():
        if categories.of(message_cls) == category.name:
            kind = getattr(message_cls, "channel", "")
            if kind:
                kinds.add(kind)
    return sorted(kinds, key=channel_key)


@dataclass(frozen=True)
class Cell:
    """One channel kind of a category, for one user: on or off, and whether the user chose.

    Where the category has a digested message on the channel kind, ``digest_windows`` holds
    their windows and ``frequency`` the digest frequency the user chose (None: the message's
    own window); ``frequency_choices`` lists what the user may choose.
    """

    category: str
    channel: str
    enabled: bool
    default: bool
    chosen: bool
    digest_windows: tuple[datetime.timedelta, ...] = ()
    frequency: str | None = None

    @property
    def digested(self) -> bool:
        """Whether the user may choose a digest frequency here."""
        return bool(self.digest_windows)

    @property
    def label(self) -> str:
        """The channel kind as the preferences page shows it ("Email", "SMS"...)."""
        return str(CHANNEL_LABELS.get(self.channel, self.channel))

    @property
    def field_name(self) -> str:
        """The name of the preferences form's checkbox for this cell."""
        return f"{self.category}:{self.channel}"

    @property
    def frequency_field_name(self) -> str:
        """The name of the preferences form's digest frequency choice for this cell."""
        return f"{self.field_name}:frequency"

    @property
    def frequency_choices(self) -> list[tuple[str, str]]:
        """``(value, label)`` of the frequency choice: ``""`` for the message's own window
        (labelled with it where it is one of the named frequencies), then each name of
        ``TRANSMISSIONS_DIGEST_FREQUENCIES``. Empty where nothing is digested."""
        if not self.digested:
            return []
        offered = digest_frequencies()
        default = str(_("Default"))
        if len(self.digest_windows) == 1:
            named = [name for name, window in offered.items() if window == self.digest_windows[0]]
            if named:
                default = str(_("Default (%(frequency)s)")) % {"frequency": frequency_label(named[0])}
        return [("", default), *((name, frequency_label(name)) for name in offered)]


@dataclass(frozen=True)
class Row:
    """One category of the matrix: its declaration and a cell per channel kind."""

    category: Category
    cells: list[Cell]


def matrix(user: Any) -> list[Row]:
    """Return ``user``'s category x channel matrix, categories by name, with the digest
    frequencies where a category has digested messages: one query, two with digests.

    For projects that build their own page; ``views.PreferencesView`` renders it.
    """
    declared = sorted(categories.categories().values(), key=lambda c: c.name)
    kinds = {category.name: channels_of(category) for category in declared}
    all_kinds = {kind for found in kinds.values() for kind in found}
    found = source()
    chosen = found.load([user.pk], list(kinds), all_kinds) if all_kinds else {}
    windows = {category.name: digest_windows_of(category) for category in declared}
    digested = [(name, kind) for name, by_kind in windows.items() for kind in by_kind]
    frequencies = found.load_frequencies(user.pk, digested) if digested else {}
    offered = digest_frequencies()
    rows = []
    for category in declared:
        cells = []
        for kind in kinds[category.name]:
            default = category.default_for(kind)
            choice = chosen.get((user.pk, category.name, kind))
            frequency = frequencies.get((category.name, kind))
            cells.append(
                Cell(
                    category.name,
                    kind,
                    default if choice is None else choice,
                    default,
                    choice is not None,
                    windows[category.name].get(kind, ()),
                    frequency if frequency in offered else None,  # one no longer offered: the default
                )
            )
        rows.append(Row(category, cells))
    return rows


def set_preference(user: Any, category: str, channel: str, enabled: bool) -> None:
    """Store ``user``'s choice to get ``category`` on ``channel`` or not.

    Raise InvalidPreference, writing nothing, for a category that is not declared or a
    channel kind it has no messages or default for.
    """
    found = categories.get(category)
    if found is None:
        raise InvalidPreference(f"No category {category!r} is declared.")
    if channel not in channels_of(found):
        raise InvalidPreference(f"Category {category!r} has no channel {channel!r}.")
    if not isinstance(enabled, bool):
        raise InvalidPreference(f"enabled must be True or False, not {enabled!r}.")
    source().save(user, category, channel, enabled)


def digest_frequencies() -> dict[str, datetime.timedelta]:
    """``TRANSMISSIONS_DIGEST_FREQUENCIES`` as timedeltas, by name (check E082 validates it)."""
    return {
        name: value if isinstance(value, datetime.timedelta) else datetime.timedelta(seconds=value)
        for name, value in conf.TRANSMISSIONS_DIGEST_FREQUENCIES.items()
    }


def set_frequency(user: Any, category: str, channel: str, frequency: str | None) -> None:
    """Store how often ``user`` gets the digests of ``category`` on ``channel``: a name of
    ``TRANSMISSIONS_DIGEST_FREQUENCIES`` ("instant", "hourly", "daily", "weekly"), or None
    for the message's own window. It applies to the next digest opened.

    Raise InvalidPreference, writing nothing, for a category that is not declared, a channel
    kind it has no messages or default for, or an unknown frequency.
    """
    found = categories.get(category)
    if found is None:
        raise InvalidPreference(f"No category {category!r} is declared.")
    if channel not in channels_of(found):
        raise InvalidPreference(f"Category {category!r} has no channel {channel!r}.")
    if frequency is not None and frequency not in digest_frequencies():
        choices = ", ".join(digest_frequencies())
        raise InvalidPreference(f"frequency must be one of {choices} or None, not {frequency!r}.")
    source().save_frequency(user, category, channel, frequency)


def digest_window(user_id: Any, category: str, channel: str) -> datetime.timedelta | None:
    """The window of the user's chosen digest frequency for ``category`` on ``channel``; None
    when the user chose none (or a name no longer in ``TRANSMISSIONS_DIGEST_FREQUENCIES``)."""
    chosen = source().load_frequency(user_id, category, channel)
    return None if chosen is None else digest_frequencies().get(chosen)


class PreferencePolicy(Policy):
    """Cancel a notification of a category its user turned off (or never turned on, if opt-in)
    on its channel kind.

    A message without a category, or ``required``, is never held. One query per batch
    (the source's ``load()``), none when no notification of the batch has a category.
    """

    def prepare(self, batch: list[Any]) -> None:
        self.keys: dict[int, Key] = {}
        # By trigger name: its message class and category, looked up once per name.
        found: dict[str, tuple[Any, str | None]] = {}
        for notification in batch:
            entry = found.get(notification.trigger_name)
            if entry is None:
                cls = registry.find(notification.trigger_name)
                entry = found[notification.trigger_name] = (cls, categories.of(cls))
            message_cls, name = entry
            if name is not None:
                kind = notification.channel or getattr(message_cls, "channel", "")
                self.keys[notification.pk] = (notification.target_user_id, name, kind)
        self.chosen: dict[Key, bool] = {}
        self.declared: dict[str, Category] = {}
        if self.keys:
            self.declared = categories.categories()
            self.chosen = source().load(
                {key[0] for key in self.keys.values()},
                {key[1] for key in self.keys.values()},
                {key[2] for key in self.keys.values()},
            )

    def lets_all_through(self) -> bool:
        # No notification of the batch has a category (unless a subclass decides in check()).
        return not self.keys and type(self).check is PreferencePolicy.check

    def check(self, notification: Any, message_cls: type | None) -> Hold | None:
        key = self.keys.get(notification.pk)
        if key is None:
            return None
        _, name, kind = key  # the row shows its user: the reason names the choice only
        choice = self.chosen.get(key)
        if choice is not None:
            if choice:
                return None
            return Hold(f"{name} turned off on {kind or 'this channel'}", code="opted-out")
        category = self.declared.get(name)
        if category is None or category.default_for(kind):
            return None  # an undeclared category (system check E071) has no opt-out yet
        return Hold(f"{name} is opt-in on {kind} and not turned on", code="opted-out")


__all__ = [
    "Cell",
    "InvalidPreference",
    "ModelPreferenceSource",
    "PreferencePolicy",
    "PreferenceSource",
    "Row",
    "digest_frequencies",
    "digest_window",
    "digest_windows_of",
    "frequency_label",
    "matrix",
    "set_frequency",
    "set_preference",
    "source",
]
