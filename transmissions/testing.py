"""Test helpers for projects that use transmissions: what was sent, to whom.

Like Django's ``mail.outbox``: inside ``capture()`` every channel builds its payload
(the email, the SMS, the feed entry...) as usual, and instead of handing it to the
provider, appends it to ``outbox``; the notification still ends SUCCESSFULLY_SENT,
as it would for real. ``process_now()`` runs the worker synchronously::

    from transmissions.testing import assert_sent, capture, process_now

    def test_welcome(user):
        with capture() as outbox:
            WelcomeSMS.trigger(user)
            process_now()
        assert_sent("welcome-sms", to=user)
        assert "welcome" in outbox[0].payload.body

Channels that override ``send()`` without calling ``BaseChannel.send()`` are not
captured: they send for real.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from transmissions import worker
from transmissions.channels import base


@dataclass(frozen=True)
class SentMessage:
    """One message that would have been sent."""

    trigger_name: str
    to: Any  # the target user
    payload: Any  # what build() made: an EmailMultiAlternatives, an SMS, a feed entry...
    notification: Any
    channel: Any  # the message instance

    def __repr__(self) -> str:
        return f"<SentMessage {self.trigger_name!r} to {self.to!r}>"


class Outbox(list[SentMessage]):
    """The messages captured, oldest first; a list with ``filter()`` (and ``clear()``)."""

    def filter(self, trigger_name: str | None = None, to: Any = None) -> list[SentMessage]:
        """Return the messages of ``trigger_name`` (any when None) sent to user ``to``."""
        return [
            sent
            for sent in self
            if (trigger_name is None or sent.trigger_name == trigger_name)
            and (to is None or _same_user(sent.to, to))
        ]


def _same_user(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a.pk == b.pk


# Filled while capture() is in force.
outbox = Outbox()


def _hook(channel: Any, payload: Any) -> Any:
    outbox.append(
        SentMessage(
            trigger_name=getattr(channel, "trigger_name", type(channel).__qualname__),
            to=channel.notification.target_user,
            payload=payload,
            notification=channel.notification,
            channel=channel,
        )
    )
    return payload


@contextlib.contextmanager
def capture() -> Iterator[Outbox]:
    """Capture what channels would send, in a cleared ``outbox``, which is yielded."""
    previous = base.capture_hook
    outbox.clear()
    base.capture_hook = _hook
    try:
        yield outbox
    finally:
        base.capture_hook = previous


def assert_sent(trigger_name: str, to: Any = None, count: int | None = None) -> list[SentMessage]:
    """Assert that ``trigger_name`` was sent (to user ``to``; ``count`` times); return those.

    Without ``count``, at least once.
    """
    found = outbox.filter(trigger_name, to)
    expected = "at least once" if count is None else f"{count} time(s)"
    if (count is None and not found) or (count is not None and len(found) != count):
        whom = "" if to is None else f" to {to!r}"
        raise AssertionError(
            f"Expected {trigger_name!r}{whom} sent {expected}, found {len(found)}. Outbox: {list(outbox)!r}"
        )
    return found


def assert_not_sent(trigger_name: str | None = None, to: Any = None) -> None:
    """Assert that nothing (of ``trigger_name``, to user ``to``) was sent."""
    found = outbox.filter(trigger_name, to)
    if found:
        raise AssertionError(f"Expected nothing sent, found {found!r}.")


def process_now() -> int:
    """Process every due notification now, in this process; return how many were taken.

    The Celery task does the same on a worker; tests need neither broker nor beat.
    Notifications scheduled in the future stay waiting: move time (``time-machine``)
    to reach them.
    """
    return worker.process_all_notifications(time_limit=float("inf"))


class CaptureMixin:
    """For ``unittest``/Django ``TestCase``: capture around every test, as ``self.outbox``."""

    outbox: Outbox

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        manager = capture()
        self.outbox = manager.__enter__()
        self.addCleanup(manager.__exit__, None, None, None)  # type: ignore[attr-defined]
