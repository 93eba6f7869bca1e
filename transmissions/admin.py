from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from transmissions.models import Notification
from transmissions.querysets import NotificationQuerySet


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "uuid",
        "trigger_name",
        "target_user",
        "status",
        "datetime_scheduled",
        "datetime_processed",
        "datetime_seen",
    )
    list_filter = ("status", "trigger_name", "datetime_scheduled", "datetime_processed")
    list_select_related = ("target_user",)
    raw_id_fields = ("target_user", "trigger_user")
    date_hierarchy = "datetime_scheduled"
    ordering = ("-datetime_scheduled",)
    # Counting a table of millions of rows on every page is not worth it.
    show_full_result_count = False
    readonly_fields = (
        "uuid",
        "datetime_created",
        "datetime_processed",
        "status",
        "attempts",
        "claimed_until",
        "dedup_key",
        "data_repr",
    )
    actions = ("cancel", "resend")

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        username = get_user_model().USERNAME_FIELD
        return ["=uuid", "trigger_name", f"target_user__{username}"]

    @admin.display(description=_("data"))
    def data_repr(self, obj: Notification) -> str:
        try:
            return repr(obj.data)
        except Exception as exc:
            return f"unreadable: {exc}"

    @admin.action(description=_("Cancel selected notifications that are waiting"))
    def cancel(self, request: HttpRequest, queryset: NotificationQuerySet) -> None:
        count = queryset.cancel(f"cancelled in the admin by {request.user}")
        self.message_user(
            request,
            ngettext("%d notification cancelled.", "%d notifications cancelled.", count) % count,
            messages.SUCCESS,
        )

    @admin.action(description=_("Send selected failed, cancelled or broken notifications again"))
    def resend(self, request: HttpRequest, queryset: NotificationQuerySet) -> None:
        queued, skipped = queryset.requeue()
        self.message_user(
            request,
            _("%(queued)d queued again, %(skipped)d skipped (still blocked by their behaviour).")
            % {"queued": queued, "skipped": skipped},
            messages.SUCCESS,
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Notifications are created by trigger(), which enforces the behaviours.
        return False
