#!/usr/bin/env python
"""PostgreSQL: what each form of "the user must exist" costs a single-row INSERT in the
caller's transaction (docs/reliability.md, "A user deleted meanwhile").

    python benchmarks/user_check_forms.py [--n 2000] [--rounds 7]

2,000 single-row INSERTs, 100 to a transaction, medians of rounds that alternate the forms,
each against the plain INSERT (whose foreign keys wait for COMMIT), first on the bare driver
with client-side binding (as Django binds), then through Django's cursor and ``atomic()``:

- ``checked``: the INSERT takes its row from ``SELECT ... WHERE EXISTS (the user FOR KEY
  SHARE)`` (what transmissions does); ``checked, no lock``: without ``FOR KEY SHARE``;
- ``immediate``: ``SET CONSTRAINTS <the two user foreign keys> IMMEDIATE`` once per
  transaction, so the INSERT checks them at its end; unusable alone (a failure aborts the
  caller's transaction), so ``immediate + savepoint`` wraps each INSERT in a savepoint.

Uses the benchmark database of ``benchmarks/setup_db.py`` (``TRANSMISSIONS_BENCH_DB_NAME``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import setup_db  # noqa: E402

PER_TRANSACTION = 100
DRIVER_FORMS = ["plain", "checked", "checked, no lock", "immediate", "immediate + savepoint"]
TABLE = "transmissions_notification"
COLUMNS = (
    "uuid, trigger_name, target_user_id, datetime_created, datetime_scheduled, status, attempts, dedup_key"
)
PLAIN = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, uuid"
TYPES = ", ".join(
    f"%s::{t}" for t in "varchar varchar integer timestamptz timestamptz smallint smallint varchar".split()
)


def checked(lock: str) -> str:
    return (
        f"INSERT INTO {TABLE} ({COLUMNS}) SELECT * FROM (SELECT {TYPES}) AS v({COLUMNS}) "
        f"WHERE EXISTS (SELECT 1 FROM auth_user WHERE id = v.target_user_id{lock}) RETURNING id, uuid"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    setup_db.configure("postgres")

    import psycopg
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    n = args.n
    users = get_user_model()
    users.objects.bulk_create([users(username=f"u{i}") for i in range(n)], batch_size=1000)
    ids = list(users.objects.order_by("pk").values_list("pk", flat=True))
    bare = psycopg.connect(setup_db._dsn(setup_db.PG), autocommit=True, cursor_factory=psycopg.ClientCursor)
    with bare.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' "
            "AND conname LIKE %s",
            [TABLE, "%user_id%"],
        )
        fks = ", ".join(f'"{name}"' for (name,) in cursor.fetchall())

    def row(i: int) -> tuple[Any, ...]:
        now = datetime.datetime.now(datetime.UTC)
        return (uuid.uuid4().hex[:22], "bench", ids[i % len(ids)], now, now, 0, 0, None)

    def on_driver(form: str) -> float:
        cursor = bare.cursor()
        cursor.execute(f"TRUNCATE {TABLE} CASCADE")
        sql = {"checked": checked(" FOR KEY SHARE"), "checked, no lock": checked("")}.get(form, PLAIN)
        start = time.perf_counter()
        for at in range(0, n, PER_TRANSACTION):
            cursor.execute("BEGIN")
            if form.startswith("immediate"):
                cursor.execute(f"SET CONSTRAINTS {fks} IMMEDIATE")
            for i in range(at, at + PER_TRANSACTION):
                if form == "immediate + savepoint":
                    cursor.execute('SAVEPOINT "s"')
                cursor.execute(sql, row(i))
                cursor.fetchall()
                if form == "immediate + savepoint":
                    cursor.execute('RELEASE SAVEPOINT "s"')
            cursor.execute("COMMIT")
        return time.perf_counter() - start

    def through_django(form: str) -> float:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {TABLE} CASCADE")
        sql = checked(" FOR KEY SHARE") if form == "checked" else PLAIN
        start = time.perf_counter()
        for at in range(0, n, PER_TRANSACTION):
            with transaction.atomic(), connection.cursor() as cursor:
                if form.startswith("immediate"):
                    cursor.execute(f"SET CONSTRAINTS {fks} IMMEDIATE")
                for i in range(at, at + PER_TRANSACTION):
                    savepoint = (
                        transaction.atomic() if form == "immediate + savepoint" else contextlib.nullcontext()
                    )
                    with savepoint:
                        cursor.execute(sql, row(i))
                        cursor.fetchall()
        return time.perf_counter() - start

    print(f"postgres, {n:,} single-row INSERTs, {PER_TRANSACTION} to a transaction, {args.rounds} rounds")
    for label, run, forms in [
        (
            "bare driver",
            on_driver,
            ["plain", "checked", "checked, no lock", "immediate", "immediate + savepoint"],
        ),
        ("through Django", through_django, ["plain", "checked", "immediate + savepoint"]),
    ]:
        samples: dict[str, list[float]] = {form: [] for form in forms}
        for _ in range(args.rounds):
            for form in forms:
                samples[form].append(run(form))
        base = statistics.median(samples["plain"])
        for form in forms:
            took = statistics.median(samples[form])
            extra = (took - base) / n * 1e6
            print(
                f"{label:<15} {form:<22} {took:6.3f} s  {extra:+6.1f} µs an INSERT  x{took / base:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
