"""Optional inbox views: ``path("notifications/", include("transmissions.urls"))``.

``inbox`` lists the signed-in user's sent notifications, newest first, paginated,
and marks them all seen; ``open`` marks one consumed and redirects to its content.
Override the templates ``transmissions/base.html`` (to extend your site's base) and
``transmissions/notification_list.html`` to restyle them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, resolve_url
from django.views import View
from django.views.generic import ListView

from transmissions.models import Notification
from transmissions.querysets import NotificationQuerySet


def inbox_queryset(user: Any) -> NotificationQuerySet:
    """Return ``user``'s sent notifications, newest first, ready to render."""
    return (
        Notification.objects.for_user(user)
        .sent()
        .select_related("target_user", "trigger_user", "content_type")
        .prefetch_related("content")
        .order_by("-datetime_created", "-pk")
    )


class NotificationListView(LoginRequiredMixin, ListView):  # type: ignore[type-arg]
    """The signed-in user's inbox.

    Opening it marks every sent notification of the user seen (the badge counts
    what arrived since the last visit); the page still shows as new the ones that
    were unseen before this request.
    """

    template_name = "transmissions/notification_list.html"
    context_object_name = "notifications"
    paginate_by = 20

    def get_queryset(self) -> NotificationQuerySet:
        return inbox_queryset(self.request.user)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().get(request, *args, **kwargs)
        # Fetch the rows shown (with their old datetime_seen) before marking: the template
        # iterates this same, now cached, queryset (the page's, when paginated).
        len(response.context_data["object_list"])  # type: ignore[attr-defined]
        user: Any = request.user  # signed in: LoginRequiredMixin
        Notification.objects.for_user(user).sent().mark_seen()
        return response


class NotificationOpenView(LoginRequiredMixin, View):
    """Mark one of the user's notifications consumed and go to what it is about.

    Redirects to ``content.get_absolute_url()`` when the content has one, else to
    the inbox. Another user's notification is a 404.
    """

    fallback_url = "transmissions:inbox"

    def get(self, request: HttpRequest, uuid: str) -> HttpResponseRedirect:
        user: Any = request.user  # signed in: LoginRequiredMixin
        notification = get_object_or_404(Notification.objects.for_user(user).sent(), uuid=uuid)
        notification.mark_consumed()
        content = notification.content
        get_url = getattr(content, "get_absolute_url", None)
        return HttpResponseRedirect(get_url() if callable(get_url) else resolve_url(self.fallback_url))
