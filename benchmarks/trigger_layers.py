"""Where a trigger() call's time goes, layer by layer, against the raw single-row INSERT.

Alternating rounds in one process, CPU time per call (``process_time``: the other processes
of a shared machine do not count), the 10th percentile and the median of the rounds:

- ``trigger()``: ``NoopMessage.trigger(user)``, what ``run.py``'s "trigger, DEFAULT" row calls;
- ``dialect.insert()``: the same row, already built (a new id each), through the dialect;
- ``connection.cursor()``: the statement ``insert()`` runs, with its parameters already
  adapted, through Django's cursor (``CursorWrapper``, the execute wrappers, the backend's
  parameter conversion, ``close()``);
- ``driver connection``: the same statement on the driver's connection Django holds
  (placeholders converted beforehand), no Django;
- ``raw``: ``run.py``'s baseline, ``raw.single_inserts()`` (8 columns, its own connection).

    python benchmarks/trigger_layers.py --db sqlite --n 200 --rounds 61
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import setup_db

args = setup_db.parse_and_configure(__doc__, n=200, rounds=61)

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from benchmarks import bench_messages as m  # noqa: E402
from benchmarks import raw, workloads  # noqa: E402
from transmissions import db, trigger  # noqa: E402
from transmissions.lifecycle import notification_model  # noqa: E402

N = args.n
User = get_user_model()
User.objects.bulk_create([User(username=f"layers{i}") for i in range(N)])
users = list(User.objects.order_by("pk")[:N])
ids = [u.pk for u in users]
conn = setup_db.raw_connection(args.db)
raw.analyze(conn, args.db)
dialect: Any = db.dialect("default", notification_model())
shared = trigger.shared_values(m.NoopMessage, None, None, None, None)
row = trigger._row(shared, ids[0], m.NoopMessage.behavior)
columns, values = dialect._written(dialect._with_defaults([row])[0])
sql = dialect.insert_sql(columns, 1, False, False)
params = dialect.insert_params(columns, [values])
named = isinstance(params, dict)
if args.db == "sqlite":
    driver_sql = sql % {k: f":{k}" for k in columns} if named else sql.replace("%s", "?")
else:
    driver_sql = sql


def fresh(i: int) -> Any:
    """The adapted parameters with a new id and the i-th user."""
    if named:
        return {**params, "uuid": uuid.uuid4().hex[:22], "target_user_id": ids[i]}
    values = list(params)
    values[columns.index("uuid")], values[columns.index("target_user_id")] = uuid.uuid4().hex[:22], ids[i]
    return values


def run_trigger() -> None:
    for user in users:
        m.NoopMessage.trigger(user)


def run_insert() -> None:
    for i in range(N):
        dialect.insert([{**row, "uuid": trigger.short_uuid(), "target_user_id": ids[i]}], False)


def run_cursor() -> None:
    for i in range(N):
        with connection.cursor() as cursor:
            cursor.execute(sql, fresh(i))
            if "RETURNING" in sql:
                list(cursor)


def run_driver() -> None:
    for i in range(N):
        cursor = connection.connection.cursor()
        cursor.execute(driver_sql, fresh(i))
        if "RETURNING" in sql:
            cursor.fetchall()
        cursor.close()


def run_raw() -> None:
    raw.single_inserts(conn, args.db, "bench-noop", ids, False)


layers = {
    "trigger()": run_trigger,
    "dialect.insert()": run_insert,
    "connection.cursor()": run_cursor,
    "driver connection": run_driver,
    "raw": run_raw,
}
times: dict[str, list[float]] = {name: [] for name in layers}
for r in range(args.rounds):
    for name, run in layers.items():
        start = time.process_time()
        run()
        times[name].append((time.process_time() - start) / N * 1e6)
    if r % 10 == 9:
        workloads.clear(args.db)
workloads.clear(args.db)


def p10(values: list[float]) -> float:
    return sorted(values)[len(values) // 10]


base = p10(times["raw"])
print(f"{args.db}, {N} calls a round, {args.rounds} rounds, CPU time per call (process_time)")
for name, values in times.items():
    print(
        f"  {name:20s} p10 {p10(values):6.1f} us  median {statistics.median(values):6.1f} us"
        f"  raw / this (p10) {base / p10(values):4.0%}"
    )
