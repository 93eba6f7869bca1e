import datetime

from django.utils import timezone

from tests.models import User
from transmissions.channels.email import HAS_MAILERS
from transmissions.registry import registry
from transmissions.worker import process_all_notifications


def make_user(username="ada", **kwargs):
    kwargs.setdefault("email", f"{username}@example.com")
    return User.objects.create(username=username, **kwargs)


def later(**kwargs):
    return timezone.now() + datetime.timedelta(**(kwargs or {"days": 2}))


def earlier(**kwargs):
    return timezone.now() - datetime.timedelta(**(kwargs or {"minutes": 1}))


_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def statements(ctx):
    """The SQL statements a CaptureQueriesContext saw, transaction control left out.

    SQLite logs BEGIN/COMMIT through Django's cursor while PostgreSQL's driver does
    not, so counting only the statements that do work is the same on both.
    """
    return [q["sql"] for q in ctx.captured_queries if not q["sql"].upper().startswith(_CONTROL)]


def trigger_named(name, user, **kwargs):
    """Trigger the message registered under ``name``."""
    return registry.get(name).trigger(user, **kwargs)


def status_of(notification):
    """The notification's status as the database has it now."""
    notification.refresh_from_db()
    return notification.status


def processed(*objects):
    """Process every due notification, then reload ``objects`` (notifications, devices...)."""
    process_all_notifications()
    for obj in objects:
        obj.refresh_from_db()
    return objects[0] if len(objects) == 1 else objects


def email_settings(backend="django.core.mail.backends.smtp.EmailBackend", **options):
    """Settings for ``override_settings`` that send the default mailer's email through ``backend``.

    ``options`` are MAILERS OPTIONS (``host``, ``port``, ``timeout``); on Django 6.1+ they
    become ``MAILERS["default"]``, before it the EMAIL_* settings they replace. Pass
    ``mailers={"alias": {"BACKEND": ..., "OPTIONS": ...}}`` for more aliases (6.1+ only).
    """
    extra = options.pop("mailers", {})
    if HAS_MAILERS:
        return {"MAILERS": {"default": {"BACKEND": backend, "OPTIONS": options}, **extra}}
    assert not extra, "named mailers need Django 6.1"
    return {"EMAIL_BACKEND": backend, **{f"EMAIL_{name.upper()}": value for name, value in options.items()}}
