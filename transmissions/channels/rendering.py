"""Rendering a message's text from Django templates, shared by the email and in-app channels."""

from __future__ import annotations

from typing import Any

from django.template import Context
from django.template import Template as DjangoTemplate
from django.template.loader import get_template


def render(template_name: str, context: dict[str, Any], autoescape: bool = True) -> str:
    """Render ``template_name`` with ``context``.

    ``autoescape=False`` is for plain text (an email subject or text body): with
    Django's template engine, ``O'Brien`` stays ``O'Brien`` instead of becoming
    ``O&#x27;Brien``. Other engines (Jinja2) render as they are configured.
    """
    template = get_template(template_name)
    inner = getattr(template, "template", None)
    if not autoescape and isinstance(inner, DjangoTemplate):
        return inner.render(Context(context, autoescape=False))
    return template.render(context)


class TemplateContextMixin:
    """Give a channel ``get_context_data()``: what its templates see.

    The context holds ``notification``, ``target_user``, ``trigger_user``, ``content``,
    ``data`` and ``message`` (the channel instance). Override ``get_context_data()``
    and call ``super()`` to add more.
    """

    notification: Any
    target_user: Any
    trigger_user: Any
    content: Any
    data: Any

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """Return the context the message's templates are rendered with."""
        context = {
            "notification": self.notification,
            "target_user": self.target_user,
            "trigger_user": self.trigger_user,
            "content": self.content,
            "data": self.data,
            "message": self,
        }
        context.update(kwargs)
        return context
