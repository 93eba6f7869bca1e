"""``trigger()``: validate the input, apply the message's behaviour, write one row.

The behaviours that refuse or replace a trigger rely on the unique
``Notification.dedup_key`` column, so two processes racing to trigger the same
TRIGGER_ONCE message leave exactly one pending row, on every database.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connections, models, router, transaction
from django.utils import timezone

from transmissions import inserts
from transmissions.behaviors import TriggerBehavior
from transmissions.dispatch import after_trigger
from transmissions.exceptions import DuplicateNotification, InvalidTrigger, MessageRegistrationError
from transmissions.models import Notification

# LAST_ONLY retries when a concurrent trigger took the key between its cancel and insert.
LAST_ONLY_ATTEMPTS = 10
# Users locked per statement (well under every database's parameter limit).
LOCK_CHUNK = 5000
_TARGET_USER = Notification._meta.get_field("target_user")
_TRIGGER_USER = Notification._meta.get_field("trigger_user")


@after_trigger  # TRANSMISSIONS_DISPATCH_ON_COMMIT: queue the task at commit
def trigger(
    message_cls: Any,
    target_user: Any,
    trigger_user: Any = None,
    datetime_scheduled: datetime.datetime | None = None,
    content: models.Model | None = None,
    data: Any = None,
    silent: bool = True,
) -> Notification | None:
    """Create one CREATED notification of ``message_cls`` for ``target_user`` and return it.

    When the behaviour refuses the trigger, return None if ``silent``, else raise
    DuplicateNotification. Bad input raises InvalidTrigger and writes nothing.
    """
    behavior = _registered_behavior(message_cls)
    notification = build_notification(
        message_cls, target_user, trigger_user, datetime_scheduled, content, data
    )
    key = behavior.dedup_key(message_cls.trigger_name, target_user.pk, _content_key(notification))
    notification.dedup_key = key
    using = router.db_for_write(Notification)
    if inserts.fast_path(using):
        if behavior is TriggerBehavior.LAST_ONLY:
            return _replace_fast(notification, using)
        if _insert_fast(notification, using, skip_conflicts=key is not None):
            return notification
    elif key is None:
        notification.save(force_insert=True, using=using)
        return notification
    elif behavior is TriggerBehavior.LAST_ONLY:
        return _trigger_last_only(notification)
    elif _insert_unless_duplicate(notification):
        return notification
    if silent:
        return None
    raise DuplicateNotification(
        f"{message_cls.trigger_name!r} ({behavior.name}) is already pending"
        + (" or sent" if behavior.keeps_key_when_sent else "")
        + f" for user {target_user.pk}."
    )


def _registered_behavior(message_cls: Any) -> TriggerBehavior:
    behavior: TriggerBehavior | None = getattr(message_cls, "behavior", None)
    if behavior is None or getattr(message_cls, "trigger_name", None) is None:
        raise MessageRegistrationError(f"{message_cls.__qualname__} is not registered with @message.")
    return behavior


def build_notification(
    message_cls: Any,
    target_user: Any,
    trigger_user: Any,
    datetime_scheduled: datetime.datetime | None,
    content: models.Model | None,
    data: Any,
) -> Notification:
    """Return an unsaved Notification, or raise InvalidTrigger for bad input."""
    _check_user(target_user, "target_user")
    if trigger_user is not None:
        _check_user(trigger_user, "trigger_user")
    now = timezone.now()
    if datetime_scheduled is None:
        datetime_scheduled = now
    else:
        _check_datetime(datetime_scheduled)
    if content is not None:
        if not isinstance(content, models.Model):
            raise InvalidTrigger(f"content must be a model instance, not {type(content).__name__}.")
        if content.pk is None:
            raise InvalidTrigger("content must be saved before it is used in a notification.")
    elif message_cls.behavior.per_content:
        raise InvalidTrigger(
            f"{message_cls.trigger_name!r} is {message_cls.behavior.name}: give it a saved content."
        )
    notification = inserts.new_notification(
        {
            "trigger_name": message_cls.trigger_name,
            "target_user_id": target_user.pk,
            "trigger_user_id": None if trigger_user is None else trigger_user.pk,
            "datetime_created": now,
            "datetime_scheduled": datetime_scheduled,
        }
    )
    # As Notification(target_user=...) would: reading them back costs no query.
    _TARGET_USER.set_cached_value(notification, target_user)
    _TRIGGER_USER.set_cached_value(notification, trigger_user)
    notification.data = data  # serialized now: unstorable data fails before anything is written
    if content is not None:
        notification.content_type = ContentType.objects.get_for_model(content, for_concrete_model=False)
        notification.object_id = str(content.pk)
    return notification


def _check_user(user: Any, name: str) -> None:
    user_model = get_user_model()
    if not isinstance(user, user_model):
        raise InvalidTrigger(f"{name} must be a saved {user_model._meta.label} instance, not {user!r}.")
    if user.pk is None:
        raise InvalidTrigger(f"{name} must be saved before it is notified.")


def _check_datetime(value: Any) -> None:
    if not isinstance(value, datetime.datetime):
        raise InvalidTrigger(f"datetime_scheduled must be a datetime, not {type(value).__name__}.")
    if settings.USE_TZ and timezone.is_naive(value):
        raise InvalidTrigger(
            "datetime_scheduled is naive while USE_TZ is on; build it from "
            "django.utils.timezone.now() or make it aware."
        )


def _content_key(notification: Notification) -> tuple[int, str] | None:
    if notification.content_type_id is None:
        return None
    return notification.content_type_id, notification.object_id or ""


def _insert_fast(notification: Notification, using: str, skip_conflicts: bool) -> bool:
    """One INSERT (... ON CONFLICT (dedup_key) DO NOTHING) RETURNING; False when refused."""
    row = inserts.row_of(notification)
    inserted = inserts.insert_rows(using, [row], skip_conflicts)
    if not inserted:
        return False
    inserts.mark_saved(notification, inserted[notification.uuid], using)
    return True


def _replace_fast(notification: Notification, using: str) -> Notification:
    """LAST_ONLY: lock the user, cancel the waiting rows, insert unless a racer got in."""
    for _ in range(LAST_ONLY_ATTEMPTS):
        with transaction.atomic(using=using):
            lock_users(using, [notification.target_user_id])
            cancel_waiting(using, notification.trigger_name, [notification.target_user_id])
            if _insert_fast(notification, using, skip_conflicts=True):
                return notification
        # Another process inserted its row in between: cancel that one too.
    raise DuplicateNotification(
        f"{notification.trigger_name!r}: gave up after {LAST_ONLY_ATTEMPTS} concurrent replacements."
    )


def cancel_waiting(using: str, trigger_name: str, user_ids: list[Any]) -> int:
    """Cancel the not-yet-claimed rows of ``trigger_name`` for these users (LAST_ONLY)."""
    return (
        Notification.objects.using(using)
        .filter(trigger_name=trigger_name, target_user_id__in=user_ids, status=Notification.Status.CREATED)
        .update(status=Notification.Status.CANCELLED, datetime_processed=timezone.now(), dedup_key=None)
    )


def _insert_unless_duplicate(notification: Notification) -> bool:
    """INSERT the row; return False when its dedup_key is taken."""
    using = router.db_for_write(Notification)
    try:
        if transaction.get_connection(using).in_atomic_block:
            # A failed INSERT must not poison the caller's transaction.
            with transaction.atomic(using=using):
                notification.save(force_insert=True, using=using)
        else:
            notification.save(force_insert=True, using=using)
    except IntegrityError:
        if not Notification.objects.using(using).filter(dedup_key=notification.dedup_key).exists():
            raise
        notification.pk = None
        return False
    return True


def _trigger_last_only(notification: Notification) -> Notification:
    """LAST_ONLY through ``save()``: lock the user, cancel the waiting rows, insert."""
    using = router.db_for_write(Notification)
    for _ in range(LAST_ONLY_ATTEMPTS):
        try:
            with transaction.atomic(using=using):
                lock_users(using, [notification.target_user_id])
                cancel_waiting(using, notification.trigger_name, [notification.target_user_id])
                notification.save(force_insert=True, using=using)
            return notification
        except IntegrityError:
            # Another process inserted its row in between: cancel that one too.
            if not Notification.objects.using(using).filter(dedup_key=notification.dedup_key).exists():
                raise
            notification.pk = None
    raise DuplicateNotification(
        f"{notification.trigger_name!r}: gave up after {LAST_ONLY_ATTEMPTS} concurrent replacements."
    )


def lock_users(using: str, user_ids: list[Any]) -> None:
    """Lock these users' rows until the transaction ends, in primary-key order.

    LAST_ONLY triggers for one user queue on the user's row, so each one cancels what
    the previous one inserted. Without it, concurrent triggers collide on the key and
    retry, and under load one gave up after LAST_ONLY_ATTEMPTS (seen with 8 processes).
    NO KEY UPDATE (PostgreSQL) leaves other inserts' foreign-key checks on the user
    unblocked; the key order keeps two fan-outs from deadlocking. SQLite has a single
    writer and needs no lock.
    """
    features = connections[using].features
    if not features.has_select_for_update or not user_ids:
        return
    users = get_user_model()._default_manager.using(using)
    ordered = sorted(set(user_ids))
    for start in range(0, len(ordered), LOCK_CHUNK):
        list(
            users.select_for_update(no_key=features.has_select_for_no_key_update)
            .filter(pk__in=ordered[start : start + LOCK_CHUNK])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
