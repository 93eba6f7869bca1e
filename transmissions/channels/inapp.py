"""In-app notifications: "sending" one makes it part of its user's feed.

Nothing leaves the server. **Decided**: the text is rendered once, at send time, and
stored in the notification's ``data`` under ``"inapp"`` (``{"text": ..., "url": ...}``),
so a feed shows what the user was told then, in one query, without the message class
(which may since have changed or been removed) and without rendering a template per
row. The feed itself is ``Notification.objects.feed(user)``.

One escaping rule: the stored text is HTML, safe to show as stored (``|safe``), never
escaped again. A template's output was escaped when it was rendered; what
``get_text()`` returns is escaped when it is stored, unless it is marked safe
(``format_html()``, ``mark_safe()``). Characters that cannot be encoded (a lone
surrogate) are stored as ``?``.
"""

from __future__ import annotations

from typing import Any

from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from transmissions.channels.base import BaseChannel
from transmissions.channels.rendering import TemplateContextMixin, render
from transmissions.exceptions import ChannelSendException
from transmissions.querysets import FEED_CHANNEL

# The key of ``Notification.data`` that holds what the feed shows.
DATA_KEY = "inapp"


class InAppMessage(TemplateContextMixin, BaseChannel):
    """Base of in-app messages: the text comes from ``template_name`` or ``get_text()``.

    ``template_name`` is rendered with ``get_context_data()`` (autoescaped: the feed
    shows it as HTML); a subclass may instead override ``get_text()``. ``get_url()``
    may give the page the entry links to. The notification's ``data`` must be a
    dict (or empty): the rendered entry is stored in it under ``"inapp"``.
    """

    channel = FEED_CHANNEL
    template_name: str | None = None
    url: str | None = None

    def get_text(self) -> str:
        """Return what the feed shows. Render ``template_name`` unless overridden."""
        if not self.template_name:
            raise NotImplementedError(
                f"{type(self).__qualname__} must set template_name or implement get_text()."
            )
        # Rendered (and escaped) HTML: strip() would turn it back into a plain string.
        return mark_safe(render(self.template_name, self.get_context_data()).strip())  # noqa: S308

    def get_url(self) -> str | None:
        """Return the URL the feed entry links to, or None."""
        return self.url

    def build(self) -> dict[str, Any]:
        return {"text": as_html(self.get_text()), "url": self.get_url()}

    def transmit(self, payload: Any) -> Any:
        data = self.notification.data
        if not isinstance(data, dict):
            raise ChannelSendException(
                f"In-app notification {self.notification.pk}: data must be a dict to hold "
                f"the rendered entry, not {type(data).__name__}."
            )
        self.notification.data = {**data, DATA_KEY: payload}
        # Only the data column: the status is written by the worker afterwards.
        type(self.notification)._default_manager.filter(pk=self.notification.pk).update(
            data_bytes=self.notification.data_bytes
        )
        return payload


def as_html(text: Any) -> str:
    """Return ``text`` as HTML that is safe to show: escaped unless marked safe, with the
    characters UTF-8 cannot encode (lone surrogates) replaced by ``?``."""
    html = str(conditional_escape(text))
    return html.encode("utf-8", "replace").decode("utf-8")


def entry(notification: Any) -> dict[str, Any]:
    """Return the stored feed entry of ``notification`` (``{}`` before it was sent); its
    ``"text"`` is HTML (see the module's docstring)."""
    data = notification.data
    return data.get(DATA_KEY, {}) if isinstance(data, dict) else {}
