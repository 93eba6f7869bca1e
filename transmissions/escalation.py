"""Escalations: one event that walks through several channels, one row per step.

::

    reply = Escalation("reply", steps=[
        Step(ReplyInApp),
        Step(ReplyPush, after=timedelta(minutes=15)),
        Step(ReplyEmail, after=timedelta(hours=1)),
    ])
    reply.trigger(ada, content=comment)

Triggering writes every step at once, each an ordinary notification of its own
``@message`` class: the first due now, the others scheduled ``after`` the trigger, all
sharing one ``Notification.escalation`` id. Workers claim them like every other row, so
each step is sent at most once. A step is sent only while its condition holds, which
``EscalationPolicy`` checks when the step is claimed (one query per batch):

- ``UNSEEN`` (the default): no step of the event was seen;
- ``FAILED`` (failover): no step of the event was seen, and the step just before ended
  without being sent (failed, broken, or skipped: cancelled because its channel cannot
  serve the user or the user turned it off); while that one is still pending, the step
  waits (deferred by ``FAILOVER_WAIT``).

Marking a step seen (``mark_seen()``, the inbox) cancels the waiting steps of its event
in one UPDATE (reason ``"seen: ..."``); ``Escalation.cancel()`` cancels every waiting
step. A step whose channel cannot serve the user is skipped (CANCELLED with its reason)
and the others go on.
"""

from __future__ import annotations

import datetime
import enum
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core import checks
from django.utils import timezone

from transmissions import categories, idempotency
from transmissions.behaviors import TriggerBehavior
from transmissions.conf import conf
from transmissions.escalation_trigger import users_of, write_events
from transmissions.exceptions import MessageRegistrationError
from transmissions.lifecycle import notification_model
from transmissions.policies import Hold, Policy
from transmissions.querysets import FEED_CHANNEL, SEEN_CODE
from transmissions.registry import escalations, registry
from transmissions.status import Status
from transmissions.trigger import check_user

POLICY_PATH = "transmissions.escalation.EscalationPolicy"
# How long a failover step waits before it looks again at an earlier step still pending.
FAILOVER_WAIT = datetime.timedelta(seconds=60)
# The behaviours an escalation may have, applied to the event as a whole.
BEHAVIORS = (
    TriggerBehavior.DEFAULT,
    TriggerBehavior.TRIGGER_ONCE,
    TriggerBehavior.TRIGGER_ONCE_PER_CONTENT,
    TriggerBehavior.LAST_ONLY,
)
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+\Z")
_PENDING = (Status.CREATED, Status.PROCESSING)


class Condition(enum.StrEnum):
    """When a step (after the first) is sent."""

    UNSEEN = "unseen"
    FAILED = "failed"


UNSEEN, FAILED = Condition.UNSEEN, Condition.FAILED


@dataclass(frozen=True)
class Step:
    """One channel of an escalation: a ``@message`` class, sent ``after`` the trigger if ``when``
    still holds then."""

    message: type
    after: datetime.timedelta = datetime.timedelta(0)
    when: Condition = Condition.UNSEEN


class Escalation:
    """An event sent through the channels of ``steps``, in order; see the module's docstring.

    ``behavior`` applies to the event as a whole: TRIGGER_ONCE refuses a trigger while a
    step of an earlier one is waiting (its key is held by the last step), LAST_ONLY
    cancels the waiting steps of the earlier one. The steps' messages keep the DEFAULT
    behaviour and decide the channels, categories and ``required``, which must agree.
    """

    def __init__(
        self, name: str, steps: Sequence[Step], behavior: TriggerBehavior | str | None = None
    ) -> None:
        if not isinstance(name, str) or not _SLUG.match(name):
            raise MessageRegistrationError(f"Escalation name {name!r} must be a slug.")
        self.name = name
        self.behavior = TriggerBehavior.coerce(behavior)
        if self.behavior not in BEHAVIORS:
            allowed = ", ".join(b.name for b in BEHAVIORS)
            raise MessageRegistrationError(
                f"Escalation {name!r}: behaviour {self.behavior.name} is not supported; use one of {allowed}."
            )
        self.steps = tuple(steps)
        _validate(name, self.steps)
        self.trigger_names = [step.message.trigger_name for step in self.steps]  # type: ignore[attr-defined]
        escalations.register(self, name, self.trigger_names)

    def __repr__(self) -> str:
        return f"<Escalation {self.name}: {' -> '.join(self.trigger_names)}>"

    def trigger(
        self,
        user: Any,
        trigger_user: Any = None,
        content: Any = None,
        data: Any = None,
        datetime_scheduled: datetime.datetime | None = None,
        idempotency_key: str | None = None,
    ) -> list[Any]:
        """Write the event's steps for ``user``: the first due at ``datetime_scheduled`` (now),
        each other ``after`` it. Return the notifications, in step order; an empty list when
        the behaviour refuses the trigger. Bad input raises InvalidTrigger, writing nothing.

        With an ``idempotency_key`` that an event triggered within
        TRANSMISSIONS_IDEMPOTENCY_WINDOW holds, write nothing and return that event's steps."""
        check_user(user, "user")
        key = idempotency.check_key(idempotency_key)
        keys = None if key is None else [key]
        found = write_events(self, [user], trigger_user, content, data, datetime_scheduled, keys)
        return found[0] if found else []

    def trigger_many(
        self,
        users: Iterable[Any],
        trigger_user: Any = None,
        content: Any = None,
        data: Any = None,
        datetime_scheduled: datetime.datetime | None = None,
        idempotency_key: Any = None,
    ) -> list[list[Any]]:
        """Write the event for each of ``users`` (each once) in one transaction, a few INSERTs in
        all; return each user's steps (a list in step order), in the users' order, leaving out
        the users the behaviour refuses. ``idempotency_key``: a callable taking a user or a
        mapping of users (or primary keys) to keys, as for a message's ``trigger_many``."""
        users = users_of(users)
        firsts: dict[Any, Any] = {}
        for user in users:
            firsts.setdefault(user.pk, user)
        users = list(firsts.values())
        if not users:
            return []
        keys = None if idempotency_key is None else idempotency.keys_per_user(users, idempotency_key)
        return write_events(self, users, trigger_user, content, data, datetime_scheduled, keys)

    def cancel(self, notifications: Any, reason: str = "the event was cancelled by the application") -> int:
        """Cancel the waiting steps of the events of ``notifications`` (steps this ``trigger()``
        returned, or escalation ids), in one UPDATE; return how many."""
        groups = {n if isinstance(n, str) else n.escalation for n in notifications}
        groups.discard(None)
        if not groups:
            return 0
        model = notification_model()
        return int(
            model.objects.filter(escalation__in=groups, trigger_name__in=self.trigger_names).cancel(reason)
        )


def _validate(name: str, steps: tuple[Step, ...]) -> None:
    if len(steps) < 2:
        raise MessageRegistrationError(f"Escalation {name!r} needs at least two steps.")
    previous = datetime.timedelta(0)
    inapp = 0
    for step in steps:
        if not isinstance(step, Step):
            raise MessageRegistrationError(f"Escalation {name!r}: {step!r} is not a Step.")
        cls = step.message
        label = getattr(cls, "__qualname__", repr(cls))
        if registry.find(getattr(cls, "trigger_name", "")) is not cls:
            raise MessageRegistrationError(f"Escalation {name!r}: {label} is not registered with @message.")
        if cls.behavior is not TriggerBehavior.DEFAULT:  # type: ignore[attr-defined]
            raise MessageRegistrationError(
                f"Escalation {name!r}: step {label} must keep the DEFAULT behaviour; give the "
                "escalation its behaviour instead."
            )
        for option in ("throttle", "digest"):
            if getattr(cls, option, None) is not None:
                raise MessageRegistrationError(
                    f"Escalation {name!r}: step {label} has a {option}; an escalation writes its "
                    "steps together, so a step cannot have a throttle or a digest of its own."
                )
        if not isinstance(step.after, datetime.timedelta) or step.after < previous:
            raise MessageRegistrationError(
                f"Escalation {name!r}: step {label}'s after={step.after!r} must be a timedelta, "
                "no earlier than the step before it."
            )
        if not isinstance(step.when, Condition):
            raise MessageRegistrationError(
                f"Escalation {name!r}: step {label}'s when must be UNSEEN or FAILED."
            )
        previous = step.after
        inapp += getattr(cls, "channel", "") == FEED_CHANNEL
    if inapp > 1:
        raise MessageRegistrationError(
            f"Escalation {name!r}: at most one step may be in-app (the inbox lists it)."
        )
    kinds = {(categories.of(step.message), bool(getattr(step.message, "required", False))) for step in steps}
    if len(kinds) > 1:
        raise MessageRegistrationError(
            f"Escalation {name!r}: its steps must share one category and one 'required' "
            f"(found {sorted(kinds, key=str)})."
        )


class EscalationPolicy(Policy):
    """Hold back a claimed step whose condition no longer holds: CANCELLED ``"seen: ..."`` once a
    step of its event was seen, ``"escalation: ..."`` for a failover step whose earlier step was
    sent; a failover step waits (deferred) while an earlier step is pending.

    One query per batch with steps in it, none otherwise.
    """

    def prepare(self, batch: list[Any]) -> None:
        groups = {n.escalation for n in batch if getattr(n, "escalation", None)}
        self.any_step = bool(groups)
        self.steps: dict[str, list[tuple[Any, str, int, Any]]] = defaultdict(list)
        if groups:
            rows = notification_model().objects.filter(escalation__in=groups)
            for pk, group, name, status, seen in rows.values_list(
                "pk", "escalation", "trigger_name", "status", "datetime_seen"
            ):
                self.steps[group].append((pk, name, status, seen))

    def lets_all_through(self) -> bool:
        # No step of an escalation in the batch (unless a subclass decides in check()).
        return not self.any_step and type(self).check is EscalationPolicy.check

    def check(self, notification: Any, message_cls: type | None) -> Hold | None:
        group = getattr(notification, "escalation", None)
        found = escalations.of(notification.trigger_name)
        if not group or found is None:
            return None
        escalation, index = found
        assert isinstance(escalation, Escalation)
        others = [row for row in self.steps.get(group, []) if row[0] != notification.pk]
        for pk, name, _, seen in others:
            if seen is not None:
                return Hold(f"step {name} (notification {pk}) was seen at {seen.isoformat()}", code=SEEN_CODE)
        if escalation.steps[index].when is not Condition.FAILED:
            return None
        before = escalation.trigger_names[index - 1]
        for pk, name, status, _ in others:
            if name != before:
                continue
            if status == Status.SUCCESSFULLY_SENT:
                return Hold(f"step {name} (notification {pk}) was sent: no failover", code="escalation")
            if status in _PENDING:
                return Hold(
                    f"waiting for step {name} (notification {pk}) to end",
                    until=timezone.now() + FAILOVER_WAIT,
                    code="escalation",
                )
        return None


def check_escalations(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W090: escalations are declared but ``EscalationPolicy`` is not in ``TRANSMISSIONS_POLICIES``."""
    declared = escalations.all()
    if not declared or POLICY_PATH in list(conf.TRANSMISSIONS_POLICIES or []):
        return []
    names = ", ".join(getattr(e, "name", "?") for e in declared)
    return [
        checks.Warning(
            f"Escalations are declared ({names}) but TRANSMISSIONS_POLICIES does not list {POLICY_PATH!r}: "
            "a step is then sent even when an earlier one was seen by other means than mark_seen(), "
            "and failover steps are sent whatever became of the earlier ones.",
            hint=f"Add {POLICY_PATH!r} to TRANSMISSIONS_POLICIES.",
            id="transmissions.W090",
        )
    ]


__all__ = ["FAILED", "UNSEEN", "Condition", "Escalation", "EscalationPolicy", "Step", "check_escalations"]
