"""Send rates: at most ``N`` transmits per second, minute, hour or day on a channel kind,
whatever the number of workers and machines, held by the database.

``TRANSMISSIONS_SEND_RATES = {"email": "14/s", "sms": "1/s"}`` names a rate per key: a
channel kind, or the ``send_rate_key`` a message class sets (two providers of one kind
with limits of their own). A rate ``N/period`` has ``N`` slots, rows of ``SendSlot``, each
with the time it may be taken again (``free_at``). Before each transmit of a rate-limited
notification the worker takes the free slot with the earliest time: one conditional
UPDATE, which only one worker wins (``free_at`` still what it read). While the transmit
runs, the slot is held until its batch's lease plus a period; once the transmit returned,
the slot is free again a period later. So two transmits through one slot are at least a
period apart (the second starts after the first returned, plus a period), and any period
holds at most ``N`` transmits: ``N + 1`` of them would put two in one slot.

No slot free: the worker waits for the earliest one, but not past half its batch's lease
(``worker.send_cutoff()``) nor past the end of its run's time limit. A row it cannot send
by then is put back in the queue, due when the slot frees, with the reason
``rate-limited: ...`` (``Notification.objects.held("rate-limited")``), and logged.

Without a rate for a notification's key nothing here runs a query; with
``TRANSMISSIONS_SEND_RATES`` empty (the default) nothing here runs at all.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from transmissions.conf import conf
from transmissions.lifecycle import reconnecting
from transmissions.registry import CHANNEL_MAX_LENGTH, registry
from transmissions.status import clip_reason

logger = logging.getLogger("transmissions")

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"\s*([0-9]+)\s*/\s*([smhd])\s*")
# The most slots a rate may have (one row each, made on first use).
MAX_COUNT = 10_000
# The reason code of a row the rate held back (``Notification.objects.held(CODE)``).
CODE = "rate-limited"
# While every slot is in use (transmits in flight), how often a waiting worker looks again.
POLL_SECONDS = 0.02
# The longest single sleep of a waiting worker: it looks again at least this often.
MAX_SLEEP_SECONDS = 1.0
# Check ids (docs/checks.md): a malformed setting, a rate of too many slots.
MALFORMED, TOO_MANY = "transmissions.E087", "transmissions.E088"
# A new slot is free at once.
EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


class TooMany(ValueError):
    """A rate with more slots than ``MAX_COUNT``."""


@dataclass(frozen=True)
class Rate:
    """At most ``count`` transmits in any ``seconds``."""

    count: int
    seconds: int

    @property
    def period(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        unit = next(name for name, seconds in UNITS.items() if seconds == self.seconds)
        return f"{self.count}/{unit}"


def parse(value: Any) -> Rate:
    """Return the Rate of ``"N/s"``, ``"N/m"``, ``"N/h"`` or ``"N/d"``; raise ValueError
    otherwise (N a positive integer, at most ``MAX_COUNT``)."""
    found = _RATE.fullmatch(value) if isinstance(value, str) else None
    if found is None or int(found[1]) < 1:
        raise ValueError(
            f"a send rate is 'N/s', 'N/m', 'N/h' or 'N/d' with N a positive integer, not {value!r}"
        )
    count = int(found[1])
    if count > MAX_COUNT:
        raise TooMany(f"{value!r} allows more than {MAX_COUNT} sends per period: give it as a shorter period")
    return Rate(count, UNITS[found[2]])


def problems(value: Any) -> list[tuple[str, str]]:
    """``(check id, message)`` for each fault of ``TRANSMISSIONS_SEND_RATES = value``."""
    name = "TRANSMISSIONS_SEND_RATES"
    if not isinstance(value, dict):
        return [(MALFORMED, f'{name} must be a dict such as {{"email": "14/s"}}, not {value!r}.')]
    found = []
    for key, text in value.items():
        if not isinstance(key, str) or not key or len(key) > CHANNEL_MAX_LENGTH:
            found.append(
                (
                    MALFORMED,
                    f"{name}: {key!r} is not a channel kind or send_rate_key (a non-empty string "
                    f"of at most {CHANNEL_MAX_LENGTH} characters).",
                )
            )
            continue
        try:
            parse(text)
        except ValueError as exc:
            id = TOO_MANY if isinstance(exc, TooMany) else MALFORMED
            found.append((id, f"{name}[{key!r}]: {exc}."))
    return found


@functools.lru_cache(maxsize=8)
def _parsed(items: tuple[tuple[Any, Any], ...]) -> dict[str, Rate]:
    faults = problems(dict(items))
    if faults:
        raise ImproperlyConfigured(faults[0][1])
    return {key: parse(text) for key, text in items}


def rates() -> dict[str, Rate]:
    """The rates of ``TRANSMISSIONS_SEND_RATES`` by key; raise ImproperlyConfigured when it is
    malformed (``manage.py check`` says so first: E087, E088)."""
    value = conf.TRANSMISSIONS_SEND_RATES
    if not value:
        return {}
    if isinstance(value, dict):
        with contextlib.suppress(TypeError):  # a value that cannot be hashed: refused below
            return _parsed(tuple(value.items()))
    raise ImproperlyConfigured(problems(value)[0][1])


def key_of(notification: Any, message_cls: type | None) -> str:
    """The key whose rate paces ``notification``: its message class's ``send_rate_key``, else
    its channel kind."""
    own = getattr(message_cls, "send_rate_key", None)
    return str(own or notification.channel or getattr(message_cls, "channel", ""))


def slot_model() -> Any:
    """The SendSlot model, looked up in the app registry (the pipeline never imports models)."""
    return apps.get_model("transmissions", "SendSlot")


@dataclass(frozen=True)
class Taken:
    """A slot held for one transmit: give it to ``Pacer.done()`` once the transmit returned."""

    slot: Any
    key: str
    rate: Rate
    # What the slot's free_at was (restored when nothing was transmitted) and is while held.
    previous: datetime.datetime
    held_until: datetime.datetime


@dataclass(frozen=True)
class Late:
    """No slot could be had in time: put the row back in the queue, due ``until``."""

    until: datetime.datetime
    reason: str


@dataclass
class Pacer:
    """Takes a slot of its rate before each transmit of one batch's rate-limited notifications.

    ``horizon``: the latest time a transmit may start (half the batch's lease, the run's
    time limit); ``lease``: when the batch's claim expires.
    """

    rates: dict[str, Rate]
    using: str
    horizon: datetime.datetime | None
    lease: datetime.datetime | None
    # Keys found late in this batch: their other rows are held back without a query.
    late: dict[str, Late] = field(default_factory=dict)
    # Keys whose slots were counted in this batch (made if missing).
    counted: set[str] = field(default_factory=set)

    def take(self, notification: Any) -> Taken | Late | None:
        """Wait for a slot of ``notification``'s rate and take it; None: it has no rate (no
        query); a Late: none could be had before the horizon."""
        message_cls = registry.find(notification.trigger_name)
        key = key_of(notification, message_cls)
        rate = self.rates.get(key)
        if rate is None:
            return None
        late = self.late.get(key) or self._take(key, rate)
        if isinstance(late, Late):
            self.late[key] = late
            logger.warning(
                "Deferred notification %s (%s) to %s: %s.",
                notification.pk,
                notification.trigger_name,
                late.until.isoformat(),
                late.reason,
            )
        return late

    def done(self, taken: Taken, transmitted: bool = True) -> None:
        """Free ``taken`` a period from now; or, when nothing was transmitted (the message was
        cancelled or broken before its send), give it back as it was."""
        free_at = timezone.now() + taken.rate.period if transmitted else taken.previous
        slots = slot_model()._default_manager.using(self.using)
        # Only while still held by this take: an UPDATE that may run twice.
        mine = slots.filter(pk=taken.slot, free_at=taken.held_until)
        reconnecting(self.using, "freeing a send slot", lambda: mine.update(free_at=free_at))

    def _take(self, key: str, rate: Rate) -> Taken | Late:
        slots = slot_model()._default_manager.using(self.using).filter(key=key, number__lt=rate.count)
        while True:
            now = timezone.now()
            # The earliest slot not in use (one in use is held till a lease plus a period,
            # later than any slot freed by now).
            ready = slots.filter(free_at__lte=now + rate.period).order_by("free_at")
            soonest = list(ready.values_list("pk", "free_at")[:1])
            if soonest and soonest[0][1] <= now:
                taken = self._hold(slots, key, rate, *soonest[0])
                if taken is not None:
                    return taken
                continue  # another worker took it first: look again
            if key not in self.counted:
                self.counted.add(key)
                if self._make_missing(key, rate):
                    continue
            # Every slot in use (transmits in flight): look again shortly.
            at = soonest[0][1] if soonest else now + datetime.timedelta(seconds=POLL_SECONDS)
            if self.horizon is not None and at > self.horizon:
                until = soonest[0][1] if soonest else now + rate.period
                why = f"{CODE}: {key} at {rate}, no send slot free before its worker had to stop"
                return Late(until, clip_reason(f"{why}; deferred to {until.isoformat()}"))
            time.sleep(min(max((at - now).total_seconds(), 0.0), MAX_SLEEP_SECONDS))

    def _hold(self, slots: Any, key: str, rate: Rate, pk: Any, previous: datetime.datetime) -> Taken | None:
        """Take slot ``pk`` if its time is still ``previous``: one UPDATE only one worker wins."""
        lease = self.lease or timezone.now() + datetime.timedelta(seconds=conf.TRANSMISSIONS_LEASE_SECONDS)
        held_until = lease + rate.period
        mine = slots.filter(pk=pk, free_at=previous)
        # Run again after a lost connection, it finds the slot held (by itself, or another):
        # held until its lease, never used twice.
        if reconnecting(self.using, "taking a send slot", lambda: mine.update(free_at=held_until)):
            return Taken(pk, key, rate, previous, held_until)
        return None

    def _make_missing(self, key: str, rate: Rate) -> bool:
        """Make the slots of ``key`` that do not exist yet (first use, a larger rate); return
        whether any was missing."""
        model = slot_model()
        slots = model._default_manager.using(self.using)
        have = set(slots.filter(key=key, number__lt=rate.count).values_list("number", flat=True))
        missing = [model(key=key, number=n, free_at=EPOCH) for n in range(rate.count) if n not in have]
        if missing:
            # Another worker making them at once is no error: theirs or ours, one row each.
            slots.bulk_create(missing, ignore_conflicts=True)
        return bool(missing)


def pacer(using: str, horizon: datetime.datetime | None, lease: datetime.datetime | None) -> Pacer | None:
    """A Pacer for one batch, or None when no rate is set (the worker then asks nothing)."""
    found = rates()
    return Pacer(found, using, horizon, lease) if found else None


def check_send_rates(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E087/E088: a malformed ``TRANSMISSIONS_SEND_RATES``; E089: a message class's
    ``send_rate_key`` that is not a short string; W087: a rate no registered message uses."""
    value = conf.TRANSMISSIONS_SEND_RATES
    errors: list[checks.CheckMessage] = [checks.Error(text, id=id) for id, text in problems(value)]
    used = set()
    for name in registry:
        cls = registry.get(name)
        own = getattr(cls, "send_rate_key", None)
        if own is not None and not (isinstance(own, str) and own and len(own) <= CHANNEL_MAX_LENGTH):
            errors.append(
                checks.Error(
                    f"{cls.__qualname__}.send_rate_key must be a non-empty string of at most "
                    f"{CHANNEL_MAX_LENGTH} characters, not {own!r}.",
                    id="transmissions.E089",
                )
            )
        used.add(own or getattr(cls, "channel", ""))
    if isinstance(value, dict):
        for key in value:
            if isinstance(key, str) and 0 < len(key) <= CHANNEL_MAX_LENGTH and key not in used:
                errors.append(
                    checks.Warning(
                        f"TRANSMISSIONS_SEND_RATES[{key!r}]: no registered message is sent on a "
                        f"channel kind or send_rate_key {key!r}; the rate paces nothing.",
                        hint=f"In use: {', '.join(sorted(k for k in used if k)) or 'none'}.",
                        id="transmissions.W087",
                    )
                )
    return errors
