#!/usr/bin/env python
"""run.py's "trigger, DEFAULT" row alone, measured both ways, and what each side costs.

    python benchmarks/trigger_pair.py --db postgres --n 5000 --rounds 3 --repeat 3

``--repeat`` times, each: the row as run.py measured it before (``report.rates()``: one run of
``--n`` calls a side, the sides alternating round after round, median of the rounds), then as
it does now (``report.interleaved()``: the sides taking turns in chunks of 500 within each
round, median of the chunks); the spread of the ratios across repeats is the point. Then, in
interleaved chunks too, per call and side: wall time, the client's CPU (``process_time``), on
PostgreSQL the server backend's CPU (from ``/proc``, the server being local) and the WAL
written (``pg_current_wal_lsn()`` before and after). Sides: ``trigger()``; the raw INSERT
(``raw.single_inserts``, psycopg's default: prepared once run five times); on PostgreSQL the
same unprepared, as Django's connections run every statement by default.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import setup_db


def options(parser: Any) -> None:
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--prepared", action="store_true", help="Django's connection with setup_db.PREPARED's OPTIONS"
    )


args = setup_db.parse_and_configure(__doc__, n=5000, rounds=3, extra=options)

from django.db import connection  # noqa: E402

from benchmarks import raw, report  # noqa: E402
from benchmarks import workloads as w  # noqa: E402

db, n = args.db, args.n
users = w.make_users(n, "pair")
ids = [u.pk for u in users]
conn = setup_db.raw_connection(db)
raw.analyze(conn, db)


def clear() -> None:
    w.clear(db)


def ours(size: int, start: int) -> float:
    return w.trigger_default(users, size, start)


def theirs(size: int, start: int, on: Any = conn) -> float:
    return w.raw_single_inserts(on, db, ids, size, False, start)


print(f"{db}, n={n}, {args.rounds} rounds a measurement, {args.repeat} measurements each way")
for r in range(args.repeat):
    old = report.rates(args.rounds, n, [(clear, lambda: ours(n, 0)), (clear, lambda: theirs(n, 0))])
    new = report.interleaved(args.rounds, n, clear, [ours, theirs])
    print(
        f"  {r + 1}: whole runs {old[0]:,.0f} vs {old[1]:,.0f}/s = {old[0] / old[1]:.0%};"
        f"  interleaved chunks {new[0]:,.0f} vs {new[1]:,.0f}/s = {new[0] / new[1]:.0%}",
        flush=True,
    )

sides: dict[str, tuple[Any, Any]] = {"trigger()": (ours, None), "raw INSERT": (theirs, conn)}
if db == "postgres":
    unprepared = setup_db.raw_connection(db, prepared=False)
    sides["raw INSERT, unprepared"] = (lambda size, start: theirs(size, start, unprepared), unprepared)
    connection.ensure_connection()


def backend_cpu(on: Any) -> float:
    """CPU seconds of the server process serving ``on`` (Django's connection for None)."""
    if db != "postgres":
        return 0.0
    pid = (on or connection.connection).info.backend_pid
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wal() -> int:
    return int(conn.execute("SELECT pg_current_wal_lsn() - '0/0'").fetchone()[0]) if db == "postgres" else 0


figures: dict[str, dict[str, list[float]]] = {name: {} for name in sides}


def measured(name: str, run: Any, on: Any) -> Any:
    def measure(size: int, start: int) -> float:
        lsn, server, cpu = wal(), backend_cpu(on), time.process_time()
        seconds = run(size, start)
        taken = {
            "wall": seconds,
            "client CPU": time.process_time() - cpu,
            "server CPU": backend_cpu(on) - server,
            "WAL bytes": wal() - lsn,
        }
        for key, value in taken.items():
            figures[name].setdefault(key, []).append(value / size * (1 if key == "WAL bytes" else 1e6))
        return seconds

    return measure


report.interleaved(args.rounds, n, clear, [measured(name, *side) for name, side in sides.items()])
clear()
print("per call: wall time, the median of the chunks; the others, totals over calls (us; WAL bytes)")
base = statistics.median(figures["raw INSERT"]["wall"])
shown = ("wall", "client CPU", "server CPU", "WAL bytes") if db == "postgres" else ("wall", "client CPU")
for name, values in figures.items():
    wall = statistics.median(values["wall"])
    per_call = {key: wall if key == "wall" else statistics.fmean(values[key]) for key in shown}
    line = "  ".join(f"{key} {value:6.1f}" for key, value in per_call.items())
    print(f"  {name:24s} {line}  raw / this (wall) {base / wall:4.0%}")
