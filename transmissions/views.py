"""Optional views: ``path("notifications/", include("transmissions.urls"))``.

The inbox, the preferences page (``preferences``) and the one-click unsubscribe page
(``unsubscribe``, see ``unsubscribe.py``).

``inbox`` lists the signed-in user's sent notifications, newest first, paginated,
and marks them all seen; ``open`` marks one consumed and redirects to its content.
Override the templates ``transmissions/base.html`` (to extend your site's base) and
``transmissions/notification_list.html`` to restyle them; the default style is the
static file ``transmissions/transmissions.css``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render, resolve_url
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.generic import ListView, TemplateView

from transmissions import categories, preferences, related, unsubscribe
from transmissions.models import Notification
from transmissions.querysets import NotificationQuerySet

logger = logging.getLogger("transmissions")


def inbox_queryset(user: Any) -> NotificationQuerySet:
    """Return ``user``'s sent notifications, newest first, with their users; an escalation once, by
    its earliest sent step (``one_per_event()``).

    Fetch the contents of the rows you show with ``prefetch_contents()``.
    """
    return (
        Notification.objects.for_user(user)
        .sent()
        .one_per_event()
        .select_related("target_user", "trigger_user", "content_type")
        .order_by("-datetime_created", "-pk")
    )


def prefetch_contents(notifications: list[Notification]) -> None:
    """Fetch the ``content`` of ``notifications``, one query per content type.

    Unlike ``prefetch_related("content")``, a notification whose content type has no
    model any more (its app was removed), or whose ``object_id`` does not fit the
    model's key, does not make this raise: its ``content`` reads ``None``, as for a
    deleted object (``transmissions.related``). The digests among them get their items
    (``Notification.digest_items``): one query more for them all, none without digests.
    """
    related.attach_contents(notifications)
    if notifications:
        related.attach_digest_items(notifications[0]._state.db or "default", notifications)


def same_origin(request: HttpRequest) -> bool:
    """Return whether ``request`` came from this site or from the user (a typed address, a
    bookmark), not from a link or a frame on another site.

    The browser's ``Sec-Fetch-Site`` header says so ("same-origin" or "none"); a browser
    that sends none is judged by its ``Referer``, when it sends one (this site's host).
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    referer = request.headers.get("Referer")
    if not referer:
        return True
    return url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()})


class NotificationListView(LoginRequiredMixin, ListView):  # type: ignore[type-arg]
    """The signed-in user's inbox.

    Opening it marks every sent notification of the user seen (the badge counts
    what arrived since the last visit); the page still shows as new the ones that
    were unseen before this request. Only a visit from this site or from the user
    marks them (``same_origin()``): a link on another site shows the page and changes
    nothing.
    """

    template_name = "transmissions/notification_list.html"
    context_object_name = "notifications"
    paginate_by = 20

    def get_queryset(self) -> NotificationQuerySet:
        return inbox_queryset(self.request.user)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # Fetch the rows shown (the page's, when paginated) with their old datetime_seen,
        # before get() marks them seen, and their contents.
        shown = context["object_list"]
        rows = list(shown)
        prefetch_contents(rows)
        context["object_list"] = rows
        name = self.get_context_object_name(shown)
        if name:
            context[name] = rows
        if context.get("page_obj") is not None:
            context["page_obj"].object_list = rows
        return context

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().get(request, *args, **kwargs)
        user: Any = request.user  # signed in: LoginRequiredMixin
        if same_origin(request):
            Notification.objects.for_user(user).sent().mark_seen()
        return response


class NotificationOpenView(LoginRequiredMixin, View):
    """Mark one of the user's notifications consumed and go to what it is about.

    Redirects to ``content.get_absolute_url()`` when the content has one and it
    stays on this site (``url_has_allowed_host_and_scheme``: a path, or this host),
    else to the inbox. Another user's notification is a 404.
    """

    fallback_url = "transmissions:inbox"

    def get(self, request: HttpRequest, uuid: str) -> HttpResponseRedirect:
        user: Any = request.user  # signed in: LoginRequiredMixin
        notification = get_object_or_404(Notification.objects.for_user(user).sent(), uuid=uuid)
        notification.mark_consumed()
        content = related.content(notification)
        get_url = getattr(content, "get_absolute_url", None)
        url = get_url() if callable(get_url) else None
        if url is not None and not url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            logger.warning(
                "Notification %s: not redirecting to %r, which leaves this site; going to the inbox.",
                notification.pk,
                url,
            )
            url = None
        return HttpResponseRedirect(url if url is not None else resolve_url(self.fallback_url))


@method_decorator(csrf_protect, name="dispatch")
class PreferencesView(LoginRequiredMixin, TemplateView):
    """The signed-in user's preferences: a checkbox per category and channel kind, and a
    digest frequency choice where the category has a digested message on that kind.

    The form names the cells it shows (``shown``): a checked one is turned on, an unchecked
    one off; cells the form does not show are left as they are. A shown cell's frequency
    (``<category>:<channel>:frequency``): ``""`` for the message's own window, or a name of
    ``TRANSMISSIONS_DIGEST_FREQUENCIES``; absent, left as it is. A frequency not offered
    is a 400 and nothing is written. CSRF-protected even where the project has no
    ``CsrfViewMiddleware``. After saving, the page redirects to itself with ``?saved=1``.
    Override ``transmissions/preferences.html``.
    """

    template_name = "transmissions/preferences.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["rows"] = preferences.matrix(self.request.user)
        context["saved"] = self.request.GET.get("saved") == "1"
        return context

    def post(self, request: HttpRequest) -> HttpResponse:
        user: Any = request.user  # signed in: LoginRequiredMixin
        shown = set(request.POST.getlist("shown"))
        offered = preferences.digest_frequencies()
        switches: list[tuple[preferences.Cell, bool]] = []
        frequencies: list[tuple[preferences.Cell, str | None]] = []
        for row in preferences.matrix(user):
            for cell in row.cells:
                if cell.field_name not in shown:
                    continue
                wanted = cell.field_name in request.POST
                if wanted != cell.enabled:
                    switches.append((cell, wanted))
                frequency = request.POST.get(cell.frequency_field_name)
                if not cell.digested or frequency is None:
                    continue
                if frequency and frequency not in offered:
                    # Checked before anything is written: a bad form changes nothing.
                    logger.warning("Preferences of user %s refused: frequency %r.", user.pk, frequency)
                    context = self.get_context_data(frequency_error=True)
                    return self.render_to_response(context, status=400)
                if (frequency or None) != cell.frequency:
                    frequencies.append((cell, frequency or None))
        for cell, wanted in switches:
            preferences.set_preference(user, cell.category, cell.channel, wanted)
        for cell, chosen in frequencies:
            preferences.set_frequency(user, cell.category, cell.channel, chosen)
        return HttpResponseRedirect(request.path + "?saved=1")


@method_decorator(csrf_exempt, name="dispatch")
class UnsubscribeView(View):
    """One-click unsubscribe (RFC 8058), at the URL of an email's ``List-Unsubscribe`` header.

    No login: the signed token in the URL says whose preference, for which category and
    channel kind. GET shows a confirmation page and changes nothing (mail clients and
    scanners fetch links); POST with ``List-Unsubscribe=One-Click`` (what mail clients send,
    and what the confirmation page's button sends) turns the preference off. A token that
    is tampered with, or was not made by this site, or a user or category that no longer
    exists: 400, nothing written. CSRF-exempt, as RFC 8058 requires: the token is the proof.
    """

    template_name = "transmissions/unsubscribe.html"

    def resolve(self, token: str) -> tuple[Any, Any, str] | None:
        try:
            scope = unsubscribe.read_token(token)
        except signing.BadSignature:
            return None
        category = categories.get(scope.category)
        user_model = get_user_model()
        user = user_model._default_manager.filter(pk=scope.user_pk).first() if category else None
        if user is None:
            return None
        return user, category, scope.channel

    def refuse(self, request: HttpRequest, why: str) -> HttpResponse:
        logger.warning("Unsubscribe refused (%s): %s.", request.method, why)
        return render(request, self.template_name, {"invalid": True}, status=400)

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        found = self.resolve(token)
        if found is None:
            return self.refuse(request, "invalid token")
        _, category, channel = found
        context = {"category": category, "channel": channel, "one_click": unsubscribe.ONE_CLICK}
        return render(request, self.template_name, context)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        found = self.resolve(token)
        if found is None:
            return self.refuse(request, "invalid token")
        if request.POST.get("List-Unsubscribe") != "One-Click":
            return self.refuse(request, "the body is not List-Unsubscribe=One-Click")
        user, category, channel = found
        preferences.source().save(user, category.name, channel, False)
        logger.info("User %s unsubscribed from %s on %s.", user.pk, category.name, channel)
        return render(request, self.template_name, {"category": category, "channel": channel, "done": True})
