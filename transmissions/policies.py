"""Policies: before a claimed batch is delivered, each may hold a notification back.

A policy answers, for one notification, "send it", "not at all" (CANCELLED, with a
reason the admin and the logs show) or "not before then" (back to CREATED, due then,
the attempt not counted, with a reason). Policies see the whole batch first
(``prepare()``), so that what they read (a batch's users' preferences, say) costs a
constant number of queries, not one per notification.

``TRANSMISSIONS_POLICIES`` lists them by dotted path, in order: the first one that holds
a notification decides. A project adds its own by subclassing ``Policy``.
"""

from __future__ import annotations

import datetime
import functools
import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from transmissions.conf import conf
from transmissions.registry import registry

logger = logging.getLogger("transmissions")


@dataclass(frozen=True)
class Hold:
    """A policy's answer for a notification it will not let through now.

    ``until`` None cancels it; a datetime defers it to then. ``code`` (a short slug such
    as "suppressed", "opted-out", "quiet-hours") starts the stored reason,
    ``"<code>: <reason>"``, so that ``Notification.objects.held(code)`` finds them.
    """

    reason: str
    until: datetime.datetime | None = None
    code: str = "held"

    @property
    def text(self) -> str:
        """The reason as stored and logged."""
        return f"{self.code}: {self.reason}"


class Policy:
    """Base of the policies. Override ``check()``, and ``prepare()`` to load in bulk."""

    def prepare(self, batch: list[Any]) -> None:
        """Load what ``check()`` needs for the whole ``batch`` (claimed notifications), in a
        constant number of queries."""

    def lets_all_through(self) -> bool:
        """After ``prepare()``: True when ``check()`` would return None for every notification
        of the batch (nothing to look at), so ``holds()`` need not ask it row by row. A subclass
        that overrides ``check()`` and this must keep them in agreement; the default, False,
        asks ``check()`` for each."""
        return False

    def check(self, notification: Any, message_cls: type | None) -> Hold | None:
        """Return a Hold to keep ``notification`` from being sent now, or None to let it through.

        ``message_cls`` is its registered message class (None when its trigger name is
        not registered: it will end BROKEN unless a policy holds it).
        """
        return None


@functools.cache
def _load(paths: tuple[str, ...]) -> tuple[type[Policy], ...]:
    classes = []
    for path in paths:
        cls = import_string(path)
        if not (isinstance(cls, type) and issubclass(cls, Policy)):
            raise ImproperlyConfigured(f"TRANSMISSIONS_POLICIES: {path!r} is not a Policy subclass.")
        classes.append(cls)
    return tuple(classes)


def active() -> list[Policy]:
    """Return a fresh instance of each policy ``TRANSMISSIONS_POLICIES`` names, in order."""
    return [cls() for cls in _load(tuple(conf.TRANSMISSIONS_POLICIES))]


def holds(batch: list[Any]) -> dict[int, Hold]:
    """Return the holds of ``batch`` by notification id: the first policy's that holds each."""
    found: dict[int, Hold] = {}
    for policy in active():
        todo = [n for n in batch if n.pk not in found] if found else batch
        if not todo:
            break
        policy.prepare(todo)
        if policy.lets_all_through():
            continue
        for notification in todo:
            hold = policy.check(notification, registry.find(notification.trigger_name))
            if hold is not None:
                found[notification.pk] = hold
                logger.warning(
                    "%s notification %s (%s): %s.",
                    "Cancelled" if hold.until is None else f"Deferred to {hold.until.isoformat()}",
                    notification.pk,
                    notification.trigger_name,
                    hold.text,
                )
    return found
