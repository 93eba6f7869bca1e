"""Triggering: ``trigger()`` for one user and ``trigger_many()`` for many, both to an INSERT.

Both validate their input (bad input raises ``InvalidTrigger`` and writes nothing),
turn the message's behaviour into each row's ``dedup_key`` (``behaviors.py``) and
write the rows through the database's dialect (``db/``): one statement for many rows
where the database can, with ``ON CONFLICT (active_key) DO NOTHING`` for the
behaviours that refuse a trigger, so the rule holds when many processes trigger at
once. LAST_ONLY locks the users, cancels their waiting rows, then inserts, in one
transaction. The rows written, a wake-up is queued for when they commit (``wakeup.py``).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import shortuuid
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, models, router, transaction
from django.utils import timezone

from transmissions import categories, db, digests, idempotency, internals, signals, throttle, wakeup
from transmissions.behaviors import TriggerBehavior
from transmissions.conf import conf
from transmissions.exceptions import DuplicateNotification, InvalidTrigger, MessageRegistrationError
from transmissions.lifecycle import notification_model
from transmissions.serializers import dump_data
from transmissions.status import Status

if TYPE_CHECKING:
    from transmissions.models import Notification

# LAST_ONLY retries the rows a concurrent trigger keyed between its cancel and insert.
LAST_ONLY_ATTEMPTS = 10
# Users per INSERT statement in trigger_many().
CHUNK_SIZE = 1000
# ShortUUIDField's alphabet and length, so these ids look like the field's own.
_ALPHABET = shortuuid.get_alphabet()
_UUID_LENGTH = 22
# Two digits at a time (least significant first, as one at a time would give them).
_BASE = len(_ALPHABET)
_PAIRS = [_ALPHABET[i % _BASE] + _ALPHABET[i // _BASE] for i in range(_BASE * _BASE)]


class Triggerable:
    """The entry points ``@message`` gives every message class."""

    @classmethod
    def trigger(
        cls,
        target_user: Any,
        trigger_user: Any = None,
        datetime_scheduled: datetime.datetime | None = None,
        content: models.Model | None = None,
        data: Any = None,
        silent: bool = True,
        idempotency_key: str | None = None,
    ) -> Notification | None:
        """Create a notification of this message for ``target_user``; see ``transmissions.trigger``."""
        return trigger(
            cls, target_user, trigger_user, datetime_scheduled, content, data, silent, idempotency_key
        )

    @classmethod
    def trigger_many(
        cls,
        users: Iterable[Any],
        trigger_user: Any = None,
        datetime_scheduled: datetime.datetime | None = None,
        content: models.Model | None = None,
        data: Any = None,
        idempotency_key: Any = None,
    ) -> list[Notification]:
        """Create a notification of this message for each of ``users``, in a few statements per
        thousand users; return those created. See ``transmissions.trigger.trigger_many``."""
        return trigger_many(cls, users, trigger_user, datetime_scheduled, content, data, idempotency_key)


def trigger(
    message_cls: Any,
    target_user: Any,
    trigger_user: Any = None,
    datetime_scheduled: datetime.datetime | None = None,
    content: models.Model | None = None,
    data: Any = None,
    silent: bool = True,
    idempotency_key: str | None = None,
) -> Notification | None:
    """Create one CREATED notification of ``message_cls`` for ``target_user`` and return it.

    When the behaviour refuses the trigger, return None if ``silent``, else raise
    DuplicateNotification. Bad input raises InvalidTrigger and writes nothing. With an
    ``idempotency_key`` that a notification created within TRANSMISSIONS_IDEMPOTENCY_WINDOW
    holds, write nothing and return that notification (``idempotency.py``).
    """
    behavior = registered_behavior(message_cls)
    check_user(target_user, "target_user")
    key = idempotency.check_key(idempotency_key)
    shared = shared_values(message_cls, trigger_user, datetime_scheduled, content, data)
    model: type[Notification] = notification_model()
    using = router.db_for_write(model)
    dialect = db.dialect(using, model)
    row = _row(shared, target_user.pk, behavior)
    limit = getattr(message_cls, "throttle", None)
    digest = getattr(message_cls, "digest", None)
    if digest is not None:
        # Called outside a transaction, those it opens are its own: their COMMIT's foreign key
        # error is caught here (Dialect.own_transactions()).
        with dialect.own_transactions():
            return _digested(message_cls, digest, model, using, [(target_user, row)], content, data, key)[0]
    existing: dict[str, Notification] = {}
    created: list[Notification]
    try:
        if key is None and limit is None:
            created = _write(dialect, behavior, [row])
        else:
            with dialect.own_transactions():
                if key is not None:
                    row["idempotency_key"] = key
                created, existing = _write_guarded(dialect, behavior, [row], limit)
    except IntegrityError:
        refuse_missing_users(using, [target_user], trigger_user)
        raise
    if key is not None and key in existing:
        return existing[key]
    if not created:
        if silent:
            return None
        raise DuplicateNotification(
            f"{message_cls.trigger_name!r} ({behavior.name}) is already pending"
            + (" or sent" if behavior.keeps_key_when_sent else "")
            + f" for user {target_user.pk}."
        )
    notification = created[0]
    # As Notification(target_user=..., data=...) would: reading them back costs nothing.
    internals.cache_related(
        notification, (model.target_user.field, target_user), (model.trigger_user.field, trigger_user)
    )
    notification.cache_data(data)
    _created(using, message_cls, created)
    return notification


def trigger_many(
    message_cls: Any,
    users: Iterable[Any],
    trigger_user: Any = None,
    datetime_scheduled: datetime.datetime | None = None,
    content: models.Model | None = None,
    data: Any = None,
    idempotency_key: Any = None,
) -> list[Notification]:
    """Create a CREATED notification of ``message_cls`` for each of ``users``; return those created.

    The message's behaviour applies to each user as in ``trigger()``; the users it
    refuses are left out of the result (a user listed twice is notified once when
    the behaviour deduplicates). ``trigger_user``, ``datetime_scheduled``,
    ``content`` and ``data`` are the same for every user. The whole call is one
    transaction: bad input, or an error half-way, writes nothing. Like
    ``bulk_create``, no ``pre_save``/``post_save`` signal is sent, unless a project
    listens to them (then each row goes through ``save()``).

    ``idempotency_key`` gives each user a key: a callable taking a user (returning a key or
    None) or a mapping of users (or their primary keys) to keys. A user whose key a
    notification within the window holds gets that notification in the result, in the
    users' order, and nothing is written for them.
    """
    behavior = registered_behavior(message_cls)
    if isinstance(users, models.Model | str | bytes) or not isinstance(users, Iterable):
        raise InvalidTrigger(
            f"users must be an iterable of users, not {type(users).__name__}; for one user, use trigger()."
        )
    users = list(users)
    user_model = get_user_model()
    for user in users:
        check_user(user, "each of users", user_model)
    if not users:
        return []
    if behavior.key_prefix is not None or idempotency_key is not None:
        firsts: dict[Any, Any] = {}
        for user in users:
            firsts.setdefault(user.pk, user)
        users = list(firsts.values())  # each user once, in order of first appearance
    keys = None if idempotency_key is None else idempotency.keys_per_user(users, idempotency_key)
    limit = getattr(message_cls, "throttle", None)
    shared = shared_values(message_cls, trigger_user, datetime_scheduled, content, data)
    model: type[Notification] = notification_model()
    using = router.db_for_write(model)
    digest = getattr(message_cls, "digest", None)
    dialect = db.dialect(using, model)
    if digest is not None:
        pairs = [(user, _row(shared, user.pk, behavior)) for user in users]
        try:
            with dialect.own_transactions(), transaction.atomic(using=using):
                return _digested(message_cls, digest, model, using, pairs, content, data, idempotency_key)
        except IntegrityError:
            refuse_missing_users(using, users, None)
            raise
    columns = len(_row(shared, users[0].pk, behavior)) + 1
    chunk = max(1, min(CHUNK_SIZE, dialect.max_params() // columns))
    by_pk = {user.pk: user for user in users}
    created: list[Notification] = []
    existing: dict[str, Notification] = {}
    try:
        # Its own transaction, unless the caller holds one: then the INSERTs check the users.
        with dialect.own_transactions(), transaction.atomic(using=using):
            if behavior is TriggerBehavior.LAST_ONLY or keys is not None or limit is not None:
                # All at once and in key order, so two fan-outs never deadlock (InnoDB did, on
                # the unique indexes of idempotency keys and throttle slots, without it).
                dialect.lock_users([user.pk for user in users])
            for start in range(0, len(users), chunk):
                rows = [_row(shared, user.pk, behavior) for user in users[start : start + chunk]]
                if keys is None and limit is None:
                    created += _write(dialect, behavior, rows, lock=False)
                else:
                    if keys is not None:
                        for row, key in zip(rows, keys[start : start + chunk], strict=True):
                            row["idempotency_key"] = key
                    made, found = _write_guarded(dialect, behavior, rows, limit, lock=False)
                    created += made
                    existing.update(found)
    except IntegrityError:
        refuse_missing_users(using, users, trigger_user)
        raise
    set_target = internals.related_setter(model.target_user.field)
    set_trigger = internals.related_setter(model.trigger_user.field)
    for notification in created:
        set_target(notification, by_pk[notification.target_user_id])
        set_trigger(notification, trigger_user)
    _created(using, message_cls, created)
    if existing and keys is not None:
        # The users' order, each with its new row or the one its key named.
        mine = {n.target_user_id: n for n in created}
        by_key = [existing.get(key) if key is not None else None for key in keys]
        return [
            found or mine[user.pk]
            for user, found in zip(users, by_key, strict=True)
            if found is not None or user.pk in mine
        ]
    return created


def registered_behavior(message_cls: Any) -> TriggerBehavior:
    """Return the behaviour of a class registered with ``@message``, or raise."""
    behavior: TriggerBehavior | None = getattr(message_cls, "behavior", None)
    if behavior is None or getattr(message_cls, "trigger_name", None) is None:
        raise MessageRegistrationError(f"{message_cls.__qualname__} is not registered with @message.")
    return behavior


def refuse_missing_users(using: str, users: Sequence[Any], trigger_user: Any) -> None:
    """After an INSERT failed its foreign key (checked at once: MySQL/MariaDB, or a statement
    of its own): raise InvalidTrigger if one of the users is gone (deleted since it was
    loaded), else return (the caller raises the database's error)."""
    wanted = {user.pk for user in users} | ({trigger_user.pk} if trigger_user is not None else set())
    found = set(
        get_user_model()._base_manager.using(using).filter(pk__in=wanted).values_list("pk", flat=True)
    )
    if wanted - found:
        raise InvalidTrigger(
            f"user(s) {sorted(wanted - found, key=str)} do not exist: deleted since they were loaded? "
            "Nothing was written."
        )


def check_user(user: Any, name: str, user_model: Any = None) -> None:
    """Raise InvalidTrigger unless ``user`` is a saved instance of the user model."""
    user_model = user_model or get_user_model()
    if not isinstance(user, user_model):
        raise InvalidTrigger(f"{name} must be a saved {user_model._meta.label} instance, not {user!r}.")
    if user.pk is None:
        raise InvalidTrigger(f"{name} must be saved before it is notified.")


def shared_values(
    message_cls: Any,
    trigger_user: Any,
    datetime_scheduled: datetime.datetime | None,
    content: models.Model | None,
    data: Any,
) -> dict[str, Any]:
    """Validate what every row of one trigger shares; return it as column values.

    ``data`` is serialized here, so unstorable data fails before anything is written.
    """
    if trigger_user is not None:
        check_user(trigger_user, "trigger_user")
    now = timezone.now()
    if datetime_scheduled is None:
        datetime_scheduled = now
    elif not isinstance(datetime_scheduled, datetime.datetime):
        raise InvalidTrigger(
            f"datetime_scheduled must be a datetime, not {type(datetime_scheduled).__name__}."
        )
    elif settings.USE_TZ and timezone.is_naive(datetime_scheduled):
        raise InvalidTrigger(
            "datetime_scheduled is naive while USE_TZ is on; build it from "
            "django.utils.timezone.now() or make it aware."
        )
    content_type_id = object_id = None
    if content is not None:
        if not isinstance(content, models.Model):
            raise InvalidTrigger(f"content must be a model instance, not {type(content).__name__}.")
        if content.pk is None:
            raise InvalidTrigger("content must be saved before it is used in a notification.")
        # From the app registry: this module is imported before models may be.
        content_types = apps.get_model("contenttypes", "ContentType").objects
        content_type_id = content_types.get_for_model(content, for_concrete_model=False).pk
        object_id = str(content.pk)
    elif message_cls.behavior.per_content:
        raise InvalidTrigger(
            f"{message_cls.trigger_name!r} is {message_cls.behavior.name}: give it a saved content."
        )
    data_bytes = dump_data(data)
    limit = conf.TRANSMISSIONS_MAX_DATA_BYTES
    if data_bytes is not None and len(data_bytes) > limit:
        raise InvalidTrigger(
            f"data takes {len(data_bytes)} bytes serialized, more than TRANSMISSIONS_MAX_DATA_BYTES "
            f"({limit}); store a reference (an id, a content object) instead of the thing itself."
        )
    return {
        "trigger_name": message_cls.trigger_name,
        "trigger_user_id": None if trigger_user is None else trigger_user.pk,
        "content_type_id": content_type_id,
        "object_id": object_id,
        "data_bytes": data_bytes,
        "datetime_created": now,
        "datetime_scheduled": datetime_scheduled,
        "status": Status.CREATED,
        "attempts": 0,
        "channel": getattr(message_cls, "channel", "") or "",
    }


def short_uuid() -> str:
    """Return a random 22-character id in ShortUUIDField's alphabet (128 random bits)."""
    number = int.from_bytes(os.urandom(16), "big")
    pairs = []
    for _ in range(_UUID_LENGTH // 2):
        number, pair = divmod(number, _BASE * _BASE)
        pairs.append(_PAIRS[pair])
    return "".join(pairs)


def _row(shared: dict[str, Any], user_pk: Any, behavior: TriggerBehavior) -> dict[str, Any]:
    content_key = None
    if shared["content_type_id"] is not None:
        content_key = (shared["content_type_id"], shared["object_id"])
    return {
        "uuid": short_uuid(),
        "target_user_id": user_pk,
        **shared,
        "dedup_key": behavior.dedup_key(shared["trigger_name"], user_pk, content_key),
    }


def _write(
    dialect: db.Dialect,
    behavior: TriggerBehavior,
    rows: Sequence[dict[str, Any]],
    lock: bool = True,
) -> list[Notification]:
    """INSERT ``rows`` under ``behavior``; return the notifications created.

    The other behaviours: one statement, in the caller's transaction or none (nothing of
    transmissions' own is opened for ``own_transactions()`` to mark). LAST_ONLY: lock the
    users (unless the caller holds their locks), cancel their waiting rows, insert, and go
    round again for the rows a concurrent trigger keyed in between, in one transaction,
    transmissions' own when the caller holds none.
    """
    if behavior is not TriggerBehavior.LAST_ONLY:
        return dialect.insert(rows, skip_conflicts=behavior.key_prefix is not None)  # type: ignore[return-value]
    model: Any = dialect.model
    using = dialect.alias
    created: list[Notification] = []
    todo = list(rows)
    with dialect.own_transactions(), transaction.atomic(using=using):
        if lock:
            dialect.lock_users([row["target_user_id"] for row in todo])
        for _ in range(LAST_ONLY_ATTEMPTS):
            model.objects.using(using).filter(
                trigger_name=todo[0]["trigger_name"],
                target_user_id__in=[row["target_user_id"] for row in todo],
            ).cancel("replaced by a newer notification of the same message (LAST_ONLY)")
            created += dialect.insert(todo, skip_conflicts=True)  # type: ignore[arg-type]
            # A row is missing only when a concurrent trigger took its key in between.
            done = {n.uuid for n in created}
            todo = [row for row in todo if row["uuid"] not in done]
            if not todo:
                return created
    raise DuplicateNotification(
        f"{rows[0]['trigger_name']!r}: gave up after {LAST_ONLY_ATTEMPTS} concurrent replacements."
    )


def _write_guarded(
    dialect: db.Dialect,
    behavior: TriggerBehavior,
    rows: Sequence[dict[str, Any]],
    limit: throttle.Throttle | None,
    lock: bool = True,
) -> tuple[list[Notification], dict[str, Notification]]:
    """INSERT ``rows``, which carry idempotency keys or are throttled (``limit``), under
    ``behavior``; return the notifications created and, by key, those that already held a key."""
    manager = dialect.manager
    if limit is not None:
        # @message refuses throttling with LAST_ONLY: here the behaviour's key is plain.
        def plain(todo: Sequence[dict[str, Any]]) -> list[Notification]:
            return dialect.insert(todo, skip_conflicts=True)  # type: ignore[return-value]

        def insert(todo: Sequence[dict[str, Any]]) -> list[Notification]:
            return [
                n
                for row in todo
                for n in throttle.write(limit, manager, row, plain, dialect.slot_holders, dialect.lost_race)
            ]

        if "idempotency_key" not in rows[0]:
            return insert(rows), {}
        return idempotency.write(manager, rows, insert)
    if behavior is not TriggerBehavior.LAST_ONLY:
        return idempotency.write(manager, rows, lambda todo: dialect.insert(todo, skip_conflicts=True))
    with transaction.atomic(using=dialect.alias):
        if lock:
            dialect.lock_users([row["target_user_id"] for row in rows])
        return idempotency.write(
            manager, rows, lambda todo: _write(dialect, behavior, todo, lock=False), replaces=True
        )


def _digested(
    message_cls: Any,
    digest: digests.Digest,
    model: type[Notification],
    using: str,
    pairs: Sequence[tuple[Any, dict[str, Any]]],
    content: models.Model | None,
    data: Any,
    key: Any,
) -> list[Notification]:
    """Add each ``(user, row)`` as an item of the user's open digest (``digests.py``); return
    the digests, in the users' order. A digest is opened when none of its key waits."""
    if key is not None:
        raise InvalidTrigger(
            f"{message_cls.trigger_name!r} is digested: an idempotency key does not combine with a digest."
        )
    manager = model._default_manager.using(using)
    item_model = apps.get_model("transmissions", "DigestItem")
    category = categories.of(message_cls)
    found, opened = [], []
    try:
        for user, row in pairs:
            notification, new = digests.write(digest, manager, row, content, data, item_model, category)
            internals.cache_related(notification, (model.target_user.field, user))
            found.append(notification)
            if new:
                opened.append(notification)
    except IntegrityError:
        refuse_missing_users(using, [user for user, _ in pairs], None)
        raise
    _created(using, message_cls, opened)
    return found


def _created(using: str, message_cls: Any, created: list[Notification]) -> None:
    if not created:
        return
    # Rows dropped by a throttle are written CANCELLED: nothing to wake a worker for.
    wakeup.after_commit(using, [n for n in created if n.status == Status.CREATED])
    if internals.listened(None, signals.notifications_created):
        signals.notifications_created.send(sender=message_cls, notifications=created)
