"""``{% load transmissions %}``: the unseen count, a badge, a notification's text and age, its
unsubscribe link."""

from __future__ import annotations

import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext

from transmissions import unsubscribe
from transmissions.channels.inapp import entry
from transmissions.exceptions import DataDecodeError
from transmissions.models import Notification
from transmissions.querysets import FEED_CHANNEL

register = template.Library()


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
    """Return what the inbox shows for ``notification``.

    The text an in-app message stored when it was sent (even if its class is gone
    since), else the message class's ``inbox_text`` (a method called on the message
    built for this notification, or a plain attribute), else its ``subject``, else the
    trigger name.
    """
    if notification.channel == FEED_CHANNEL:
        try:
            stored = entry(notification).get("text")
        except DataDecodeError:
            stored = None
        if stored:
            return str(stored)
    cls = notification.message_class
    if cls is None:
        return notification.trigger_name
    text = getattr(cls, "inbox_text", None)
    if callable(text):
        text = getattr(cls(notification), "inbox_text")()  # noqa: B009 - bound to the instance
    return str(text or getattr(cls, "subject", "") or notification.trigger_name)


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
