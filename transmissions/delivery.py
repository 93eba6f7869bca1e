"""Delivering one claimed notification: its message class, its checks, its send, what became of it.

No SQL here and no batch: the worker (``worker.py``) hands each claimed notification
to ``deliver()`` and records the ``Delivery`` it gets back, with the batch's others,
through the lifecycle. The rules (SPEC "Processing"):

1. no message class registered under the trigger name, stored data that cannot be
   read, content that cannot be loaded (``related.py``), or a class that raises while
   being built or checked: BROKEN;
2. ``check_validity()`` false: CANCELLED;
3. ``send()`` raises ``TransientChannelError``, or loses its database connection
   (``OperationalError``, ``InterfaceError``): retried with backoff until
   ``TRANSMISSIONS_MAX_ATTEMPTS``, then FAILED; any other exception: FAILED;
4. ``send()`` returns: SUCCESSFULLY_SENT.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import InterfaceError, OperationalError

from transmissions import recipients, related
from transmissions.behaviors import TriggerBehavior
from transmissions.conf import conf
from transmissions.exceptions import ChannelSendException, TransientChannelError, UnknownTriggerException
from transmissions.registry import registry
from transmissions.status import Status

logger = logging.getLogger("transmissions")


@dataclass
class Delivery:
    """What became of one notification: a final ``status``, or None to retry ``retry_in`` later."""

    status: int | None
    message_cls: type | None = None
    # Why it did not end SUCCESSFULLY_SENT, in a few words (also logged).
    reason: str = ""
    retry_in: datetime.timedelta | None = None
    # What the channel's send() returned (the provider's answer).
    result: Any = None
    # What the provider called the message (the channel's ``provider_message_id``), if sent.
    provider_message_id: str | None = None
    # BROKEN while being built or checked: what was raised (``Notification.send()`` raises it).
    exception: BaseException | None = None

    @property
    def behavior(self) -> TriggerBehavior | None:
        return getattr(self.message_cls, "behavior", None)


def deliver(
    notification: Any, in_force: tuple[str, Any] | None = None, locale: tuple[str, Any] | None = None
) -> Delivery:
    """Run ``notification`` through its message class, in its recipient's language and time zone
    (``recipients.activated()``); return what became of it. Never raises.

    ``in_force``: ``recipients.in_force()``, read once by a caller that delivers many;
    ``locale``: the recipient's, when the caller knows it (``recipients.fixed_locale()``).
    """
    if locale is None:
        locale = recipients.locale_of(notification.target_user if recipients.reads_user() else None)
    # zoneinfo caches its zones: the same zone is the same object.
    if locale == (in_force or recipients.in_force()):
        return _deliver(notification)  # already in force: nothing to switch
    with recipients.switched(locale):
        return _deliver(notification)


def _deliver(notification: Any) -> Delivery:
    label = _Label(notification)
    try:
        message_cls = registry.get(notification.trigger_name)
    except UnknownTriggerException as exc:
        reason = "no message is registered under this trigger name"
        logger.error(
            "Broken %s: %s. Messages are discovered from the messages.py and notifications.py "
            "modules of installed apps; is the class defined elsewhere, or was it renamed?",
            label,
            reason,
        )
        return Delivery(Status.BROKEN, None, reason, exception=exc)
    problem = related.content_problem(notification)
    if problem is not None:
        reason = f"its content cannot be loaded: {problem}"
        logger.error("Broken %s: %s.", label, reason)
        return Delivery(Status.BROKEN, message_cls, reason)
    try:
        notification.data  # noqa: B018 - unreadable data makes the notification BROKEN
        channel = message_cls(notification)
        check = getattr(channel, "check_validity", None)
        valid = check() if check is not None else True
    except Exception as exc:
        logger.exception("Broken %s: building it or checking its validity raised.", label)
        return Delivery(Status.BROKEN, message_cls, f"{type(exc).__name__}: {exc}", exception=exc)
    if not valid:
        reason = _cancel_reason(channel)
        logger.warning("Cancelled %s: %s.", label, reason)
        return Delivery(Status.CANCELLED, message_cls, reason)
    try:
        result = channel.send()
    except (TransientChannelError, OperationalError, InterfaceError) as exc:
        # A channel's own errors say what went wrong in one line (the provider's answer, a
        # refused connection): no traceback, which would say nothing more on every retry.
        if notification.attempts < conf.TRANSMISSIONS_MAX_ATTEMPTS:
            delay = retry_delay(notification.attempts)
            logger.warning(
                "Retrying %s in %ds after a transient error: %s", label, delay.total_seconds(), exc
            )
            return Delivery(None, message_cls, str(exc), retry_in=delay)
        logger.error("Failed %s after %d attempts: %s", label, notification.attempts, exc)
        return Delivery(Status.FAILED, message_cls, str(exc))
    except ChannelSendException as exc:
        logger.error("Failed %s: %s", label, exc)
        return Delivery(Status.FAILED, message_cls, f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        logger.exception("Failed %s.", label)
        return Delivery(Status.FAILED, message_cls, f"{type(exc).__name__}: {exc}")
    provider_id = getattr(channel, "provider_message_id", None)
    return Delivery(
        Status.SUCCESSFULLY_SENT,
        message_cls,
        result=result,
        provider_message_id=None if provider_id is None else str(provider_id),
    )


# What a channel holds open while a worker delivers a batch (``around_batch()``).
_around_batch: list[Callable[[], contextlib.AbstractContextManager[Any]]] = []


def around_batch(
    scope: Callable[[], contextlib.AbstractContextManager[Any]],
) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """Register ``scope``, a function that returns a context manager, to be entered around each
    batch a worker delivers: from before its first ``deliver()`` to after its outcomes are
    written. A channel module keeps a connection open in it (the email channel its mailers').
    Returns ``scope``, so it can decorate."""
    if scope not in _around_batch:
        _around_batch.append(scope)
    return scope


@contextlib.contextmanager
def batch() -> Iterator[None]:
    """Enter every ``around_batch()`` scope for the block."""
    with contextlib.ExitStack() as stack:
        for scope in _around_batch:
            stack.enter_context(scope())
        yield


class _Label:
    """ "notification <pk> (<trigger name>)", formatted only when a log line is written."""

    __slots__ = ("notification",)

    def __init__(self, notification: Any) -> None:
        self.notification = notification

    def __str__(self) -> str:
        return f"notification {self.notification.pk} ({self.notification.trigger_name})"


def _cancel_reason(channel: Any) -> str:
    get_reason = getattr(channel, "get_cancel_reason", None)
    if get_reason is None:
        return "check_validity() returned false"
    try:
        return str(get_reason())
    except Exception as exc:  # a reason must never cost the outcome
        return f"check_validity() returned false (get_cancel_reason() raised {exc!r})"


def retry_delay(attempts: int) -> datetime.timedelta:
    """Exponential backoff with jitter: between half and all of base * 2**(attempts-1)."""
    base = conf.TRANSMISSIONS_RETRY_DELAY
    ceiling = min(conf.TRANSMISSIONS_RETRY_MAX_DELAY, base * 2 ** max(attempts - 1, 0))
    return datetime.timedelta(seconds=ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311
