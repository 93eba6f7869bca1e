#!/usr/bin/env python
"""What the server spends on the trigger's one-row INSERT in the forms a client can send it.

    python benchmarks/insert_server_cpu.py --n 500 --rounds 18

PostgreSQL only, the server on this machine (its backends' CPU is read from ``/proc``). The
INSERT ``trigger()`` sends for ``NoopMessage`` (7 columns), unprepared (``prepare_threshold=None``,
Django's default), straight on psycopg: with server-side binding (psycopg's ``Cursor``) or
client-side (``ClientCursor``, Django's default), each without ``RETURNING``, with ``RETURNING
"id"`` and with ``RETURNING "id", "uuid"`` (what ``trigger()`` sends). ``--n`` calls per form and
round, the forms rotating round after round; server CPU per call (mean over every call) and
wall time (median of the rounds).
"""

from __future__ import annotations

import datetime
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import setup_db

args = setup_db.parse_and_configure(__doc__, n=500, rounds=18)
if args.db != "postgres":
    raise SystemExit("PostgreSQL only: --db postgres")

import psycopg  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402

from benchmarks import workloads as w  # noqa: E402

User = get_user_model()
User.objects.bulk_create([User(username=f"forms{i}") for i in range(args.n)])
ids = list(User.objects.values_list("pk", flat=True))
dsn = setup_db._dsn(setup_db.PG)
connections = {
    "server-side binding": psycopg.connect(dsn, autocommit=True, prepare_threshold=None),
    "client-side binding": psycopg.connect(
        dsn, autocommit=True, prepare_threshold=None, cursor_factory=psycopg.ClientCursor
    ),
}
names = ["uuid", "target_user_id", "trigger_name", "datetime_created", "datetime_scheduled"]
names += ["status", "attempts"]
columns = ", ".join(f'"{name}"' for name in names)
plain = f'INSERT INTO "transmissions_notification" ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)'
statements = {"no RETURNING": plain, 'RETURNING "id"': plain + ' RETURNING "id"'}
statements['RETURNING "id", "uuid"'] = plain + ' RETURNING "id", "uuid"'


def backend_cpu(conn: Any) -> float:
    with open(f"/proc/{conn.info.backend_pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


forms = [(c, s) for c in connections for s in statements]
server: dict[tuple[str, str], list[float]] = {form: [] for form in forms}
wall: dict[tuple[str, str], list[float]] = {form: [] for form in forms}
for r in range(args.rounds):
    w.clear("postgres")
    turn = r % len(forms)
    for form in forms[turn:] + forms[:turn]:
        conn, sql = connections[form[0]], statements[form[1]]
        cpu, t0 = backend_cpu(conn), time.perf_counter()
        for user_id in ids:
            now = datetime.datetime.now(datetime.UTC)
            cursor = conn.execute(sql, (uuid.uuid4().hex[:22], user_id, "bench-noop", now, now, 0, 0))
            if "RETURNING" in sql:
                cursor.fetchall()
        wall[form].append((time.perf_counter() - t0) / len(ids) * 1e6)
        server[form].append((backend_cpu(conn) - cpu) / len(ids) * 1e6)
w.clear("postgres")
print(f"{args.n} calls a form and round, {args.rounds} rounds; per call:")
for form in forms:
    print(
        f"  {form[0]:20s} {form[1]:24s} server CPU {statistics.fmean(server[form]):5.0f} us"
        f"  wall {statistics.median(wall[form]):5.0f} us"
    )
