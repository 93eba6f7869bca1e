"""Writing an escalation's steps: ``Escalation.trigger()`` and ``trigger_many()``, to their INSERTs.

Every user's event is one row per step sharing a new ``escalation`` id. The event's key,
when it has one, sits on its *head*, the last step's row: the behaviour's ``dedup_key``
(TRIGGER_ONCE: the event is pending until its last step ends) and the caller's
``idempotency_key``. Every step is inserted in step order, skipping a head whose key is
taken; the other steps of an event whose head was refused are deleted again in the same
transaction, so a refused or repeated trigger leaves nothing behind. LAST_ONLY locks the
users and cancels their waiting steps before inserting (one UPDATE).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, models, router, transaction

from transmissions import db, idempotency, signals, wakeup
from transmissions.behaviors import TriggerBehavior
from transmissions.exceptions import InvalidTrigger
from transmissions.lifecycle import notification_model
from transmissions.trigger import check_user, refuse_missing_users, shared_values, short_uuid


def users_of(users: Any) -> list[Any]:
    """Return ``users`` as a list of saved users; raise InvalidTrigger otherwise."""
    if isinstance(users, models.Model | str | bytes) or not isinstance(users, Iterable):
        raise InvalidTrigger(
            f"users must be an iterable of users, not {type(users).__name__}; for one user, use trigger()."
        )
    found: list[Any] = list(users)
    user_model = get_user_model()
    for user in found:
        check_user(user, "each of users", user_model)
    return found


def write_events(
    escalation: Any,
    users: Sequence[Any],
    trigger_user: Any,
    content: Any,
    data: Any,
    datetime_scheduled: datetime.datetime | None,
    keys: Sequence[str | None] | None,
) -> list[list[Any]]:
    """Write the events of ``escalation`` for ``users`` (each once, validated), ``keys`` their
    idempotency keys (or None); return, in the users' order, each user's steps in step order:
    the new ones, or those of the event a live key names. Users the behaviour refuses are left
    out."""
    behavior: TriggerBehavior = escalation.behavior
    if content is None and behavior.per_content:
        raise InvalidTrigger(f"Escalation {escalation.name!r} is {behavior.name}: give it a saved content.")
    first = shared_values(escalation.steps[0].message, trigger_user, datetime_scheduled, content, data)
    start = first["datetime_scheduled"]
    steps = escalation.steps
    shared = [shared_values(s.message, trigger_user, start + s.after, content, data) for s in steps]
    content_key = None if first["content_type_id"] is None else (first["content_type_id"], first["object_id"])
    replaces = behavior is TriggerBehavior.LAST_ONLY
    events = []
    for index, user in enumerate(users):
        group = short_uuid()
        rows = [
            dict(values, uuid=short_uuid(), target_user_id=user.pk, dedup_key=None, escalation=group)
            for values in shared
        ]
        if not replaces:
            rows[-1]["dedup_key"] = behavior.dedup_key(escalation.name, user.pk, content_key)
        if keys is not None:
            for row in rows:  # one INSERT takes rows of one shape
                row["idempotency_key"] = None
            rows[-1]["idempotency_key"] = keys[index]
        events.append(rows)
    model = notification_model()
    using = router.db_for_write(model)
    dialect = db.dialect(using, model)
    manager = model._default_manager.using(using)
    keyed = keys is not None or any(rows[-1]["dedup_key"] for rows in events)

    def insert(rows: Sequence[dict[str, Any]], skip_conflicts: bool) -> list[Any]:
        chunk = max(1, dialect.max_params() // (len(rows[0]) + 1)) if rows else 1
        parts = (rows[at : at + chunk] for at in range(0, len(rows), chunk))
        return [n for part in parts for n in dialect.insert(part, skip_conflicts)]

    by_group = {rows[-1]["escalation"]: rows for rows in events}
    created: list[Any] = []

    def insert_events(heads: Sequence[dict[str, Any]]) -> list[Any]:
        # Every step in step order (so primary keys follow the steps: the inbox lists an event
        # by its earliest sent step); only a head can conflict. The steps of an event whose
        # head was refused are deleted again: the trigger leaves nothing behind.
        if replaces:
            manager.filter(
                target_user_id__in=[row["target_user_id"] for row in heads],
                trigger_name__in=escalation.trigger_names,
                escalation__isnull=False,
            ).cancel(f"replaced by a newer trigger of escalation {escalation.name!r} (LAST_ONLY)")
        made = insert([row for head in heads for row in by_group[head["escalation"]]], keyed)
        uuids = {head["uuid"] for head in heads}
        went_in = {n.escalation for n in made if n.uuid in uuids}
        orphans = [n.pk for n in made if n.escalation not in went_in]
        if orphans:
            manager.filter(pk__in=orphans).delete()
        created.extend(n for n in made if n.escalation in went_in)
        return [n for n in made if n.uuid in uuids]

    existing: dict[str, Any] = {}
    try:
        with transaction.atomic(using=using):
            if replaces or keys is not None:
                # In key order, all at once: two fan-outs never deadlock (see trigger_many).
                dialect.lock_users([user.pk for user in users])
            heads = [rows[-1] for rows in events]
            if keys is not None:
                # The holders looked up first (as for LAST_ONLY): a repeated key inserts nothing
                # to delete again, and never cancels (LAST_ONLY) the event it names.
                _, existing = idempotency.write(manager, heads, insert_events, replaces=True)
            else:
                insert_events(heads)
    except IntegrityError:
        refuse_missing_users(using, users, trigger_user)
        raise
    wakeup.after_commit(using, created)
    if signals.notifications_created.has_listeners():
        by_name = defaultdict(list)
        for n in created:
            by_name[n.trigger_name].append(n)
        for step in steps:
            if by_name[step.message.trigger_name]:
                signals.notifications_created.send(
                    sender=step.message, notifications=by_name[step.message.trigger_name]
                )
    by_event = _by_event(created)
    if existing:
        held = [n.escalation for n in existing.values() if n.escalation]
        by_event.update(_by_event(manager.filter(escalation__in=held)) if held else {})
    order = {name: i for i, name in enumerate(escalation.trigger_names)}
    answer = []
    for rows in events:
        key = rows[-1].get("idempotency_key")
        holder = existing.get(key) if key else None
        if holder is not None:
            found = by_event.get(holder.escalation) if holder.escalation else [holder]
        else:
            found = by_event.get(rows[-1]["escalation"])
        if found:
            answer.append(sorted(found, key=lambda n: (order.get(n.trigger_name, len(order)), n.pk)))
    return answer


def _by_event(notifications: Iterable[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = defaultdict(list)
    for n in notifications:
        found[n.escalation].append(n)
    return found
