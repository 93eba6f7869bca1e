"""The Notification model: one row per message to one user on one channel."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_extensions.db.fields import ShortUUIDField

from transmissions.behaviors import TriggerBehavior
from transmissions.exceptions import DataDecodeError
from transmissions.querysets import NotificationQuerySet
from transmissions.registry import CHANNEL_MAX_LENGTH, TRIGGER_NAME_MAX_LENGTH, registry
from transmissions.serializers import dump_data, get_serializer
from transmissions.status import REASON_MAX_LENGTH, Status, clip_reason

_UNSET = object()

__all__ = ["Notification", "TriggerBehavior"]


class Notification(models.Model):
    # CREATED, PROCESSING, SUCCESSFULLY_SENT, FAILED, CANCELLED, BROKEN: see status.py.
    Status = Status

    uuid = ShortUUIDField(unique=True, editable=False)  # type: ignore[no-untyped-call]
    trigger_name = models.SlugField(max_length=TRIGGER_NAME_MAX_LENGTH, db_index=True)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        # Served by the (target_user, -datetime_created) index below.
        db_index=False,
    )
    trigger_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications_sent",
    )
    content_type = models.ForeignKey(
        ContentType, on_delete=models.SET_NULL, null=True, blank=True, db_index=False
    )
    # Text, so that integer and UUID (or string) primary keys both fit.
    object_id = models.CharField(max_length=64, null=True, blank=True)
    content = GenericForeignKey("content_type", "object_id")
    # The serialized bytes; read and write them through the ``data`` property.
    data_bytes = models.BinaryField(db_column="data", null=True, blank=True, editable=False)
    datetime_created = models.DateTimeField(default=timezone.now, editable=False)
    datetime_scheduled = models.DateTimeField(default=timezone.now)
    datetime_processed = models.DateTimeField(null=True, blank=True)
    datetime_seen = models.DateTimeField(null=True, blank=True)
    datetime_consumed = models.DateTimeField(null=True, blank=True)
    status = models.SmallIntegerField(choices=Status.choices, default=Status.CREATED)
    # The kind of channel the message was triggered on ("email", "sms", "push", "inapp",
    # or a project's own): the message class's ``channel`` at trigger time.
    # A database default too, so that rows written by other means (raw SQL, 0.2) get one.
    channel = models.CharField(
        max_length=CHANNEL_MAX_LENGTH, blank=True, default="", db_default="", editable=False
    )
    # Why it is not (or not yet) SUCCESSFULLY_SENT: a cancel, a failure, a retry, a hold.
    # Empty when it was sent, or is waiting for the first time.
    reason = models.CharField(
        max_length=REASON_MAX_LENGTH, blank=True, default="", db_default="", editable=False
    )
    # Send attempts so far, counted when a worker claims the row.
    attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    # While PROCESSING: when the worker's claim expires.
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    # Unique while the row blocks new triggers of its behaviour (see behaviors.py);
    # NULL otherwise. Every supported database allows many NULLs in a unique index.
    dedup_key = models.CharField(max_length=255, null=True, blank=True, unique=True, editable=False)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            # The due-query: status = CREATED AND datetime_scheduled <= now ORDER BY datetime_scheduled.
            models.Index(fields=["status", "datetime_scheduled"], name="transmissions_due_idx"),
            # A user's notifications, newest first.
            models.Index(fields=["target_user", "-datetime_created"], name="transmissions_user_idx"),
            models.Index(fields=["content_type", "object_id"], name="transmissions_content_idx"),
        ]

    def __str__(self) -> str:
        """ "welcome-sms to bob (created)": reads ``target_user`` (select it with the row)."""
        return f"{self.trigger_name} to {self.target_user.get_username()} ({self.get_status_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Data read (or set) through ``data`` may have been changed in place.
        update_fields = kwargs.get("update_fields")
        if "_data" in self.__dict__ and (update_fields is None or "data_bytes" in update_fields):
            self.data_bytes = dump_data(self.__dict__["_data"])
        super().save(*args, **kwargs)

    # -- data --------------------------------------------------------------------------

    @property
    def data(self) -> Any:
        """The stored data, deserialized on first access; ``{}`` when none was given.

        Raises DataDecodeError when the stored bytes cannot be read.
        """
        value = self.__dict__.get("_data", _UNSET)
        if value is _UNSET:
            raw = self.data_bytes
            if raw is None:
                value = {}
            else:
                try:
                    value = get_serializer().loads(bytes(raw))
                except Exception as exc:
                    raise DataDecodeError(
                        f"Notification {self.pk}: stored data cannot be read: {exc!r}"
                    ) from exc
            self.__dict__["_data"] = value
        return value

    @data.setter
    def data(self, value: Any) -> None:
        self.data_bytes = dump_data(value)
        self.__dict__["_data"] = {} if value is None else value

    def cache_data(self, value: Any) -> None:
        """Remember ``value`` as the data ``data_bytes`` already holds (no serializing again)."""
        self.__dict__["_data"] = {} if value is None else value

    # -- state -------------------------------------------------------------------------

    @property
    def is_pending(self) -> bool:
        return self.status in (self.Status.CREATED, self.Status.PROCESSING)

    @property
    def message_class(self) -> type | None:
        """The registered message class for ``trigger_name``, or None."""
        return registry.find(self.trigger_name)

    def cancel(self, reason: str = "cancelled by the application") -> bool:
        """End a waiting notification as CANCELLED, saved at once; return whether it was.

        A processed notification, or one a worker is sending right now, is left as it is.
        """
        now = timezone.now()
        changed = Notification.objects.filter(pk=self.pk).cancel(reason, now)
        if changed:
            self.status, self.datetime_processed, self.dedup_key = self.Status.CANCELLED, now, None
            self.reason = clip_reason(reason)
        return bool(changed)

    def mark_seen(self, when: Any = None) -> None:
        """Set ``datetime_seen`` now (if not set yet) and save that field."""
        if self.datetime_seen is None:
            self.datetime_seen = when or timezone.now()
            self.save(update_fields=["datetime_seen"])

    def mark_consumed(self, when: Any = None) -> None:
        """Set ``datetime_consumed`` (and ``datetime_seen`` if unset) and save them."""
        if self.datetime_consumed is None:
            when = when or timezone.now()
            self.datetime_consumed = when
            self.datetime_seen = self.datetime_seen or when
            self.save(update_fields=["datetime_consumed", "datetime_seen"])
