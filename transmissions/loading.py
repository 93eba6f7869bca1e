"""Turn the rows a claim returned into Notification instances, users attached, cheaply.

On PostgreSQL and SQLite the claim's ``UPDATE ... RETURNING`` hands back every
column of the claimed rows, so no second query fetches them. The values go through
the same converters Django's ORM would apply (skipped for NULLs, which they leave
alone) and ``Model.from_db``; the users come in one query for the whole batch and
content in one prefetch per content type, so a batch costs the same number of
queries whatever its size.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import prefetch_related_objects
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init

from transmissions.models import Notification

FIELDS = Notification._meta.concrete_fields
ATTNAMES = [field.attname for field in FIELDS]
_TARGET_USER = Notification._meta.get_field("target_user")
_TRIGGER_USER = Notification._meta.get_field("trigger_user")

Converter = Callable[[Any, Any, Any], Any]


def returning_columns(connection: Any, alias: str = "") -> str:
    """The RETURNING list of a claim: every column, in ``ATTNAMES`` order."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + connection.ops.quote_name(field.column) for field in FIELDS)


@functools.lru_cache(maxsize=8)
def _converters(alias: str, vendor: str) -> list[tuple[int, list[tuple[Converter, Any]]]]:
    # What the ORM's compiler would apply to each selected column.
    connection = connections[alias]
    table = Notification._meta.db_table
    out = []
    for i, field in enumerate(FIELDS):
        col = field.get_col(table)
        funcs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if funcs:
            out.append((i, [(func, col) for func in funcs]))
    return out


def build(using: str | None, values: list[Any]) -> Notification:
    """A Notification from ``values`` in ``ATTNAMES`` order: loaded from ``using``, or
    unsaved when ``using`` is None.

    The same instance ``Model.from_db`` (or ``Notification(*values)``) gives, without
    their per-field setattr loop when nothing listens to Notification's
    pre_init/post_init signals.
    """
    if pre_init.has_listeners(Notification) or post_init.has_listeners(Notification):
        if using is None:
            return Notification(*values)
        return Notification.from_db(using, ATTNAMES, values)
    notification = Notification.__new__(Notification)
    state = ModelState()
    if using is not None:
        state.adding, state.db = False, using
    notification._state = state
    notification.__dict__.update(zip(ATTNAMES, values, strict=True))
    return notification


def notifications_from_rows(using: str, rows: Sequence[Sequence[Any]]) -> list[Notification]:
    """Build the batch from returned rows, oldest schedule first, users and content attached."""
    connection = connections[using]
    converters = _converters(using, connection.vendor)
    batch = []
    for row in rows:
        values = list(row)
        for i, funcs in converters:
            value = values[i]
            if value is not None:
                for func, col in funcs:
                    value = func(value, col, connection)
                values[i] = value
        batch.append(build(using, values))
    batch.sort(key=lambda n: (n.datetime_scheduled, n.pk))
    attach_related(using, batch)
    return batch


def attach_related(using: str, batch: list[Notification]) -> None:
    """Cache target and trigger users (one query) and content (one per content type)."""
    user_ids = {n.target_user_id for n in batch} | {n.trigger_user_id for n in batch}
    user_ids.discard(None)
    # The base manager, as select_related uses: a filtering default manager must not hide users.
    users = get_user_model()._base_manager.using(using).in_bulk(list(user_ids))
    for n in batch:
        target = users.get(n.target_user_id)
        if target is not None:
            _TARGET_USER.set_cached_value(n, target)
        trigger_user = None if n.trigger_user_id is None else users.get(n.trigger_user_id)
        if trigger_user is not None or n.trigger_user_id is None:
            _TRIGGER_USER.set_cached_value(n, trigger_user)
    if any(n.content_type_id is not None for n in batch):
        prefetch_related_objects(batch, "content")
