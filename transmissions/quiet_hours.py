"""Quiet hours: a window of the recipient's night in which nothing non-urgent is sent.

A notification due inside its user's window, in the user's own time zone, is not sent:
``QuietHoursPolicy`` (in ``TRANSMISSIONS_POLICIES`` by default) defers it to the window's
end, in the batch's one deferring UPDATE (its attempts unchanged, its behaviour's key
kept), and it is sent then. In-app messages are exempt by default
(``TRANSMISSIONS_QUIET_HOURS_EXEMPT_CHANNELS``), and so is a message marked
``@message(..., urgent=True)``.

The window is ``TRANSMISSIONS_QUIET_HOURS`` (``("22:00", "07:00")``; None: no quiet hours),
or what ``TRANSMISSIONS_QUIET_HOURS_SOURCE`` returns for the user. The time zone is the
recipient's (``recipients.timezone_of()``: ``TRANSMISSIONS_RECIPIENT_TIMEZONE``, else
``TIME_ZONE``). Times are wall-clock times of that zone, so a window keeps its local hours
across daylight-saving changes.
"""

from __future__ import annotations

import datetime
import functools
import logging
import re
import zoneinfo
from collections.abc import Callable
from typing import Any

from django.utils import timezone
from django.utils.module_loading import import_string

from transmissions.conf import conf
from transmissions.policies import Hold, Policy
from transmissions.recipients import timezone_of

logger = logging.getLogger("transmissions")

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)\Z")
Window = tuple[datetime.time, datetime.time]


class QuietHoursError(ValueError):
    """A window or a time zone setting that cannot be used (the system checks quote it)."""


def parse_window(value: Any) -> Window | None:
    """Return ``("22:00", "07:00")`` as two times (None for None); raise QuietHoursError."""
    if value is None:
        return None
    if not (isinstance(value, list | tuple) and len(value) == 2):
        raise QuietHoursError(f'a window is two "HH:MM" times, not {value!r}')
    times = []
    for part in value:
        if isinstance(part, datetime.time):
            times.append(part.replace(second=0, microsecond=0, tzinfo=None))
            continue
        match = _TIME.match(part) if isinstance(part, str) else None
        if match is None:
            raise QuietHoursError(f'{part!r} is not a "HH:MM" time')
        times.append(datetime.time(int(match[1]), int(match[2])))
    if times[0] == times[1]:
        raise QuietHoursError(f"the window {value!r} is empty")
    return times[0], times[1]


@functools.cache
def _callable(path: str) -> Callable[[Any], Any]:
    found = import_string(path)
    if not callable(found):
        raise QuietHoursError(f"{path!r} is not callable")
    return found  # type: ignore[no-any-return]


# The recipient's zone (``recipients.py``), under this module's earlier name too.
recipient_timezone = timezone_of


def window_for(user: Any) -> Window | None:
    """Return ``user``'s quiet hours: ``TRANSMISSIONS_QUIET_HOURS_SOURCE``'s answer for the user
    (None: the default), else ``TRANSMISSIONS_QUIET_HOURS``; None when there are none.

    A source returns a window, None for the default, or False for none at all.
    """
    source = conf.TRANSMISSIONS_QUIET_HOURS_SOURCE
    if source:
        own = _callable(source)(user)
        if own is False:
            return None
        if own is not None:
            return parse_window(own)
    return parse_window(conf.TRANSMISSIONS_QUIET_HOURS)


def window_end(now: datetime.datetime, window: Window, zone: zoneinfo.ZoneInfo) -> datetime.datetime | None:
    """Return when the quiet window around ``now`` ends (in UTC), or None when ``now`` is outside it.

    The window is wall-clock time in ``zone``: [start, end), and it crosses midnight when
    start > end. An end that falls in a spring-forward gap is the same wall time read with
    the offset before the change (02:30 that does not exist is 03:30); an end that happens
    twice in the autumn is the first of the two.
    """
    local = now.astimezone(zone)
    start, end = window
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside, day = start <= clock < end, local.date()
    elif clock >= start:
        inside, day = True, local.date() + datetime.timedelta(days=1)
    else:
        inside, day = clock < end, local.date()
    if not inside:
        return None
    # In UTC: a wall time in a gap or a fold never equals an instant of another zone (PEP 495).
    until = datetime.datetime.combine(day, end, tzinfo=zone).astimezone(datetime.UTC)
    return until if until > now else now + datetime.timedelta(minutes=1)


class QuietHoursPolicy(Policy):
    """Defer a non-urgent notification due inside its user's quiet hours to their end.

    No query: the users come with the claimed batch. Nothing to do when there are no quiet
    hours (``TRANSMISSIONS_QUIET_HOURS`` None and no source).
    """

    def prepare(self, batch: list[Any]) -> None:
        self.per_user = bool(conf.TRANSMISSIONS_QUIET_HOURS_SOURCE)
        # The default window, read once a batch (a bad one is check E074, and none here).
        try:
            self.default = parse_window(conf.TRANSMISSIONS_QUIET_HOURS)
        except QuietHoursError:
            self.default = None
        self.active = self.per_user or self.default is not None
        self.exempt = set(conf.TRANSMISSIONS_QUIET_HOURS_EXEMPT_CHANNELS or ())
        self.now = timezone.now()

    def lets_all_through(self) -> bool:
        # No quiet hours, neither a default window nor a per-user source.
        return not self.active and type(self).check is QuietHoursPolicy.check

    def check(self, notification: Any, message_cls: type | None) -> Hold | None:
        if not self.active or message_cls is None or getattr(message_cls, "urgent", False):
            return None
        kind = notification.channel or getattr(message_cls, "channel", "")
        if kind in self.exempt:
            return None
        user = notification.target_user
        window = window_for(user) if self.per_user else self.default
        if window is None:
            return None
        zone = timezone_of(user)
        until = window_end(self.now, window, zone)
        if until is None:
            return None
        # The row names its user already; the reason says which window, in which zone (the
        # admin shows it beside the row's due time, the window's end).
        start, end = (t.strftime("%H:%M") for t in window)
        return Hold(
            f"the recipient's quiet hours, {start}-{end} in {zone.key}", until=until, code="quiet-hours"
        )


__all__ = ["QuietHoursPolicy", "parse_window", "recipient_timezone", "window_end", "window_for"]
