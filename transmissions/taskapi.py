"""Which ``django.tasks`` this process has: Django's own (6.0+), the django-tasks backport
(``django_tasks``, for Django 5.2), or none.

Both expose the same API (``task``, ``task_backends``, ``Task.using()``, ``enqueue()``),
so the rest of the app asks this module for it and never imports either by name. Nothing
here is imported before it is asked for: ``import transmissions`` works without either.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Django's own first: on Django 6.x the backport, if installed too, is never used.
MODULES = ("django.tasks", "django_tasks")


def module() -> ModuleType | None:
    """Return ``django.tasks`` or ``django_tasks``, whichever imports first; None if neither."""
    for name in MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None
