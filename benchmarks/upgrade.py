#!/usr/bin/env python
"""How long ``migrate`` takes to upgrade a transmissions 0.2 table, and how long it locks it.

    python benchmarks/upgrade.py [--rows 1000000] [--users 10000]

PostgreSQL only, on 127.0.0.1 (database ``$TRANSMISSIONS_BENCH_DB_NAME``, default
``bench_upgrade``, dropped and created again). It builds 0.2's table with the DDL of
tests/legacy02.py and records 0.2's four migrations, writes ``--rows`` rows as 0.2 wrote
them (base64 pickles from Python 2; pending, sent, failed and cancelled; some with
content, some without ``datetime_created``), then times ``migrate`` and
``fill_dedup_keys``. Meanwhile a probe connection samples ``pg_locks`` every 10 ms for
an ACCESS EXCLUSIVE lock on the table and reads one row every 10 ms, so the report says
how long the application could not read the table. See docs/upgrading.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import legacy02  # noqa: E402

DB = {
    "NAME": os.environ.get("TRANSMISSIONS_BENCH_DB_NAME", "bench_upgrade"),
    "USER": os.environ.get("PGUSER", "postgres"),
    "HOST": "127.0.0.1",
    "PORT": os.environ.get("PGPORT", "5432"),
}
TRIGGERS = ("welcome", "reminder", "digest", "news")  # SEND_ONCE, TRIGGER_ONCE, LAST_ONLY, DEFAULT


def _connect(dbname: str) -> psycopg.Connection:
    # No prepared statements: the probe's would break when the migration changes a column type.
    return psycopg.connect(
        host=DB["HOST"],
        port=DB["PORT"],
        user=DB["USER"],
        dbname=dbname,
        autocommit=True,
        prepare_threshold=None,
    )


def recreate_database() -> None:
    with _connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB["NAME"]}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB["NAME"]}"')


def configure() -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="benchmark-only",
        USE_TZ=True,
        TIME_ZONE="UTC",
        DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", **DB}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "transmissions"],
    )
    django.setup()


def register_messages() -> None:
    from transmissions import TriggerBehavior, message

    behaviors = (TriggerBehavior.SEND_ONCE, TriggerBehavior.TRIGGER_ONCE, TriggerBehavior.LAST_ONLY, None)
    for name, behavior in zip(TRIGGERS, behaviors, strict=True):

        class Message:
            def __init__(self, notification: Any) -> None:
                self.notification = notification

            def send(self) -> None:
                pass

        message(name, behavior=behavior)(type(f"Bench{name.title()}", (Message,), {}))


def build_legacy_table(rows: int, users: int) -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", "auth", verbosity=0)
    call_command("migrate", "contenttypes", verbosity=0)
    pickles = [legacy02.PY2_PICKLES[0], legacy02.PY2_PICKLES[1], legacy02.PY2_PICKLES[2], ""]
    with connection.cursor() as cursor:
        for statement in legacy02.DDL["postgresql"]:
            cursor.execute(statement.replace('"tests_user"', '"auth_user"'))
        for name in legacy02.MIGRATIONS:
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied) VALUES ('transmissions', %s, now())",
                [name],
            )
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, "
            "is_staff, is_active, date_joined) SELECT '', false, 'user' || i, '', '', '', false, true, now() "
            "FROM generate_series(1, %s) AS i",
            [users],
        )
        cursor.execute("SELECT id FROM django_content_type WHERE model = 'user'")
        user_type = cursor.fetchone()[0]
        # Rows 1..users: each user's welcome (SEND_ONCE), sent. Then reminders (TRIGGER_ONCE),
        # digests (LAST_ONLY) and news (DEFAULT) in turn: 90% sent, 5% failed, 5% cancelled,
        # except the last `users` rows, one per user, still pending. Every third row is about
        # a user (content), every 20th has no datetime_created; data from Python 2 pickles
        # (and empty ones), as 0.2 stored them.
        cursor.execute(
            "INSERT INTO transmissions_notification (uuid, trigger_name, target_user_id, trigger_user_id, "
            "content_type_id, content_id, data_pickled, datetime_created, datetime_scheduled, "
            "datetime_processed, status) "
            "SELECT lpad(i::text, 22, '0'), "
            "CASE WHEN i <= %(users)s THEN 'welcome' ELSE (%(names)s::text[])[1 + i %% 3] END, "
            "1 + i %% %(users)s, NULL, "
            "CASE WHEN i %% 3 = 0 THEN %(type)s END, CASE WHEN i %% 3 = 0 THEN 1 + (i * 7) %% %(users)s END, "
            "(%(pickles)s::text[])[1 + i %% 4], "
            "CASE WHEN i %% 20 <> 0 "
            "THEN now() - interval '1 day' - (%(rows)s - i) * interval '1 second' END, "
            "now() - (%(rows)s - i) * interval '1 second' + CASE WHEN i > %(rows)s - %(users)s "
            "THEN interval '1 day' ELSE interval '0' END, "
            "CASE WHEN i <= %(rows)s - %(users)s THEN now() - (%(rows)s - i) * interval '1 second' END, "
            "CASE WHEN i > %(rows)s - %(users)s THEN 0 WHEN i <= %(users)s OR i %% 20 > 1 THEN 1 "
            "WHEN i %% 20 = 0 THEN -1 ELSE -2 END "
            "FROM generate_series(1, %(rows)s) AS i",
            {
                "users": users,
                "names": list(TRIGGERS[1:]),
                "type": user_type,
                "pickles": pickles,
                "rows": rows,
            },
        )
        cursor.execute("VACUUM ANALYZE transmissions_notification")


class Probe:
    """Two threads: one samples the table's ACCESS EXCLUSIVE lock, one reads a row, every 10 ms."""

    interval = 0.01

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.locked = 0.0  # seconds the lock was seen held
        self.longest_lock = 0.0
        self.slowest_read = 0.0
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._sample, self._read)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _sample(self) -> None:
        with _connect(DB["NAME"]) as conn:
            held_since, last = None, time.monotonic()
            while not self.stop.is_set():
                held = conn.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 'transmissions_notification' "
                    "AND l.mode = 'AccessExclusiveLock' AND l.granted"
                ).fetchone()[0]
                now = time.monotonic()
                if held:
                    self.locked += now - last
                    held_since = held_since or last
                    self.longest_lock = max(self.longest_lock, now - held_since)
                else:
                    held_since = None
                last = now
                time.sleep(self.interval)

    def _read(self) -> None:
        with _connect(DB["NAME"]) as conn:
            while not self.stop.is_set():
                start = time.monotonic()
                conn.execute("SELECT id FROM transmissions_notification WHERE id = 1").fetchall()
                self.slowest_read = max(self.slowest_read, time.monotonic() - start)
                time.sleep(self.interval)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    recreate_database()
    configure()
    register_messages()
    from django.core.management import call_command
    from django.db import connection

    start = time.monotonic()
    build_legacy_table(args.rows, args.users)
    print(f"0.2 table with {args.rows:,} rows built in {time.monotonic() - start:.1f} s")

    slow: list[tuple[float, str]] = []

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.monotonic()
        try:
            return execute(sql, params, many, context)
        finally:
            slow.append((time.monotonic() - began, " ".join(sql.split())[:110]))

    probe = Probe()
    probe.start()
    start = time.monotonic()
    with connection.execute_wrapper(timed):
        call_command("migrate", verbosity=0)
    migrate_seconds = time.monotonic() - start
    probe.join()
    start = time.monotonic()
    with open(os.devnull, "w") as quiet:
        call_command("fill_dedup_keys", stdout=quiet)
    fill_seconds = time.monotonic() - start
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(dedup_key) FROM transmissions_notification")
        total, keyed = cursor.fetchone()

    print(f"migrate: {migrate_seconds:.1f} s for {total:,} rows")
    print(
        f"  table locked ACCESS EXCLUSIVE for {probe.locked:.1f} s in all, "
        f"{probe.longest_lock:.1f} s at the longest; "
        f"slowest one-row read meanwhile {probe.slowest_read:.2f} s"
    )
    print("  slowest statements:")
    for seconds, sql in sorted(slow, reverse=True)[:8]:
        print(f"    {seconds:6.2f} s  {sql}")
    print(f"fill_dedup_keys: {fill_seconds:.1f} s, {keyed:,} keys set")


if __name__ == "__main__":
    main()
