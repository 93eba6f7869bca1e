"""The Notification admin: look, search, cancel, send again; never edit a row.

A notification's trigger name, users, content and schedule are what its behaviour's
dedup key was computed from, and its outcome is the worker's: an edit of any of them
would break the behaviour (a SEND_ONCE row moved to another user keeps the first
user's key). So every row is read-only here, whatever its status, and its state
changes only through the actions, which go through the same code as the worker.
A notification's page shows its delivery timeline (the provider's events, oldest first).

The suppression list (``Suppression``): look, add an address by hand, clear one. The users'
choices (``Preference``): look, search, change one on a user's behalf. Their digest frequencies
(``DigestFrequency``): look, search, change one to another offered frequency, or delete it
(back to the message's own window); made only by the user (the preferences page) or
``preferences.set_frequency()``, never added here.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.db.models import Model
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from transmissions import preferences, related
from transmissions.models import DigestFrequency, Notification, Preference, Suppression
from transmissions.querysets import NotificationQuerySet
from transmissions.tracking import normalise_address

logger = logging.getLogger("transmissions")

# Longer content titles are cut (in full in the link's title) so that a row stays one line.
CONTENT_CHARS = 40


class HeldFilter(admin.SimpleListFilter):
    """By the policy that held them (``Notification.objects.held(code)``)."""

    title = _("held by a policy")
    parameter_name = "held"
    codes = (("suppressed", _("suppressed address")), ("opted-out", _("opted out")))

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return self.codes

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        return queryset.held(value) if value in dict(self.codes) else queryset


class NotificationChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # The page's contents, one query per content type: not one per row. Only the page:
        # the actions get the unsliced queryset, whose iterator() cannot prefetch.
        # A row whose content cannot be loaded (its model gone, an object_id that does not
        # fit the key) is shown without it (content_link): related.py sets it aside.
        self.result_list = list(self.result_list)
        related.attach_contents(self.result_list)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    # Five columns: with Django's navigation and filter sidebars open, a 1280 px wide
    # window leaves the list about 600 px (see static/transmissions/admin.css).
    list_display = ("trigger_name", "target_user_link", "status_when", "content_link", "scheduled")
    list_display_links = ("trigger_name",)
    list_filter = (
        "status",
        HeldFilter,
        "delivery_state",
        "channel",
        "trigger_name",
        "datetime_scheduled",
        "datetime_processed",
    )
    list_select_related = ("target_user", "content_type")
    date_hierarchy = "datetime_scheduled"
    ordering = ("-datetime_scheduled",)
    # Counting a table of millions of rows on every page is not worth it.
    show_full_result_count = False
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "uuid",
                    "trigger_name",
                    "channel",
                    "status",
                    "reason",
                    "target_user",
                    "trigger_user",
                    "content_link",
                    "escalation_steps",
                )
            },
        ),
        (
            _("Dates"),
            {
                "fields": (
                    "datetime_created",
                    "datetime_scheduled",
                    "datetime_processed",
                    "datetime_seen",
                    "datetime_consumed",
                )
            },
        ),
        (
            _("Processing"),
            {
                "fields": (
                    "attempts",
                    "claimed_until",
                    "dedup_key",
                    "idempotency_key",
                    "throttle_slot",
                    "digest_key",
                    "digest_item_list",
                    "data_repr",
                )
            },
        ),
        (
            _("Delivery"),
            {"fields": ("provider_message_id", "delivery_state", "delivery_state_at", "delivery_timeline")},
        ),
    )
    readonly_fields = (
        "content_link",
        "data_repr",
        "delivery_timeline",
        "escalation_steps",
        "digest_item_list",
    )
    actions = ("cancel", "resend")

    class Media:
        css = {"all": ("transmissions/admin.css",)}

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Notifications are created by trigger(), which enforces the behaviours.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The model's change permission still allows the actions (obj is None for them);
        # a row itself is only ever shown (see the module's docstring).
        return obj is None and super().has_change_permission(request)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return NotificationChangeList

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        user_model = get_user_model()
        fields = ["=uuid", "=idempotency_key", "trigger_name", f"target_user__{user_model.USERNAME_FIELD}"]
        email = user_model.get_email_field_name()
        if email != user_model.USERNAME_FIELD and any(f.name == email for f in user_model._meta.get_fields()):
            fields.append(f"target_user__{email}")
        return fields

    # -- columns -----------------------------------------------------------------------

    @admin.display(description=_("user"), ordering="target_user")
    def target_user_link(self, obj: Notification) -> str:
        return obj.target_user.get_username()

    @admin.display(description=_("content"))
    def content_link(self, obj: Notification) -> str:
        content_type = obj.content_type
        if content_type is None:
            return self.get_empty_value_display()
        if content_type.model_class() is None:
            return _("%(type)s #%(id)s (no such model)") % {
                "type": f"{content_type.app_label}.{content_type.model}",
                "id": obj.object_id,
            }
        content = related.content(obj)  # prefetched on the changelist
        problem = related.content_problem(obj)
        if problem is not None:
            what = {"type": content_type.name, "id": obj.object_id}
            label = _("%(type)s #%(id)s (cannot be loaded)") % what
            return format_html('<span title="{}">{}</span>', problem, label)
        if content is None:
            return _("%(type)s #%(id)s (deleted)") % {"type": content_type.name, "id": obj.object_id}
        try:
            text = str(content)
        except Exception as exc:  # a project's __str__ must not take the page down
            logger.warning("Notification %s: str() of its content raised %r.", obj.pk, exc)
            text = f"#{obj.object_id}"
        title = f"{content_type.name} #{obj.object_id}: {text}"
        short = Truncator(text).chars(CONTENT_CHARS)
        url = self._admin_url(content)
        if url is None:
            return format_html('<span title="{}">{}</span>', title, short)
        return format_html('<a href="{}" title="{}">{}</a>', url, title, short)

    @admin.display(description=_("scheduled"), ordering="datetime_scheduled")
    def scheduled(self, obj: Notification) -> str:
        return self._when(obj.datetime_scheduled)

    @admin.display(description=_("status"), ordering="status")
    def status_when(self, obj: Notification) -> str:
        # Why, and when it was processed and seen, in the tooltip: no room for more columns.
        times = [
            f"{name} {self._local(value)}"
            for name, value in ((_("processed"), obj.datetime_processed), (_("seen"), obj.datetime_seen))
            if value is not None
        ]
        if obj.delivery_state:
            times.append(f"{_('delivery')}: {obj.get_delivery_state_display()}")
        tip = "; ".join([obj.reason, ", ".join(times)] if obj.reason else times)
        return format_html('<span title="{}">{}</span>', tip, obj.get_status_display())

    @admin.display(description=_("delivery timeline"))
    def delivery_timeline(self, obj: Notification) -> str:
        """What the provider said happened, oldest first (one query, on the change page only)."""
        events = list(obj.delivery_events.order_by("timestamp", "pk"))
        if not events:
            return str(_("No delivery event yet."))
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (self._local(e.timestamp), e.get_state_display(), e.provider, e.event_type, e.description)
                for e in events
            ),
        )
        names = (_("when"), _("state"), _("provider"), _("event"), _("detail"))
        head = format_html_join("", "<th>{}</th>", ((name,) for name in names))
        return format_html('<table class="transmissions-timeline"><tr>{}</tr>{}</table>', head, rows)

    @admin.display(description=_("digest items"))
    def digest_item_list(self, obj: Notification) -> str:
        """The items a digest collected, in order (one query, on the change page only)."""
        if obj.digest_key is None:
            return self.get_empty_value_display()
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    self._local(item.datetime_created),
                    item.trigger_user.get_username() if item.trigger_user else "",
                    f"{item.content_type_id}:{item.object_id}" if item.content_type_id else "",
                    _item_data(item),
                )
                for item in obj.digest_items
            ),
        )
        names = (_("triggered"), _("trigger user"), _("content"), _("data"))
        head = format_html_join("", "<th>{}</th>", ((name,) for name in names))
        count = len(obj.digest_items)
        return format_html(
            '<table class="transmissions-timeline"><tr>{}</tr>{}</table><p>{}</p>',
            head,
            rows,
            ngettext("%(count)d item", "%(count)d items", count) % {"count": count},
        )

    @admin.display(description=_("escalation"))
    def escalation_steps(self, obj: Notification) -> str:
        """The steps of this notification's escalation, in order (one query, on the change page only)."""
        if not obj.escalation:
            return self.get_empty_value_display()
        steps = Notification.objects.filter(escalation=obj.escalation).order_by("datetime_scheduled", "pk")
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    n.get_admin_url(),
                    n.trigger_name,
                    n.channel,
                    self._local(n.datetime_scheduled),
                    n.get_status_display(),
                    n.reason,
                )
                for n in steps
            ),
        )
        names = (_("step"), _("channel"), _("scheduled"), _("status"), _("reason"))
        head = format_html_join("", "<th>{}</th>", ((name,) for name in names))
        listing = reverse("admin:transmissions_notification_changelist") + f"?escalation={obj.escalation}"
        return format_html(
            '<table class="transmissions-timeline"><tr>{}</tr>{}</table><a href="{}">{}</a>',
            head,
            rows,
            listing,
            _("these steps in the list"),
        )

    @admin.display(description=_("data"))
    def data_repr(self, obj: Notification) -> str:
        try:
            return repr(obj.data)
        except Exception as exc:
            return f"unreadable: {exc}"

    def _when(self, value: datetime.datetime) -> str:
        # Short and sortable (2025-01-31 14:05) so that a row stays on one line; the
        # full date and time in the tooltip.
        return format_html(
            '<time datetime="{}" title="{}">{}</time>',
            value.isoformat(),
            self._local(value),
            timezone.localtime(value).strftime("%Y-%m-%d %H:%M"),
        )

    def _local(self, value: Any) -> str:
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")

    def _admin_url(self, obj: Model) -> str | None:
        if not self.admin_site.is_registered(type(obj)):
            return None
        opts = obj._meta
        return reverse(
            f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)]
        )

    # -- actions -----------------------------------------------------------------------

    # Short descriptions: the action menu is as wide as the longest one.
    @admin.action(description=_("Cancel the waiting ones"), permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: NotificationQuerySet) -> None:
        count = queryset.cancel(f"cancelled in the admin by {request.user}")
        self.message_user(
            request,
            ngettext("%d notification cancelled.", "%d notifications cancelled.", count) % count,
            messages.SUCCESS,
        )

    @admin.action(description=_("Send again (failed, cancelled, broken)"), permissions=["change"])
    def resend(self, request: HttpRequest, queryset: NotificationQuerySet) -> None:
        queued, skipped = queryset.requeue()
        text = ngettext(
            "%(count)d notification queued again.", "%(count)d notifications queued again.", queued
        ) % {"count": queued}
        if skipped:
            text += " " + ngettext(
                "%(count)d skipped: its behaviour still blocks it.",
                "%(count)d skipped: their behaviour still blocks them.",
                skipped,
            ) % {"count": skipped}
        self.message_user(request, text, messages.SUCCESS)


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The addresses nothing is sent to (hard bounces, complaints, or added here by hand).

    Clearing one (the action, or deleting it) lets notifications to it be sent again.
    """

    list_display = ("address", "channel", "reason", "datetime_created")
    list_filter = ("channel", "datetime_created")
    search_fields = ("=address", "reason")
    ordering = ("-datetime_created",)
    fields = ("channel", "address", "reason", "event_link", "datetime_created")
    readonly_fields = ("event_link", "datetime_created")
    actions = ("clear",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A suppression is added or cleared, never edited into another address.
        return (*self.readonly_fields, "channel", "address") if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.address = normalise_address(obj.channel, obj.address)
        super().save_model(request, obj, form, change)

    @admin.display(description=_("event"))
    def event_link(self, obj: Suppression) -> str:
        event = obj.event
        if event is None:
            return self.get_empty_value_display()
        url = reverse(
            f"{self.admin_site.name}:transmissions_notification_change", args=[event.notification_id]
        )
        return format_html('<a href="{}">{}</a>', url, str(event))

    @admin.action(description=_("Clear: send to these addresses again"), permissions=["delete"])
    def clear(self, request: HttpRequest, queryset: Any) -> None:
        addresses = list(queryset.values_list("channel", "address"))
        queryset.delete()
        for channel, address in addresses:
            logger.warning(
                "Suppression of %s on %s cleared in the admin by %s.", address, channel, request.user
            )
        self.message_user(
            request,
            ngettext("%d address cleared.", "%d addresses cleared.", len(addresses)) % len(addresses),
            messages.SUCCESS,
        )


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The choices users made (a category absent for a user has its default; see
    docs/preferences.md). Changing one here is changing it on the user's behalf."""

    list_display = ("user", "category", "channel", "enabled", "datetime_updated")
    list_filter = ("category", "channel", "enabled")
    search_fields = ("category",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    ordering = ("-datetime_updated",)

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        user_model = get_user_model()
        return (*self.search_fields, f"user__{user_model.USERNAME_FIELD}")


def _frequency_choices() -> list[tuple[str, str]]:
    return [(name, preferences.frequency_label(name)) for name in preferences.digest_frequencies()]


@admin.register(DigestFrequency)
class DigestFrequencyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The digest frequencies users chose (none: the message's own window; docs/digests.md).

    Whose, of which category and channel is fixed: the frequency can be changed to another
    of ``TRANSMISSIONS_DIGEST_FREQUENCIES`` on the user's behalf, or the row deleted. Rows
    are made by the user's choice, not here (no add).
    """

    list_display = ("user", "category", "channel", "frequency", "datetime_updated")
    list_filter = ("category", "channel", "frequency")
    search_fields = ("category",)
    list_select_related = ("user",)
    ordering = ("-datetime_updated",)
    fields = ("user", "category", "channel", "frequency", "datetime_updated")
    readonly_fields = ("user", "category", "channel", "datetime_updated")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        user_model = get_user_model()
        return (*self.search_fields, f"user__{user_model.USERNAME_FIELD}")

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "frequency":
            # Only an offered name: the worker ignores any other (the message's window applies).
            return forms.ChoiceField(choices=_frequency_choices, label=_("frequency"))
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.datetime_updated = timezone.now()
        super().save_model(request, obj, form, change)
        logger.info(
            "Digest frequency of user %s for %s on %s set to %s in the admin by %s.",
            obj.user_id,
            obj.category,
            obj.channel,
            obj.frequency,
            request.user,
        )


def _item_data(item: Any) -> str:
    try:
        return repr(item.data)[:200]
    except Exception as exc:  # unreadable data is shown, never a 500
        return f"(cannot be read: {exc!r})"
