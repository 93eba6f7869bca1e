"""The Notification model: one row per message to one user on one channel."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Case, F, Value, When
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_extensions.db.fields import ShortUUIDField

from transmissions import internals, related, worker
from transmissions.behaviors import KEPT_WHEN_PROCESSED_PREFIX, TriggerBehavior
from transmissions.categories import CATEGORY_MAX_LENGTH
from transmissions.exceptions import DataDecodeError
from transmissions.querysets import SEEN_CODE, NotificationQuerySet
from transmissions.registry import CHANNEL_MAX_LENGTH, TRIGGER_NAME_MAX_LENGTH, registry
from transmissions.serializers import dump_data, get_serializer
from transmissions.status import (
    PROVIDER_ID_MAX_LENGTH,
    REASON_MAX_LENGTH,
    DeliveryState,
    Status,
    clip_reason,
)

_UNSET = object()
logger = logging.getLogger("transmissions")

__all__ = [
    "DeliveryEvent",
    "DigestFrequency",
    "DigestItem",
    "Notification",
    "Preference",
    "SendSlot",
    "Suppression",
    "TriggerBehavior",
]


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
    # The key of the row's behaviour while the lifecycle keeps it (see behaviors.py); NULL
    # once released. Not unique itself: ``active_key`` is.
    dedup_key = models.CharField(max_length=255, null=True, blank=True, editable=False)
    # The key that blocks new triggers, computed by the database: ``dedup_key`` while the row
    # is not processed (``datetime_processed`` is NULL), and afterwards only for the SEND_ONCE
    # family, whose sent rows block for good. Unique: every supported database allows many
    # NULLs in a unique index. So a row marked processed however it got there (a worker, a
    # cancel, ``save()`` of a hand-set ``datetime_processed``, an UPDATE) stops blocking.
    active_key = models.GeneratedField(
        expression=Case(
            When(datetime_processed__isnull=True, then=F("dedup_key")),
            When(dedup_key__startswith=KEPT_WHEN_PROCESSED_PREFIX, then=F("dedup_key")),
            default=Value(None),
        ),
        output_field=models.CharField(max_length=255, null=True),
        db_persist=True,
    )
    # The caller's idempotency key (``trigger(..., idempotency_key=...)``): unique, so that
    # a retried trigger finds the row instead of writing a second one; given up (NULL) when a
    # trigger after the window (TRANSMISSIONS_IDEMPOTENCY_WINDOW) takes the key over.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True, editable=False)
    # The throttle slot this row holds (``throttle.py``): "throttle:<name>:<user>[...]:<i>",
    # unique, so that no more rows than the limit hold a key's slots in any period.
    throttle_slot = models.CharField(max_length=255, null=True, blank=True, unique=True, editable=False)
    # What the provider called the message when it accepted it (an ESP's message id, the
    # SMTP Message-ID, Twilio's "SM..." sid), written with the outcome: delivery events
    # find their notification by it.
    provider_message_id = models.CharField(
        max_length=PROVIDER_ID_MAX_LENGTH, blank=True, default="", db_default="", editable=False
    )
    # The furthest state the provider's delivery events reached (tracking.py), and the
    # time of the event that set it; empty until the first event.
    delivery_state = models.CharField(
        max_length=16, choices=DeliveryState.choices, blank=True, default="", db_default="", editable=False
    )
    delivery_state_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The id the steps of one escalation share (``escalation.py``): an event that goes
    # through several channels, one row per step. NULL for a single-channel message.
    escalation = models.CharField(max_length=32, null=True, blank=True, editable=False, db_index=True)
    # The digest this row sends (``digests.py``): "<message>:<user>:<key>", kept for good (the
    # open digest's uniqueness is its ``dedup_key``, released when a worker claims it).
    # NULL for a message that is not digested.
    digest_key = models.CharField(max_length=255, null=True, blank=True, editable=False, db_index=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            # The due-query: status = CREATED AND datetime_scheduled <= now AND datetime_processed
            # IS NULL ORDER BY datetime_scheduled, read from the index alone.
            models.Index(
                fields=["status", "datetime_scheduled", "datetime_processed"], name="transmissions_due_idx"
            ),
            # A user's notifications, newest first.
            models.Index(fields=["target_user", "-datetime_created"], name="transmissions_user_idx"),
            models.Index(fields=["content_type", "object_id"], name="transmissions_content_idx"),
            # A delivery event's look-up of its notification.
            models.Index(fields=["provider_message_id"], name="transmissions_provider_id_idx"),
        ]
        constraints = [
            # The behaviours' rule (a constraint, not unique=True: no LIKE index on PostgreSQL).
            models.UniqueConstraint(fields=["active_key"], name="transmissions_active_key"),
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
        """Not processed yet: waiting or being sent, and ``datetime_processed`` unset."""
        waiting = (self.Status.CREATED, self.Status.PROCESSING)
        return self.datetime_processed is None and self.status in waiting

    @property
    def digest_items(self) -> list[DigestItem]:
        """The items a digest collected, in the order they were triggered (``digests.py``);
        ``[]`` for a notification that is not a digest. Loaded with a claimed batch (one
        query for the batch), else read here."""
        items: list[DigestItem] | None = self.__dict__.get(related.DIGEST_ITEMS)
        if items is None:
            items = []
            if self.digest_key is not None and self.pk is not None:
                items = list(
                    DigestItem.objects.using(self._state.db)
                    .filter(digest_id=self.pk)
                    .select_related("trigger_user")
                    .order_by("pk")
                )
            self.__dict__[related.DIGEST_ITEMS] = items
        return items

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

    def send(self) -> bool:
        """Process this notification now, due or not; return whether this call processed it.

        transmissions 0.2's entry point, through the workers' claim: the row is taken only
        if it is still waiting, so it is sent at most once however often (and from however
        many processes) this is called; otherwise nothing happens and False is returned.
        The outcome is the batch's: CANCELLED, SUCCESSFULLY_SENT, FAILED, a retry, or a
        policy's hold, and DELETE_AFTER_PROCESSING deletes a sent or cancelled row (then
        ``pk`` is None). A message that raises while being built or checked leaves the row
        BROKEN and the exception is raised again. This instance's fields are refreshed.
        """
        if self.pk is None:
            raise ValueError("Notification.send(): the notification is not saved.")
        pk = self.pk
        delivery = None
        try:
            delivery = worker.process_one(pk)
        except Exception:
            self._reload_outcome(pk, Status.BROKEN)
            raise
        self._reload_outcome(pk, None if delivery is None else delivery.status)
        return delivery is not None

    def _reload_outcome(self, pk: Any, status: int | None) -> None:
        fields = ["status", "datetime_processed", "datetime_scheduled", "reason", "attempts"]
        fields += ["claimed_until", "dedup_key", "provider_message_id"]
        row = type(self)._default_manager.filter(pk=pk).values(*fields).first()
        if row is None:  # deleted: DELETE_AFTER_PROCESSING, as Model.delete() leaves it
            if status is not None:
                self.status = status
            self.datetime_processed = self.datetime_processed or timezone.now()
            self.pk = None
            return
        for name, value in row.items():
            setattr(self, name, value)

    def get_admin_url(self) -> str:
        """Return the path of this notification's page in the admin."""
        opts = self._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=(self.pk,))

    def mark_seen(self, when: Any = None) -> int:
        """Set ``datetime_seen`` now (if not set yet) and save that field.

        A step of an escalation: first its event's waiting steps end CANCELLED (``"seen:
        ..."``), in one UPDATE; so once it reads seen, no worker can claim one of them.
        Return how many steps that cancelled (0 for a single-channel message).
        """
        if self.datetime_seen is not None:
            return 0
        cancelled = self._seen_ends_escalation()
        self.datetime_seen = when or timezone.now()
        self.save(update_fields=["datetime_seen"])
        return cancelled

    def mark_consumed(self, when: Any = None) -> None:
        """Set ``datetime_consumed`` (and ``datetime_seen`` if unset) and save them; a step of an
        escalation ends its event's waiting steps, as ``mark_seen()`` does."""
        if self.datetime_consumed is None:
            self._seen_ends_escalation()
            when = when or timezone.now()
            self.datetime_consumed = when
            self.datetime_seen = self.datetime_seen or when
            self.save(update_fields=["datetime_consumed", "datetime_seen"])

    def _seen_ends_escalation(self) -> int:
        if not self.escalation or self.datetime_seen is not None:
            return 0
        steps = type(self)._default_manager.using(self._state.db).filter(escalation=self.escalation)
        reason = (
            f"{SEEN_CODE}: step {self.trigger_name} (notification {self.pk}) was seen "
            "before this step was due"
        )
        cancelled = int(steps.cancel(reason))
        if cancelled:
            logger.info("Cancelled %d waiting escalation step(s): %s", cancelled, reason)
        return cancelled

    def cancel_escalation(self, reason: str = "the event was cancelled by the application") -> int:
        """Cancel every waiting step of this notification's escalation in one UPDATE; return how many.

        Steps being sent right now, or processed, are left as they are; a notification that
        is not a step of an escalation cancels only itself.
        """
        manager = type(self)._default_manager.using(self._state.db)
        if not self.escalation:
            return int(self.cancel(reason))
        return manager.filter(escalation=self.escalation).cancel(reason)


# A claimed batch's users are read on first use, in one query for the batch (internals.py).
internals.install_deferred(Notification, ("target_user", "trigger_user"))


class DeliveryEventQuerySet(models.QuerySet["DeliveryEvent"]):
    def orphaned(self) -> DeliveryEventQuerySet:
        """The events whose notification was deleted (delete them for privacy: they hold
        the address)."""
        return self.exclude(notification_id__in=Notification.objects.values("pk"))


class DeliveryEvent(models.Model):
    """One thing a provider said happened to a sent notification: delivered, bounced, opened...

    Written by ``tracking.record_event()`` (from anymail's ``tracking`` signal and the Twilio
    status callback), once per ``(provider, event_id)``: a webhook delivered twice is
    stored once.
    """

    # No cascade, in Django or in the database: a cascade would make every DELETE of
    # notifications (DELETE_AFTER_PROCESSING's, once sent) look for events first, one more
    # query per batch. Deleting a notification leaves its events, which
    # ``DeliveryEvent.objects.orphaned()`` finds.
    notification = models.ForeignKey(
        Notification,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="delivery_events",
    )
    # "twilio", or anymail's ESP name in lower case ("sendgrid", "amazon ses"...).
    provider = models.CharField(max_length=64)
    # The provider's id of the event (or one derived from it: see tracking.py).
    event_id = models.CharField(max_length=255)
    # The provider's own word ("bounced", "undelivered"...) and the state it maps to.
    event_type = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=DeliveryState.choices)
    # When it happened, by the provider's clock (when it was received, if the provider
    # gives no time), and when it was received.
    timestamp = models.DateTimeField()
    datetime_received = models.DateTimeField(default=timezone.now)
    # The address the event is about, and the provider's explanation (a bounce's SMTP reply...).
    address = models.CharField(max_length=255, blank=True, default="")
    description = models.CharField(max_length=REASON_MAX_LENGTH, blank=True, default="")
    # The provider's raw event, as JSON.
    detail = models.JSONField(default=dict, blank=True)

    objects = DeliveryEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivery event")
        verbose_name_plural = _("delivery events")
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="transmissions_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} ({self.event_id})"


class Suppression(models.Model):
    """An address that must not be sent to on a channel (a hard bounce, a complaint).

    ``tracking.SuppressionPolicy`` cancels the notifications to it until the row is
    deleted (the admin's "clear" action) or the user gets a new address.
    """

    # The notification's channel kind ("email", "sms") and the address, normalised
    # (``tracking.normalise_address()``).
    channel = models.CharField(max_length=CHANNEL_MAX_LENGTH)
    address = models.CharField(max_length=255)
    reason = models.CharField(max_length=REASON_MAX_LENGTH)
    # The event that caused it (None when added by hand).
    event = models.ForeignKey(DeliveryEvent, on_delete=models.SET_NULL, null=True, blank=True)
    datetime_created = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppressed addresses")
        constraints = [
            models.UniqueConstraint(fields=["channel", "address"], name="transmissions_suppressed_once"),
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.channel})"


class SendSlot(models.Model):
    """One of the ``N`` slots of a send rate "N per period" (``sendrate.py``).

    A worker takes a free slot before each transmit of a rate-limited channel and frees it
    once the transmit returned, a period later: so two transmits through one slot are a
    period apart, and any period holds at most ``N`` of them. Rows are made on first use;
    nothing else reads or writes them.
    """

    # The channel kind ("email") or the message class's ``send_rate_key``.
    key = models.CharField(max_length=CHANNEL_MAX_LENGTH)
    number = models.PositiveIntegerField()
    # When the slot may be taken again; while a transmit holds it, its batch's lease plus a
    # period (so a worker that died holding it frees it a period after its claim expired).
    free_at = models.DateTimeField()

    class Meta:
        verbose_name = _("send slot")
        verbose_name_plural = _("send slots")
        constraints = [
            models.UniqueConstraint(fields=["key", "number"], name="transmissions_send_slot_once"),
        ]
        # A take reads a key's earliest slot: without it, a scan of all its slots each time.
        indexes = [models.Index(fields=["key", "free_at"], name="transmissions_slot_earliest")]

    def __str__(self) -> str:
        return f"{self.key} #{self.number}: free at {self.free_at.isoformat()}"


class Preference(models.Model):
    """A user's choice for one category of messages on one channel kind: on or off.

    Absent, the category's default for the channel applies (``categories.py``). Read and
    written through the preference source (``preferences.py``), which a project may replace.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_preferences",
        # Served by the unique constraint below, which starts with the user.
        db_index=False,
    )
    category = models.CharField(max_length=CATEGORY_MAX_LENGTH)
    channel = models.CharField(max_length=CHANNEL_MAX_LENGTH)
    enabled = models.BooleanField()
    datetime_updated = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "category", "channel"], name="transmissions_preference_once"
            ),
        ]

    def __str__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"{self.category} on {self.channel}: {state} (user {self.user_id})"


class DigestItemQuerySet(models.QuerySet["DigestItem"]):
    def orphaned(self) -> DigestItemQuerySet:
        """The items whose digest was deleted by hand (the admin, a queryset's ``delete()``)."""
        return self.exclude(digest_id__in=Notification.objects.values("pk"))


class DigestItem(models.Model):
    """One trigger of a digested message: what the digest it joined will say (``digests.py``).

    Its digest is a Notification like any other (claimed, sent, cancelled once), so the
    items are sent at most once, all together, by whoever claims it.
    """

    # No cascade in Django or in the database, as for DeliveryEvent: a cascade would make
    # every DELETE of notifications look for items first (one more query per batch of
    # DELETE_AFTER_PROCESSING rows). A digest deleted by hand leaves its items, which
    # ``DigestItem.objects.orphaned()`` finds; deleting the user deletes them (target_user).
    digest = models.ForeignKey(
        Notification, on_delete=models.DO_NOTHING, db_constraint=False, related_name="digest_item_set"
    )
    target_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    trigger_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    content_type = models.ForeignKey(
        ContentType, on_delete=models.SET_NULL, null=True, blank=True, db_index=False, related_name="+"
    )
    object_id = models.CharField(max_length=64, null=True, blank=True)
    content = GenericForeignKey("content_type", "object_id")
    data_bytes = models.BinaryField(db_column="data", null=True, blank=True, editable=False)
    datetime_created = models.DateTimeField(default=timezone.now)

    objects = DigestItemQuerySet.as_manager()

    class Meta:
        verbose_name = _("digest item")
        verbose_name_plural = _("digest items")

    def __str__(self) -> str:
        return f"item {self.pk} of digest {self.digest_id}"

    @property
    def data(self) -> Any:
        """The trigger's data, deserialized on first access; ``{}`` when none was given."""
        value = self.__dict__.get("_data", _UNSET)
        if value is _UNSET:
            raw = self.data_bytes
            try:
                value = {} if raw is None else get_serializer().loads(bytes(raw))
            except Exception as exc:
                raise DataDecodeError(f"Digest item {self.pk}: stored data cannot be read: {exc!r}") from exc
            self.__dict__["_data"] = value
        return value


class DigestFrequency(models.Model):
    """A user's choice of how often a digested category comes on one channel kind: a name of
    ``TRANSMISSIONS_DIGEST_FREQUENCIES`` ("instant", "hourly", "daily", "weekly").

    Absent, the message's own window applies. Read and written through the preference
    source (``preferences.py``), like ``Preference``.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    category = models.CharField(max_length=CATEGORY_MAX_LENGTH)
    channel = models.CharField(max_length=CHANNEL_MAX_LENGTH)
    frequency = models.CharField(max_length=32)
    datetime_updated = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("digest frequency")
        verbose_name_plural = _("digest frequencies")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "category", "channel"], name="transmissions_digest_frequency_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category} on {self.channel}: {self.frequency} (user {self.user_id})"
