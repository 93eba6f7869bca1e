"""Every shortcut that leans on Django internals, in one place, behind one setting.

Two hot paths cost more in Django's generic machinery than in the database: building
model instances for rows the app already holds (a claimed batch, a triggered row)
and remembering, per transaction, that a wake-up is already queued. The shortcuts
below do the same work as the public APIs they replace:

- ``build()``: ``Model.__new__`` plus a hand-made ``ModelState`` instead of
  ``Model.from_db()``/``Model.__init__`` (whose per-field ``setattr`` loop dominates
  building a batch);
- ``load_rows()``: the compiler's converters applied to rows an ``UPDATE ... RETURNING``
  handed back, instead of fetching those rows again through the ORM;
- ``cache_related()``: ``field.set_cached_value()`` instead of the descriptor's
  ``__set__`` (which checks the instance's database router on every call);
- ``listened()``: a signal with no receiver at all (its ``receivers`` list empty) has no
  listener, without ``has_listeners()``' look-up (``Signal.send()`` starts the same way);
- ``datetime_adapter()``: on SQLite, an aware datetime made naive in the connection's zone
  and written as text by the app itself, as the backend's ``adapt_datetimefield_value()``
  writes it, without that method's settings and time-zone look-ups (a trigger adapts two);
- ``autocommit()``: an open connection's ``autocommit`` attribute instead of
  ``get_autocommit()``, which first makes sure the connection is open;
- ``on_commit_once()``: reads ``connection.run_on_commit`` to queue one callback (one of
  each equal callback) per transaction (Django drops the callbacks of a rolled-back
  savepoint from that list);
- ``defer_related()``: a claimed batch's users are loaded (in one query, for the whole
  batch) when a row's ``target_user`` or ``trigger_user`` is first read, not with the claim:
  a channel that never reads them (in-app, a webhook) costs no users' query. It needs the
  foreign keys' descriptors to be ``ForwardManyToOneDescriptor`` subclasses whose
  ``get_object()`` asks the batch first (``install_deferred()``, from ``models.py``).

One more read of an internal has no public equivalent and is not a shortcut:
``write_db()``, the database a queryset's ``update()`` writes to (``.using()`` or the
router's choice), so that the lifecycle's transitions honour ``.using()``.

``TRANSMISSIONS_FAST_PATH = False`` turns every one of them off: the app then uses
only public APIs (``from_db()``, one more SELECT per claimed batch, plain attribute
assignment, one on-commit callback per trigger). The suite runs both ways; turn it
off if a Django release breaks a shortcut, and tell us. The shortcuts also step aside
by themselves when a project listens to Notification's ``pre_init``/``post_init``
signals, which only the public path sends.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Field, Model, QuerySet
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForwardManyToOneDescriptor
from django.db.models.signals import post_init, pre_init
from django.dispatch import Signal

from transmissions.conf import conf

M = TypeVar("M", bound=Model)
Converter = Callable[[Any, Any, Any], Any]


def enabled() -> bool:
    """Whether the shortcuts are on (``TRANSMISSIONS_FAST_PATH``, default True)."""
    return bool(conf.TRANSMISSIONS_FAST_PATH)


@functools.cache
def attnames(model: type[Model]) -> tuple[str, ...]:
    """The attribute names of ``model``'s concrete fields, in column order."""
    return tuple(field.attname for field in model._meta.concrete_fields)


def builder(model: type[M], using: str | None) -> Callable[[Sequence[Any]], M]:
    """Return a function that makes an instance of ``model`` from values in ``attnames()`` order.

    Loaded from database ``using`` (as ``Model.from_db()`` gives it), or unsaved when
    ``using`` is None (as ``Model(*values)`` gives it). Whether the shortcut applies is
    decided once, here, not per row.
    """
    if not enabled() or _listened(model, (pre_init, post_init)) or _own_from_db(model):
        names = attnames(model)
        if using is None:
            return lambda values: model(*values)
        return lambda values: model.from_db(using, list(names), list(values))
    return _builder(model, using)


@functools.cache
def _own_from_db(model: type[Model]) -> bool:
    # A model that overrides from_db() (a documented hook) gets its instances from it.
    return getattr(model.from_db, "__func__", None) is not Model.from_db.__func__  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=64)
def _builder(model: type[M], using: str | None) -> Callable[[Sequence[Any]], M]:
    names = attnames(model)
    new = model.__new__

    def build(values: Sequence[Any]) -> M:
        instance = new(model)
        state = ModelState()
        if using is not None:
            state.adding, state.db = False, using
        instance._state = state
        instance.__dict__.update(zip(names, values, strict=True))
        return instance

    return build


def build(model: type[M], values: Sequence[Any], using: str | None) -> M:
    """Return one instance of ``model`` from ``values``; see ``builder()``."""
    return builder(model, using)(values)


def listened(sender: Any, *signals: Signal) -> bool:
    """Whether any of ``signals`` has a receiver for ``sender`` (``Signal.has_listeners()``),
    answered without its look-up for a signal nothing at all is connected to, as
    ``Signal.send()`` does."""
    if not enabled():
        return any(signal.has_listeners(sender) for signal in signals)
    return _listened(sender, signals)


def _listened(sender: Any, signals: Sequence[Signal]) -> bool:
    for signal in signals:
        if signal.receivers and signal.has_listeners(sender):
            return True
    return False


def related_setter(field: Field[Any, Any]) -> Callable[[Model, Model | None], None]:
    """Return a function that sets the related object of foreign key ``field`` on an
    instance, as assigning it would."""
    if enabled():
        return field.set_cached_value  # type: ignore[attr-defined,no-any-return]
    return lambda instance, value: setattr(instance, field.name, value)


def cache_related(instance: Model, *pairs: tuple[Field[Any, Any], Model | None]) -> None:
    """Set on ``instance`` the related object of each foreign key ``field`` of ``(field, value)``
    ``pairs``, as assigning it would."""
    for field, value in pairs:
        related_setter(field)(instance, value)


def cache_generic(instance: Model, field: Any, value: Model | None) -> None:
    """Set what generic foreign key ``field`` of ``instance`` reads, leaving its columns as they
    are (assigning would set them), as ``prefetch_related`` does. Always through the field's
    cache: no public API does this."""
    field.set_cached_value(instance, value)


# Where a row of a claimed batch keeps the batch's loader of related objects.
_DEFERRED = "_transmissions_deferred_related"


class _Loader:
    """Runs ``load`` once, on the first read of a deferred relation of any row of a batch."""

    __slots__ = ("load",)

    def __init__(self, load: Callable[[], None]) -> None:
        self.load: Callable[[], None] | None = load

    def __call__(self) -> None:
        load, self.load = self.load, None
        if load is not None:
            load()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Loader, (None,))  # a pickled row reads its relations one by one, as usual


class _DeferredDescriptor(ForwardManyToOneDescriptor):  # type: ignore[type-arg]
    def get_object(self, instance: Any) -> Any:
        loader = instance.__dict__.get(_DEFERRED)
        if loader is not None:
            loader()
            try:
                return self.field.get_cached_value(instance)
            except KeyError:
                pass  # not in the batch's query (the user is gone): Django's own look-up
        return super().get_object(instance)


def install_deferred(model: type[Model], names: Sequence[str]) -> None:
    """Let ``defer_related()`` defer ``model``'s foreign keys ``names`` (at import, when the
    shortcuts are on)."""
    if not enabled():
        return
    for name in names:
        setattr(model, name, _DeferredDescriptor(model._meta.get_field(name)))


def defer_related(instances: Sequence[Model], load: Callable[[], None]) -> bool:
    """Arrange for the first read of a deferred foreign key on any of ``instances`` to call
    ``load()`` (which caches the related objects of all of them); return False, doing
    nothing, when that cannot be done here (the caller then loads them now)."""
    if (
        not enabled()
        or not instances
        or not isinstance(type(instances[0]).__dict__.get("target_user"), _DeferredDescriptor)
    ):
        return False
    loader = _Loader(load)
    for instance in instances:
        instance.__dict__[_DEFERRED] = loader
    return True


def can_load_rows() -> bool:
    """Whether claimed rows returned by the database may be turned into instances here
    (else the claim returns ids and the ORM fetches the rows)."""
    return enabled()


def datetime_adapter(connection: Any) -> Callable[[Any], Any]:
    """Return a function that adapts a datetime value for ``connection`` as its backend's
    ``ops.adapt_datetimefield_value()`` would.

    On SQLite (the backend's own method, not a subclass's override) an aware datetime under
    ``USE_TZ`` becomes ``str(value.astimezone(connection.timezone).replace(tzinfo=None))``
    here, which is what that method computes (``connection.timezone`` is None without
    ``USE_TZ``, and Django resets it when either setting changes); anything else goes to
    the method itself.
    """
    adapt: Callable[[Any], Any] = connection.ops.adapt_datetimefield_value
    if enabled() and _sqlite_own_adapt(type(connection.ops), connection.vendor):  # type: ignore[arg-type]
        return functools.partial(_adapt_sqlite_datetime, connection, adapt)
    return adapt


def _adapt_sqlite_datetime(connection: Any, adapt: Callable[[Any], Any], value: Any) -> Any:
    if type(value) is datetime.datetime and value.utcoffset() is not None:
        zone = connection.timezone
        if zone is not None:
            return str(value.astimezone(zone).replace(tzinfo=None))
    return adapt(value)


@functools.cache
def _sqlite_own_adapt(ops: type, vendor: str) -> bool:
    if vendor != "sqlite":
        return False  # (and the SQLite backend's module is imported only when it is in use)
    from django.db.backends.sqlite3.operations import DatabaseOperations

    return getattr(ops, "adapt_datetimefield_value", None) is DatabaseOperations.adapt_datetimefield_value


@functools.lru_cache(maxsize=16)
def _converters(
    model: type[Model], alias: str, vendor: str
) -> list[tuple[int, list[tuple[Converter, Any]], bool]]:
    # What the ORM's compiler would apply to each selected column, and whether the column
    # is a datetime whose only converter (if any) is the backend's datetime one (SQLite's,
    # MySQL's; PostgreSQL's driver converts them itself), which load_rows() does itself.
    connection = connections[alias]
    table = model._meta.db_table
    out = []
    for i, field in enumerate(model._meta.concrete_fields):
        col = field.get_col(table)
        funcs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        plain_datetime = field.get_internal_type() == "DateTimeField" and (
            not funcs
            or (
                len(funcs) == 1
                and getattr(funcs[0], "__func__", None)
                is getattr(type(connection.ops), "convert_datetimefield_value", object())
            )
        )
        if funcs or plain_datetime:
            out.append((i, [(func, col) for func in funcs], plain_datetime))
    return out


def load_rows(model: type[M], using: str, rows: Sequence[Sequence[Any]], zoned_text: bool = False) -> list[M]:
    """Return instances of ``model`` loaded from ``rows`` (every concrete column, in order),
    converted as the ORM would convert them.

    A naive datetime the driver already parsed (MySQL) is made aware in the connection's
    zone here, as the backend's converter does (``make_aware(value, connection.timezone)``
    when ``USE_TZ``), and a datetime column SQLite hands back as its text (its dialect reads
    them so) is parsed here with ``datetime.fromisoformat()``, aware at once in UTC: a
    claimed batch has three such columns a row, and the converter's look-ups cost more than
    the rest of building the row. Text in another form goes through the converter.
    ``zoned_text``: datetime text carries its UTC offset (PostgreSQL's dialect reads them so
    when its session is in UTC and ISO form; Django's psycopg loader is Python code)."""
    connection = connections[using]
    converters = _converters(model, using, connection.vendor)
    build = builder(model, using)
    zone = connection.timezone if settings.USE_TZ else None
    # Text in UTC is parsed aware in one C call; another zone is set after parsing.
    suffix = "" if zone is None or zoned_text else "+00:00" if zone is datetime.UTC else None
    datetime_type = datetime.datetime
    parse = datetime_type.fromisoformat
    out = []
    for row in rows:
        values = list(row)
        for i, funcs, plain_datetime in converters:
            value = values[i]
            if value is not None and plain_datetime:
                kind = type(value)
                if kind is datetime_type and value.tzinfo is None:
                    values[i] = value if zone is None else value.replace(tzinfo=zone)
                    continue
                if kind is str:
                    # A datetime column SQLite handed back as its stored text (db/sqlite.py).
                    try:
                        if suffix is not None:
                            values[i] = parse(value + suffix)
                        else:
                            values[i] = parse(value).replace(tzinfo=zone)
                        continue
                    except ValueError:
                        if not funcs:
                            raise ValueError(f"Unreadable datetime {value!r} in {model.__name__}") from None
                        # another form (an offset of its own, say): the converter parses it
            if value is not None:
                for func, col in funcs:
                    value = func(value, col, connection)
                values[i] = value
        out.append(build(values))
    return out


_KEPT = "_transmissions_kept"


def kept_on(connection: Any) -> dict[Any, Any]:
    """A dict stored on the connection wrapper ``connection`` for transmissions' own use (its
    dialects): it lives and dies with the connection, where a module-level cache keyed by
    connection kept every thread's connection alive through its values."""
    try:
        return connection.__dict__[_KEPT]  # type: ignore[no-any-return]
    except KeyError:
        kept: dict[Any, Any] = {}
        connection.__dict__[_KEPT] = kept
        return kept


def autocommit(connection: Any) -> bool:
    """``connection.get_autocommit()``, read from the wrapper's ``autocommit`` attribute when the
    connection is open already, which is what that method returns after making sure it is
    open (a call that costs more than the rest of deciding whether an INSERT checks users)."""
    if enabled() and connection.connection is not None:
        return bool(connection.autocommit)
    return bool(connection.get_autocommit())


def on_commit_once(func: Callable[[], None], using: str) -> bool:
    """Run ``func`` when the transaction on ``using`` commits, once per transaction (a
    callback equal to ``func`` already queued counts as it).

    Return whether this call added it. Outside a transaction ``func`` runs now.
    """
    connection = transaction.get_connection(using)
    if (
        enabled()
        and connection.in_atomic_block
        and any(entry[1] == func for entry in connection.run_on_commit)
    ):
        return False
    transaction.on_commit(func, using=using)
    return True


def write_db(queryset: QuerySet[Any]) -> str:
    """Return the database ``queryset.update()`` would write to."""
    return queryset._db or router.db_for_write(queryset.model, **queryset._hints)  # type: ignore[attr-defined]
