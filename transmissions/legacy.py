"""Dedup keys for the rows transmissions 0.2 wrote: ``manage.py fill_dedup_keys`` and check W101.

Migration 0005 converts 0.2's rows but cannot give them dedup keys: a key depends on the
message's behaviour, and behaviours live in code (the registered ``@message`` classes),
not in the database. So 0005 records the highest id 0.2 wrote in a one-row table
(``transmissions_upgrade``, see transmissions/upgrade.py); :func:`fill_dedup_keys` gives
each of those rows the key today's code would have given it and drops the table; while
the table exists, :func:`check_legacy_keys` warns (``transmissions.W101``).

A row gets a key when its behaviour holds one in its status, as in today's lifecycle:
pending TRIGGER_ONCE(_PER_CONTENT) rows their ``t:`` key, pending or sent
SEND_ONCE(_PER_CONTENT) rows their ``s:`` key, waiting LAST_ONLY rows their ``l:`` key.
Two 0.2 rows that want the same key (0.2 checked without a lock, so races left some) keep
one key, on the oldest; the others are reported, never an error.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.core import checks
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Case, F, Value, When

from transmissions.behaviors import TriggerBehavior
from transmissions.lifecycle import notification_model
from transmissions.registry import registry
from transmissions.status import Status
from transmissions.upgrade import STATE_TABLE

# Every status in which some behaviour holds a key.
_HOLDING = (Status.CREATED, Status.PROCESSING, Status.SUCCESSFULLY_SENT)


def key_statuses(behavior: TriggerBehavior) -> tuple[int, ...]:
    """The statuses in which a row of ``behavior`` holds its dedup key (none: no key)."""
    if behavior.key_prefix is None:
        return ()
    if behavior is TriggerBehavior.LAST_ONLY:
        return (Status.CREATED,)  # released when a worker claims it
    if behavior.keeps_key_when_sent:
        return (Status.CREATED, Status.PROCESSING, Status.SUCCESSFULLY_SENT)
    return (Status.CREATED, Status.PROCESSING)


@dataclass
class FillReport:
    """What :func:`fill_dedup_keys` did, by trigger name."""

    legacy_max_id: int | None = None
    behaviors: dict[str, TriggerBehavior] = field(default_factory=dict)
    keys: Counter[str] = field(default_factory=Counter)
    duplicates: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    no_content: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    unregistered: Counter[str] = field(default_factory=Counter)


def pending_upgrade(using: str) -> tuple[int, int] | None:
    """``(highest id 0.2 wrote, ids done so far)`` while 0.2's rows wait for keys, else None."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if STATE_TABLE not in connection.introspection.table_names(cursor):
            return None
        q = connection.ops.quote_name
        cursor.execute(f"SELECT {q('legacy_max_id')}, {q('keys_done_upto')} FROM {q(STATE_TABLE)}")  # noqa: S608
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def fill_dedup_keys(using: str = "default", batch_size: int = 2000) -> FillReport:
    """Give 0.2's rows their dedup keys, ``batch_size`` ids per transaction; resumable."""
    state = pending_upgrade(using)
    report = FillReport()
    if state is None:
        return report
    report.legacy_max_id, start = state
    while start < report.legacy_max_id:
        end = min(start + batch_size, report.legacy_max_id)
        with transaction.atomic(using=using):
            _fill_range(using, start, end, report)
            _set_done(using, end)
        start = end
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {connection.ops.quote_name(STATE_TABLE)}")
    return report


def _fill_range(using: str, start: int, end: int, report: FillReport) -> None:
    rows = (
        notification_model()
        .objects.using(using)
        .filter(pk__gt=start, pk__lte=end, dedup_key__isnull=True, status__in=_HOLDING)
        .order_by("pk")
        .values_list("pk", "trigger_name", "target_user_id", "content_type_id", "object_id", "status")
    )
    wanted: dict[int, tuple[str, str, tuple[int, ...]]] = {}
    for pk, name, user_id, content_type_id, object_id, status in rows:
        if name not in registry:
            report.unregistered[name] += 1
            continue
        behavior = TriggerBehavior.coerce(getattr(registry.get(name), "behavior", None))
        report.behaviors[name] = behavior
        statuses = key_statuses(behavior)
        if status not in statuses:
            continue
        if behavior.per_content and content_type_id is None:
            report.no_content[name].append(pk)
            continue
        content = (content_type_id, object_id or "") if content_type_id is not None else None
        key = behavior.dedup_key(name, user_id, content)
        assert key is not None  # behaviours with statuses have a prefix
        wanted[pk] = (name, key, statuses)
    # Oldest first: of two rows that want one key, the older keeps it (an older row of an
    # earlier batch holds it already).
    keys = [key for _, key, _ in wanted.values()]
    taken = set(
        notification_model()
        .objects.using(using)
        .filter(active_key__in=keys)
        .values_list("active_key", flat=True)
    )
    chosen: dict[int, tuple[str, str, tuple[int, ...]]] = {}
    for pk, (name, key, statuses) in wanted.items():
        if key in taken:
            report.duplicates[name].append(pk)
        else:
            taken.add(key)
            chosen[pk] = (name, key, statuses)
    if chosen:
        _write_keys(using, chosen, report)


def _write_keys(using: str, chosen: dict[int, tuple[str, str, tuple[int, ...]]], report: FillReport) -> None:
    # A row's key is set only if it still has none and still holds one in its status: a
    # worker may have finished it since it was read.
    rows = notification_model().objects.using(using).filter(pk__in=list(chosen), dedup_key__isnull=True)
    try:
        with transaction.atomic(using=using):
            rows.update(
                dedup_key=Case(
                    *(
                        When(pk=pk, status__in=statuses, then=Value(key))
                        for pk, (_, key, statuses) in chosen.items()
                    ),
                    default=F("dedup_key"),
                )
            )
    except IntegrityError:
        # A row triggered since the keys were read took one of them: row by row, to find which.
        for pk, (name, key, statuses) in chosen.items():
            try:
                with transaction.atomic(using=using):
                    rows.filter(pk=pk, status__in=statuses).update(dedup_key=key)
            except IntegrityError:
                report.duplicates[name].append(pk)
    keyed = notification_model().objects.using(using).filter(pk__in=list(chosen), dedup_key__isnull=False)
    for pk in keyed.values_list("pk", flat=True):
        report.keys[chosen[pk][0]] += 1


def _set_done(using: str, upto: int) -> None:
    connection = connections[using]
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {q(STATE_TABLE)} SET {q('keys_done_upto')} = %s", [upto])  # noqa: S608


def check_legacy_keys(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """W101: rows written by transmissions 0.2 do not hold their dedup keys yet.

    A database check (``migrate`` and ``check --database`` run those): one catalog query
    and a one-row SELECT per database while the upgrade's table exists.
    """
    if app_configs is not None and not any(c.name == "transmissions" for c in app_configs):
        return []
    warnings: list[checks.CheckMessage] = []
    for alias in databases or ():
        if not router.allow_migrate_model(alias, notification_model()):
            continue
        state = pending_upgrade(alias)
        if state is None:
            continue
        highest, done = state
        warnings.append(
            checks.Warning(
                f"Database {alias!r}: rows written by transmissions 0.2 (ids up to {highest}, "
                f"done up to {done}) do not hold their dedup keys yet, so TRIGGER_ONCE, SEND_ONCE "
                "and LAST_ONLY do not see them and may send again.",
                hint=f"Run `python manage.py fill_dedup_keys --database {alias}` (docs/upgrading.md).",
                id="transmissions.W101",
            )
        )
    return warnings
