"""Loading notifications' related objects so that one bad row never costs the others.

A worker's batch, the inbox and the admin fetch the users and the ``content`` of many
notifications at once: the users in one query, the contents in one query per content
type. A plain ``prefetch_related("content")`` raises for the whole list when one row's
content type has no model any more (its app was removed) or its ``object_id`` does not
fit the model's key (the admin lets staff type it): then a whole batch stayed
PROCESSING, and a user's inbox answered 500. Here such a row is set aside: its
``content`` reads ``None`` and ``content_problem()`` says why (the worker ends it
BROKEN with that reason; the inbox shows it without its content). A deleted object
reads ``None`` too, as always, but is no problem.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import prefetch_related_objects

from transmissions import db, internals

logger = logging.getLogger("transmissions")

# Where a notification keeps why its content cannot be loaded (None: it can).
_PROBLEM = "_transmissions_content_problem"
# Where a digest keeps its items (``Notification.digest_items``), once loaded.
DIGEST_ITEMS = "_transmissions_digest_items"


def attach(using: str, notifications: Sequence[Any]) -> None:
    """Cache the target and trigger users (one query, when a row's user is first read) and
    the contents (one query per content type) of ``notifications``; a row whose content
    cannot be loaded gets ``None``."""
    if not notifications:
        return
    rows = list(notifications)
    # The users on first read, for the whole batch at once (a channel that never reads them
    # costs no query), where the shortcut can; now otherwise. The loader, which every row
    # holds, holds the rows weakly: no reference cycle keeps a finished batch in memory.
    refs = [weakref.ref(n) for n in rows]

    def load() -> None:
        attach_users(using, [n for n in (ref() for ref in refs) if n is not None])

    if not internals.defer_related(rows, load):
        attach_users(using, rows)
    attach_contents(notifications, using)
    attach_digest_items(using, rows)


def attach_digest_items(using: str, notifications: Sequence[Any]) -> None:
    """Cache the items of the digests among ``notifications`` (``Notification.digest_items``),
    in order, with their trigger users: one query for them all, and one per content type of
    their contents. Nothing for a batch without digests."""
    digests = {n.pk: n for n in notifications if n.digest_key is not None}
    if not digests:
        return
    items_of: dict[Any, list[Any]] = {pk: [] for pk in digests}
    items = list(
        apps.get_model("transmissions", "DigestItem")
        ._default_manager.using(using)
        .filter(digest_id__in=list(digests))
        .select_related("trigger_user")
        .order_by("pk")
    )
    for item in items:
        items_of[item.digest_id].append(item)
    for pk, notification in digests.items():
        notification.__dict__[DIGEST_ITEMS] = items_of[pk]
    attach_contents(items, using)


def attach_users(using: str, notifications: Sequence[Any]) -> None:
    """Cache the target and trigger users of ``notifications``, in one query."""
    model = type(notifications[0])
    set_target = internals.related_setter(model._meta.get_field("target_user"))
    set_trigger = internals.related_setter(model._meta.get_field("trigger_user"))
    user_ids = {n.target_user_id for n in notifications} | {n.trigger_user_id for n in notifications}
    user_ids.discard(None)
    users = db.dialect(using, model).users(user_ids)
    for n in notifications:
        target = users.get(n.target_user_id)
        if target is not None:
            set_target(n, target)
        trigger_user = None if n.trigger_user_id is None else users.get(n.trigger_user_id)
        if trigger_user is not None or n.trigger_user_id is None:
            set_trigger(n, trigger_user)


def attach_contents(notifications: Iterable[Any], using: str | None = None) -> None:
    """Cache the ``content`` of ``notifications``, one query per content type.

    A row whose content type has no model, or whose ``object_id`` does not fit the
    model's primary key, gets ``None`` and a ``content_problem()``; the others are
    fetched as ``prefetch_related_objects(..., "content")`` would.
    """
    rows = [n for n in notifications if n.content_type_id is not None]
    if not rows:
        return
    field = rows[0]._meta.get_field("content")
    good = []
    for n in rows:
        problem = _problem(n, using)
        n.__dict__[_PROBLEM] = problem
        if problem is None:
            good.append(n)
        else:
            logger.warning("Notification %s: its content cannot be loaded: %s.", n.pk, problem)
            internals.cache_generic(n, field, None)
    if good:
        prefetch_related_objects(good, "content")


def _problem(notification: Any, using: str | None) -> str | None:
    # Through the app registry: this module is imported before the models are ready.
    content_types = apps.get_model("contenttypes", "ContentType").objects
    content_type = content_types.db_manager(using).get_for_id(notification.content_type_id)
    model = content_type.model_class()
    if model is None:
        return f"content type {content_type.app_label}.{content_type.model} has no model any more"
    object_id = notification.object_id
    if object_id is None:
        return None
    pk = model._meta.pk
    assert pk is not None
    connection = connections[using or "default"]
    label = model._meta.label
    try:
        value = pk.get_db_prep_value(pk.to_python(object_id), connection, prepared=False)
    except (ValidationError, ValueError, TypeError, OverflowError) as exc:
        why = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return f"object_id {object_id!r} does not fit {label}'s primary key: {why}"
    low, high = connection.ops.integer_field_ranges.get(pk.get_internal_type(), (None, None))
    if low is not None and high is not None and isinstance(value, int) and not low <= value <= high:
        return f"object_id {object_id!r} is out of the range of {label}'s primary key"
    return None


def content_problem(notification: Any) -> str | None:
    """Return why the content of ``notification`` could not be loaded (None when it could,
    or was not loaded here)."""
    problem: str | None = notification.__dict__.get(_PROBLEM)
    return problem


def content(notification: Any) -> Any:
    """Return the ``content`` of ``notification``, or ``None`` when it is gone or cannot be
    loaded (never raises for a malformed row)."""
    if notification.content_type_id is None:
        return None
    if _PROBLEM not in notification.__dict__:
        attach_contents([notification], notification._state.db)
    if content_problem(notification) is not None:
        return None
    return notification.content
