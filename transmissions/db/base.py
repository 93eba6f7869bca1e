"""The portable dialect: the ORM only. Vendor modules override what they do in fewer round trips."""

from __future__ import annotations

import contextlib
import datetime
import functools
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Case, CharField, DateTimeField, F, Model, PositiveSmallIntegerField, Value, When

from transmissions import internals
from transmissions.exceptions import InvalidTrigger
from transmissions.status import ATTEMPTS_MAX, Status


def wanted_by(notification: Model) -> set[Any]:
    """The user ids a notification row refers to."""
    ids = {getattr(notification, "target_user_id"), getattr(notification, "trigger_user_id")}  # noqa: B009
    ids.discard(None)
    return ids


# Users locked per statement (well under every database's parameter limit).
LOCK_CHUNK = 5000


class Dialect:
    """What the app asks of a database, in the ORM's portable terms.

    ``model`` is the notification model; every method works on its table.
    """

    vendor = "portable"

    def __init__(self, connection: BaseDatabaseWrapper, model: type[Model], signals: bool = False) -> None:
        self.connection = connection
        self.alias = connection.alias
        self.model = model
        # Someone listens to the model's pre_save/post_save: inserts go through save().
        self.signals = signals

    @property
    def manager(self) -> Any:
        return self.model._default_manager.using(self.alias)

    # True while trigger() or trigger_many() runs from outside any transaction: every
    # transaction opened meanwhile is transmissions' own, whose COMMIT (or the statement's, in
    # autocommit) checks the foreign keys; that IntegrityError, raised inside the call, turns
    # into InvalidTrigger there. So an INSERT then need not make sure its users exist: only
    # one in the caller's transaction does (``checks_users()``), whose COMMIT would be too late.
    own_transaction = False

    @contextlib.contextmanager
    def own_transactions(self) -> Iterator[None]:
        """Mark what runs inside as transmissions' own transaction when no transaction is
        open on entering (the caller holds none); else change nothing."""
        if self.own_transaction or not self.connection.get_autocommit():
            yield
            return
        self.own_transaction = True
        try:
            yield
        finally:
            self.own_transaction = False

    def checks_users(self) -> bool:
        """Whether an INSERT now must make sure its users exist itself.

        In the caller's transaction the foreign keys wait for its COMMIT (deferred, on
        PostgreSQL and SQLite): there, a row whose user is gone must be refused at the call
        (InvalidTrigger), not fail the caller's COMMIT with IntegrityError (ReturningDialect
        leaves it out of the INSERT, ``users_exist()``; the portable path asks afterwards).
        Outside a transaction, or in transmissions' own, the statement's or that transaction's
        commit checks them inside the call, and trigger.py turns that IntegrityError into
        InvalidTrigger.
        """
        return not self.own_transaction and not internals.autocommit(self.connection)

    def lost_race(self, exc: Exception) -> bool:
        """Whether ``exc`` is the database undoing a transaction transmissions opened itself
        (none of the caller's around it) to break a race between triggers, so that going
        round again is right. Never here; on MySQL/MariaDB an InnoDB deadlock."""
        return False

    # -- trigger ---------------------------------------------------------------------

    def max_params(self) -> int:
        """The most parameters one statement may carry."""
        return int(self.connection.features.max_query_params or 65535)

    def insert(self, rows: Sequence[dict[str, Any]], skip_conflicts: bool) -> list[Model]:
        """INSERT ``rows`` (attribute values; the others take their defaults); return the
        saved instances of those inserted, in order.

        With ``skip_conflicts`` a row whose ``dedup_key`` is an active key already (or whose
        ``idempotency_key``, when the rows have one, is taken) is left out, not an error.
        Here: one ``save()`` per row, each in a savepoint when the caller is in a
        transaction, so that a refused row never breaks it.
        """
        saved = []
        for row in rows:
            instance = self.model(**row)
            try:
                if self.connection.in_atomic_block:
                    with transaction.atomic(using=self.alias):
                        instance.save(force_insert=True, using=self.alias)
                else:
                    instance.save(force_insert=True, using=self.alias)
            except IntegrityError:
                if not skip_conflicts or not self._taken(row):
                    raise
                continue
            saved.append(instance)
        if saved and self.checks_users() and self.connection.features.can_defer_constraint_checks:
            # The foreign keys are checked at COMMIT: a user deleted meanwhile would fail the
            # caller's whole transaction there. One query, on this (already slow) path only.
            self.refuse_orphans(self.orphans(saved))
        return saved

    def orphans(self, saved: Sequence[Model]) -> list[Any]:
        """The ids of ``saved`` whose target or trigger user does not exist."""
        wanted: set[Any] = set().union(*(wanted_by(n) for n in saved))
        users = get_user_model()._base_manager.using(self.alias)
        found = set(users.filter(pk__in=wanted).values_list("pk", flat=True))
        return [n.pk for n in saved if not wanted_by(n) <= found]

    def refuse_orphans(self, ids: Sequence[Any]) -> None:
        """Delete the rows of ``ids`` just inserted, whose users do not exist, and raise
        InvalidTrigger: nothing of the trigger stays written."""
        if not ids:
            return
        self.manager.filter(pk__in=list(ids)).delete()
        raise InvalidTrigger(
            "the user to notify (or the trigger user) does not exist: deleted since it was loaded? "
            "Nothing was written."
        )

    def _taken(self, row: dict[str, Any]) -> bool:
        """Whether another row holds ``row``'s dedup key (as its active key), idempotency key
        or throttle slot."""
        names = (
            ("dedup_key", "active_key"),
            ("idempotency_key", "idempotency_key"),
            ("throttle_slot", "throttle_slot"),
        )
        for name, column in names:
            key = row.get(name)
            if key is not None and self.manager.filter(**{column: key}).exists():
                return True
        return False

    def slot_holders(self, slots: Sequence[str]) -> list[tuple[Any, str, Any]]:
        """``(id, throttle_slot, datetime_scheduled)`` of the rows that hold any of ``slots``:
        plain SQL, which a throttled trigger runs each time (the ORM's compiling of the same
        SELECT cost more than the INSERT)."""
        marks = ", ".join(["%s"] * len(slots))
        slot = self.column("throttle_slot")
        sql = (
            f"SELECT {self.quote('id')}, {slot}, {self.column('datetime_scheduled')} "  # noqa: S608 - names only
            f"FROM {self.table} WHERE {slot} IN ({marks})"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, list(slots))
            rows = cursor.fetchall()
        # The backend's own converter (SQLite and MySQL return naive or text datetimes).
        convert = getattr(self.connection.ops, "convert_datetimefield_value", None)
        if convert is None:
            return [tuple(row) for row in rows]
        return [(pk, slot, convert(at, None, self.connection)) for pk, slot, at in rows]

    def lock_open_digest(self, key: str) -> Model | None:
        """Return the waiting digest that holds ``key`` (its ``dedup_key``), locked until the
        transaction ends (a claim passes it by, or waits); None when no digest of the key waits.

        Here: find it by the unique key without a lock, then lock it by primary key, still
        waiting and holding the key. A locking read of a key nobody holds would take a gap
        lock on InnoDB, and two triggers opening the same digest would deadlock on it.
        """
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {self.quote('id')} FROM {self.table} WHERE {self.column('active_key')} = %s",  # noqa: S608
                [key],
            )
            found = cursor.fetchone()
        if found is None:
            return None
        return self.locked_digest(
            f"{self.quote('id')} = %s AND {self.column('dedup_key')} = %s", [found[0], key]
        )

    def locked_digest(self, where: str, params: list[Any]) -> Model | None:
        """The waiting row that matches ``where``, read and locked in one plain SELECT (the ORM's
        compiling of it cost more than the rest of a digest's trigger)."""
        loads = internals.can_load_rows()
        zoned = loads and self.zoned_text()
        columns = self.all_columns(zoned=zoned) if loads else self.quote("id")
        sql = (
            f"SELECT {columns} FROM {self.table} WHERE {where} AND {self.column('status')} = %s "  # noqa: S608
            f"AND {self.column('datetime_processed')} IS NULL LIMIT 1{self.row_lock()}"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [*params, Status.CREATED])
            row = cursor.fetchone()
        if row is None:
            return None
        if loads:
            return self.load([row], zoned)[0]
        found: Model = self.manager.get(pk=row[0])
        return found

    def row_lock(self) -> str:
        """The clause that locks the rows a SELECT reads, against a claim ("" on SQLite)."""
        features = self.connection.features
        if not features.has_select_for_update:
            return ""
        return " FOR NO KEY UPDATE" if features.has_select_for_no_key_update else " FOR UPDATE"

    def insert_plain(self, model: type[Model], values: dict[str, Any]) -> None:
        """INSERT one row of ``model`` (``values`` by attribute name): plain SQL, no ``save()``."""
        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        fields = [by_attname[name] for name in values]
        names = ", ".join(self.quote(str(f.column)) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        pairs = zip(fields, values.values(), strict=True)
        params = [f.get_db_prep_save(v, self.connection) for f, v in pairs]
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {self.quote(model._meta.db_table)} ({names}) VALUES ({marks})",  # noqa: S608
                params,
            )

    def lock_users(self, user_ids: Sequence[Any]) -> None:
        """Lock these users' rows until the transaction ends, in primary-key order.

        LAST_ONLY triggers for one user queue on the user's row, so each one cancels
        what the previous one inserted. Without it, concurrent triggers collide on the
        key and retry, and under load one gave up (seen with 8 processes). NO KEY
        UPDATE (PostgreSQL) leaves other inserts' foreign-key checks on the user
        unblocked; the key order keeps two fan-outs from deadlocking.
        """
        features = self.connection.features
        if not features.has_select_for_update or not user_ids:
            return
        users = get_user_model()._default_manager.using(self.alias)
        ordered = sorted(set(user_ids))
        for start in range(0, len(ordered), LOCK_CHUNK):
            list(
                users.select_for_update(no_key=features.has_select_for_no_key_update)
                .filter(pk__in=ordered[start : start + LOCK_CHUNK])
                .order_by("pk")
                .values_list("pk", flat=True)
            )

    # -- lifecycle -------------------------------------------------------------------

    def claim(
        self, batch_size: int, now: datetime.datetime, lease: datetime.datetime, release_prefix: str
    ) -> list[Model]:
        """Move up to ``batch_size`` due rows to PROCESSING under ``lease`` and return them,
        oldest schedule first.

        Each claimed row counts one more attempt and loses a ``dedup_key`` that starts
        with ``release_prefix``. Here: SELECT ... FOR UPDATE SKIP LOCKED where the
        database has it, then an UPDATE of those ids, then the rows through the ORM.
        """
        features = self.connection.features
        with transaction.atomic(using=self.alias):
            due = self.manager.filter(
                status=Status.CREATED, datetime_scheduled__lte=now, datetime_processed__isnull=True
            ).order_by("datetime_scheduled")
            if features.has_select_for_update_skip_locked:
                due = due.select_for_update(skip_locked=True)
            ids = list(due.values_list("pk", flat=True)[:batch_size])
            if ids:
                self.manager.filter(pk__in=ids, status=Status.CREATED).update(
                    **self.claim_values(lease, release_prefix)
                )
        return self.fetch(ids)

    def claim_values(self, lease: datetime.datetime, release_prefix: str) -> dict[str, Any]:
        """What a claim sets, as ``update()`` arguments: PROCESSING under ``lease``, one more
        attempt (capped), and no ``dedup_key`` that starts with ``release_prefix``."""
        return {
            "status": Status.PROCESSING,
            "claimed_until": lease,
            "attempts": Case(
                When(attempts__lt=ATTEMPTS_MAX, then=F("attempts") + 1),
                default=F("attempts"),
                output_field=PositiveSmallIntegerField(),
            ),
            "dedup_key": Case(
                When(dedup_key__startswith=release_prefix, then=Value(None)),
                default=F("dedup_key"),
            ),
        }

    def fetch(self, ids: Sequence[int]) -> list[Model]:
        """Return the rows of ``ids``, oldest schedule first."""
        if not ids:
            return []
        return list(self.manager.filter(pk__in=ids).order_by("datetime_scheduled", "pk"))

    def finish(
        self,
        ids: Sequence[int],
        status: int,
        now: datetime.datetime,
        lease: datetime.datetime | None,
        release_key: bool,
        reasons: dict[int, str],
        provider_ids: dict[int, str] | None = None,
    ) -> int:
        """Write final ``status`` on the rows of ``ids`` still PROCESSING under ``lease``, each
        with its reason (``reasons``, "" for the others) and the provider's id of the message
        (``provider_ids``, unchanged for the others); return how many. Rows taken back
        meanwhile are left alone."""
        held = self.manager.filter(pk__in=ids, status=Status.PROCESSING)
        if lease is not None:
            held = held.filter(claimed_until=lease)
        reason: Any = Value("")
        if reasons:
            whens = [When(pk=pk, then=Value(text)) for pk, text in reasons.items()]
            reason = Case(*whens, default=Value(""), output_field=CharField())
        values: dict[str, Any] = {
            "status": status,
            "datetime_processed": now,
            "claimed_until": None,
            "reason": reason,
        }
        if provider_ids:
            whens = [When(pk=pk, then=Value(text)) for pk, text in provider_ids.items()]
            values["provider_message_id"] = Case(
                *whens, default=F("provider_message_id"), output_field=CharField()
            )
        if release_key:
            values["dedup_key"] = None
        return int(held.update(**values))

    # -- helpers for the vendor modules ------------------------------------------------

    def quote(self, name: str) -> str:
        return str(self.connection.ops.quote_name(name))

    @property
    def table(self) -> str:
        return self.quote(self.model._meta.db_table)

    def column(self, attname: str) -> str:
        field = next(f for f in self.model._meta.concrete_fields if f.attname == attname)
        return self.quote(str(field.column))

    def all_columns(self, alias: str = "", zoned: bool = False, model: type[Model] | None = None) -> str:
        """Every concrete column of ``model`` (the notification model by default), in field
        order: what a claim returns. A datetime column is read in the form ``datetime_form()``
        gives for ``zoned``, which is ``zoned_text()``'s answer, asked once by the caller."""
        prefix = f"{alias}." if alias else ""
        form = self.datetime_form(zoned)
        model = model or self.model
        dated = _datetime_attnames(model)
        return ", ".join(
            (form if f.attname in dated else "{}").format(prefix + self.quote(str(f.column)))
            for f in model._meta.concrete_fields
        )

    def datetime_form(self, zoned: bool = False) -> str:
        """How ``all_columns()`` reads a datetime column ``{}``: as the driver types it, here;
        a dialect may read it as text that ``internals.load_rows()`` parses faster (with
        ``zoned``, text that carries its UTC offset)."""
        return "{}"

    @property
    def _datetime_columns(self) -> frozenset[str]:
        return _datetime_attnames(self.model)

    def adapt_datetime(self, value: Any) -> Any:
        return self.connection.ops.adapt_datetimefield_value(value)

    def zoned_text(self) -> bool:
        """Whether datetime columns may be read as text carrying their UTC offset now (asked
        once per statement: the answer goes to ``all_columns()`` and ``load()``)."""
        return False

    def load(self, rows: Sequence[Sequence[Any]], zoned: bool = False) -> list[Model]:
        """Instances from rows of every column (what a claim's RETURNING gave, read with
        ``zoned``), oldest schedule first."""
        batch = internals.load_rows(self.model, self.alias, rows, zoned_text=zoned)
        batch.sort(key=lambda n: (getattr(n, "datetime_scheduled"), n.pk))  # noqa: B009
        return batch

    # -- users -------------------------------------------------------------------------

    def users(self, ids: Collection[Any]) -> dict[Any, Model]:
        """The users of ``ids``, by primary key, read through the user model's base manager
        (as ``select_related()`` reads them: a filtering default manager hides none)."""
        return dict(get_user_model()._base_manager.using(self.alias).in_bulk(list(ids)))

    def suppressed(
        self, model: type[Model], channels: Collection[str], addresses: Collection[str]
    ) -> dict[tuple[str, str], str]:
        """The reasons of ``model``'s rows (the suppression list) whose channel is one of
        ``channels`` and address one of ``addresses``, by ``(channel, address)``."""
        rows = model._default_manager.using(self.alias).filter(channel__in=channels, address__in=addresses)
        return {(channel, address): reason for channel, address, reason in rows.values_list(*SUPPRESSED)}


# What a suppression list's look-up reads of each row (``suppressed()``).
SUPPRESSED = ("channel", "address", "reason")


@functools.cache
def _datetime_attnames(model: type[Model]) -> frozenset[str]:
    return frozenset(f.attname for f in model._meta.concrete_fields if isinstance(f, DateTimeField))
