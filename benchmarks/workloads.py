"""Each workload, timed: the transmissions side and its baseline on the same database.

Every function returns ``(count, seconds)``; the tables are emptied before each run.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from django.core import mail
from django.core.mail import EmailMessage
from django.db import connection
from django.utils import timezone

from benchmarks import bench_messages as m
from benchmarks import processes, raw
from transmissions.models import Notification
from transmissions.worker import process_all_notifications


def clear(db: str) -> None:
    tables = [
        "transmissions_digestitem",
        "transmissions_notification",
        "post_office_email",
        "post_office_log",
    ]
    with connection.cursor() as cursor:
        if db == "postgres":
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")
    mail.outbox = []


def make_users(n: int, prefix: str) -> list[Any]:
    """``n`` users with an email address each (``<prefix><i>@example.com``), in primary key order."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user_model.objects.bulk_create(
        [user_model(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com") for i in range(n)],
        batch_size=1000,
    )
    return list(user_model.objects.order_by("pk"))


def add_time_of(owner: Any, name: str, spent: dict[str, float], key: str) -> None:
    """Wrap ``owner``'s attribute ``name`` so that each call adds its wall time to ``spent[key]``."""
    original = getattr(owner, name)

    def wrapper(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            spent[key] += time.perf_counter() - started

    setattr(owner, name, wrapper)


def timed(fn: Any, *args: Any) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


# -- trigger -------------------------------------------------------------------------------


def trigger_default(users: list[Any], n: int, start: int = 0) -> float:
    """``n`` calls, the ``start``-th onwards (a chunk of ``report.interleaved()``)."""

    def run() -> None:
        for i in range(start, start + n):
            m.NoopMessage.trigger(users[i % len(users)])

    return timed(run)


def trigger_dedup(users: list[Any], n: int, start: int = 0, total: int | None = None) -> float:
    """Of ``total`` calls (``n`` unless given), the first half SEND_ONCE (one per user), the
    second TRIGGER_ONCE_PER_CONTENT (one per content); ``n`` of them from the ``start``-th."""
    half = (n if total is None else total) // 2

    def run() -> None:
        for i in range(start, start + n):
            if i < half:
                assert m.SendOnceMessage.trigger(users[i]) is not None
            else:
                assert m.OncePerContentMessage.trigger(users[0], content=users[i - half]) is not None

    return timed(run)


def trigger_keyed(users: list[Any], n: int, start: int = 0) -> float:
    """DEFAULT with a new idempotency key on each call."""

    def run() -> None:
        for i in range(start, start + n):
            m.NoopMessage.trigger(users[i % len(users)], idempotency_key=f"bench-{i}")

    return timed(run)


def trigger_throttled(users: list[Any], n: int, start: int = 0) -> float:
    """Throttled to 3 an hour per user, each user once: a free slot each time."""

    def run() -> None:
        for i in range(start, start + n):
            m.ThrottledMessage.trigger(users[i % len(users)])

    return timed(run)


def digests(users: list[Any], per_user: int) -> float:
    """``per_user`` items for each user into hourly digests (the items interleaved, as comments
    arrive), triggered an hour and more ago so the digests are due; then every digest sent."""
    at = timezone.now() - datetime.timedelta(hours=2)

    def run() -> None:
        for i in range(per_user):
            for user in users:
                m.DigestMessage.trigger(user, data={"comment": i}, datetime_scheduled=at)
        sent = 0
        while taken := process_all_notifications(batch_size=100, time_limit=3600):
            sent += taken
        assert sent == len(users), (sent, len(users))

    return timed(run)


def raw_digests(conn: Any, db: str, user_ids: list[int], per_user: int) -> float:
    return timed(raw.digests, conn, db, user_ids, per_user)


def raw_single_inserts(conn: Any, db: str, user_ids: list[int], n: int, keyed: bool, start: int = 0) -> float:
    ids = [user_ids[i % len(user_ids)] for i in range(start, start + n)]
    return timed(raw.single_inserts, conn, db, "bench-noop", ids, keyed, start)


# -- fan-out -------------------------------------------------------------------------------


def fan_out(users: list[Any], cls: Any = m.NoopMessage) -> float:
    def run() -> None:
        created = cls.trigger_many(users)
        assert len(created) == len(users), len(created)

    return timed(run)


def raw_fan_out(conn: Any, db: str, user_ids: list[int]) -> float:
    return timed(raw.multi_row_insert, conn, db, "bench-noop", user_ids)


# -- processing ----------------------------------------------------------------------------


def seed_due(conn: Any, db: str, trigger_name: str, user_ids: list[int], n: int) -> None:
    ids = [user_ids[i % len(user_ids)] for i in range(n)]
    raw.multi_row_insert(conn, db, trigger_name, ids)


def process(n: int, batch_size: int = 100) -> float:
    def run() -> None:
        done = 0
        while True:
            taken = process_all_notifications(batch_size=batch_size, time_limit=3600)
            if not taken:
                break
            done += taken
        assert done == n, (done, n)

    return timed(run)


def raw_claim_and_mark(conn: Any, db: str, n: int, batch_size: int = 100) -> float:
    def run() -> None:
        assert raw.claim_and_mark(conn, db, batch_size) == n

    return timed(run)


def workers(db: str, n: int, count: int, bare: bool = False) -> float:
    """``count`` worker processes on the seeded backlog (``bare``: the raw claim-and-mark's);
    the time from the first one's start to the last one's end."""
    wall, reports = processes.run_children(db, count, 100, bare=bare)
    assert sum(r["count"] for r in reports) == n, reports
    return wall


def process_emails(n: int) -> float:
    seconds = process(n)
    assert len(mail.outbox) == n, len(mail.outbox)
    return seconds


def seed_post_office(users: list[Any], n: int) -> None:
    from post_office.models import PRIORITY, STATUS, Email

    Email.objects.bulk_create(
        [
            Email(
                from_email="bench@example.com",
                to=[users[i % len(users)].email],
                subject=m.SUBJECT,
                message=m.BODY,
                status=STATUS.queued,
                priority=PRIORITY.medium,
            )
            for i in range(n)
        ],
        batch_size=500,
    )


def post_office_send_queued(n: int) -> float:
    from post_office.mail import send_queued

    def run() -> None:
        while True:
            sent, failed, _ = send_queued(processes=1)
            assert not failed
            if not sent:
                break
        assert len(mail.outbox) == n, len(mail.outbox)

    return timed(run)


def bare_emails(users: list[Any], n: int) -> float:
    """The ceiling: the same emails built and sent through one open connection of the default
    mailer, no database (as the worker sends a batch's, and post-office its own)."""

    def run() -> None:
        connection = mail.get_connection(fail_silently=False)
        connection.open()
        try:
            for i in range(n):
                to = [users[i % len(users)].email]
                email = EmailMessage(subject=m.SUBJECT, body=m.BODY, from_email=None, to=to)
                connection.send_messages([email])
        finally:
            connection.close()
        assert len(mail.outbox) == n

    return timed(run)


# -- queueing emails -----------------------------------------------------------------------


def queue_emails(users: list[Any], n: int) -> float:
    def run() -> None:
        for i in range(n):
            m.DigestEmail.trigger(users[i % len(users)])

    return timed(run)


def post_office_mail_send(users: list[Any], n: int) -> float:
    from post_office import mail as po_mail

    def run() -> None:
        for i in range(n):
            po_mail.send(
                recipients=[users[i % len(users)].email],
                sender="bench@example.com",
                subject=m.SUBJECT,
                message=m.BODY,
            )

    return timed(run)


def count_notifications() -> int:
    return Notification.objects.count()
