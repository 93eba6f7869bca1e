"""In-app notifications: "sending" one makes it part of its user's feed.

Nothing leaves the server. **Decided**: the text is rendered once, at send time, and
stored in the notification's ``data`` under ``"inapp"`` (``{"text": ..., "url": ...}``),
so a feed shows what the user was told then, in one query, without the message class
(which may since have changed or been removed) and without rendering a template per
row. The feed itself is ``Notification.objects.feed(user)``.
"""

from __future__ import annotations

from typing import Any

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
        return render(self.template_name, self.get_context_data()).strip()

    def get_url(self) -> str | None:
        """Return the URL the feed entry links to, or None."""
        return self.url

    def build(self) -> dict[str, Any]:
        return {"text": self.get_text(), "url": self.get_url()}

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


def entry(notification: Any) -> dict[str, Any]:
    """Return the stored feed entry of ``notification`` (``{}`` before it was sent)."""
    data = notification.data
    return data.get(DATA_KEY, {}) if isinstance(data, dict) else {}
