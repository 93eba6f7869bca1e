"""``{% load transmissions %}``: the unseen count, a badge, a notification's text and age, its
unsubscribe link."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django import template
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext

from transmissions import unsubscribe
from transmissions.channels.inapp import as_html, entry
from transmissions.exceptions import DataDecodeError
from transmissions.models import Notification
from transmissions.querysets import FEED_CHANNEL

register = template.Library()
logger = logging.getLogger("transmissions")


def _user(context: template.Context) -> Any:
    request = context.get("request")
    return getattr(request, "user", None) or context.get("user")


@register.simple_tag(takes_context=True)
def unseen_notifications_count(context: template.Context) -> int:
    """Return how many sent notifications the signed-in user has not seen (0 when anonymous).

    ``{% unseen_notifications_count as n %}`` (one COUNT query).
    """
    user = _user(context)
    if user is None or not user.is_authenticated:
        return 0
    count: int = user.notifications.unseen_count()
    return count


@register.inclusion_tag("transmissions/badge.html", takes_context=True)
def notifications_badge(context: template.Context) -> dict[str, Any]:
    """Render a link to the inbox with the unseen count (``transmissions/badge.html``)."""
    user = _user(context)
    return {
        "user": user,
        "unseen_count": unseen_notifications_count(context),
        "authenticated": bool(user is not None and user.is_authenticated),
    }


@register.simple_tag
def notification_text(notification: Notification) -> str:
    """Return what the inbox shows for ``notification``, as HTML safe to show.

    The text an in-app message stored when it was sent (HTML already: shown as stored,
    even if its class is gone since), else the message class's ``inbox_text`` (a method
    called on the message built for this notification, or a plain attribute), else its
    ``subject``, else the trigger name; those are text, escaped here. A row that cannot
    be shown as it should (unreadable data, an ``inbox_text`` that raises) shows its
    trigger name, and the reason is logged: it never takes the page down.
    """
    if notification.channel == FEED_CHANNEL:
        try:
            stored = entry(notification).get("text")
        except DataDecodeError as exc:
            logger.warning("Notification %s: its in-app text cannot be read: %s", notification.pk, exc)
            stored = None
        if stored:
            return mark_safe(as_html(mark_safe(str(stored))))  # noqa: S308 - stored as HTML
    try:
        text = _message_text(notification)
    except Exception as exc:  # a project's inbox_text must not take the inbox down
        logger.warning(
            "Notification %s: its inbox text raised %r; showing its trigger name.", notification.pk, exc
        )
        text = notification.trigger_name
    return mark_safe(as_html(text))  # noqa: S308 - escaped by as_html()


def _message_text(notification: Notification) -> Any:
    cls = notification.message_class
    if cls is None:
        return notification.trigger_name
    text = getattr(cls, "inbox_text", None)
    if callable(text):
        text = getattr(cls(notification), "inbox_text")()  # noqa: B009 - bound to the instance
    return text or getattr(cls, "subject", "") or notification.trigger_name


@register.filter
def time_ago(value: datetime.datetime | None) -> str:
    """Return "just now" for a time less than a minute ago, else "3 hours ago" (one unit).

    ``{{ notification.datetime_created|time_ago }}``. A time in the future (another
    server's clock a little ahead) is "just now" too; ``None`` is "".
    """
    if value is None:
        return ""
    now = timezone.now() if timezone.is_aware(value) else datetime.datetime.now()
    if now - value < datetime.timedelta(minutes=1):
        return gettext("just now")
    return gettext("%(time)s ago") % {"time": timesince(value, now, depth=1)}


@register.simple_tag
def unsubscribe_url(notification: Notification) -> str:
    """Return the one-click unsubscribe URL of ``notification`` (its category on its channel), the
    one its email's List-Unsubscribe header holds; "" when it has none (no category,
    ``required``, or ``TRANSMISSIONS_UNSUBSCRIBE_BASE_URL`` not set).

    ``{% unsubscribe_url notification as link %}{% if link %}<a href="{{ link }}">...``
    """
    return unsubscribe.url_for(notification) or ""
