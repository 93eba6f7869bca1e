import datetime

from django.utils import timezone

from tests.models import User


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
