"""One-click unsubscribe (RFC 8058): the signed token, its URL and the email headers.

Every email of a category (and not ``required``) carries ``List-Unsubscribe: <URL>``
and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``, once
``TRANSMISSIONS_UNSUBSCRIBE_BASE_URL`` says where the site is. The URL's token is
signed with ``django.core.signing`` (``SECRET_KEY``, salted for this use) and names the
user, the category and the channel kind: it turns off that one preference and nothing
else. ``views.UnsubscribeView`` answers the URL: a POST turns the preference off without
a login, a GET only shows a confirmation page (mail clients and scanners fetch links).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.urls import NoReverseMatch, reverse

from transmissions import categories
from transmissions.conf import conf
from transmissions.registry import registry

logger = logging.getLogger("transmissions")

SALT = "transmissions.unsubscribe"
URL_NAME = "transmissions:unsubscribe"
ONE_CLICK = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class Scope:
    """What a token unsubscribes from: one user's category on one channel kind."""

    user_pk: str
    category: str
    channel: str


def make_token(user: Any, category: str, channel: str) -> str:
    """Return the signed token that turns ``user``'s ``category`` off on ``channel``."""
    return signing.dumps([str(user.pk), category, channel], salt=SALT, compress=False)


def read_token(token: str) -> Scope:
    """Return what ``token`` unsubscribes from; raise ``signing.BadSignature`` if it was not
    made by ``make_token()`` with this site's key (tampered, or another site's, or not a token)."""
    value = signing.loads(token, salt=SALT)
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)):
        raise signing.BadSignature("not an unsubscribe token")
    return Scope(*value)


def url(user: Any, category: str, channel: str) -> str | None:
    """Return the absolute one-click unsubscribe URL, or None when
    ``TRANSMISSIONS_UNSUBSCRIBE_BASE_URL`` is not set or ``transmissions.urls`` is not included
    (system checks W071 and W072)."""
    base = conf.TRANSMISSIONS_UNSUBSCRIBE_BASE_URL
    if not base:
        return None
    try:
        path = reverse(URL_NAME, kwargs={"token": make_token(user, category, channel)})
    except NoReverseMatch:
        logger.warning("No one-click unsubscribe link: %r cannot be reversed (transmissions.W072).", URL_NAME)
        return None
    return str(base).rstrip("/") + path


def url_for(notification: Any) -> str | None:
    """Return the unsubscribe URL of ``notification``'s category and channel, or None when its
    message has no category, is ``required``, or links are not configured."""
    message_cls = registry.find(notification.trigger_name)
    name = categories.of(message_cls)
    if name is None:
        return None
    kind = notification.channel or getattr(message_cls, "channel", "")
    return url(notification.target_user, name, kind)


def headers(notification: Any) -> dict[str, str]:
    """Return the RFC 8058 headers for an email of ``notification`` (empty when it gets none)."""
    link = url_for(notification)
    if link is None:
        return {}
    return {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": ONE_CLICK}


__all__ = ["ONE_CLICK", "Scope", "headers", "make_token", "read_token", "url", "url_for"]
