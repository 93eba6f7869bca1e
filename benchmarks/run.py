#!/usr/bin/env python
"""Benchmark transmissions against the bare database and against django-post-office.

    python benchmarks/run.py [--db sqlite|postgres] [--n 20000] [--rounds 5] [--smoke]

Each workload runs next to its baseline on the same database, in one process and one
run; the table shows the median of ``--rounds`` rounds and the ratio. Writes
``benchmarks/results.md`` and ``benchmarks/results.png`` (unless ``--smoke``).
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import setup_db  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--n", type=int, default=20000, help="notifications per workload")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round: checks it runs")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--child-start", type=float, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--raw-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--round-trips", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.db, args.child, args.child_start, args.raw_child)
    if args.round_trips:
        return round_trips_child(args.round_trips)
    if args.smoke:
        args.n, args.rounds = 1000, 1
    setup_db.configure(args.db)
    from benchmarks import report

    report.run(args, cli=" ".join(["python benchmarks/run.py", *sys.argv[1:]]))


def child(db: str, batch_size: int, start_at: float, bare: bool = False) -> None:
    """Process the backlog another process seeded; print count, time and peak memory.
    ``bare``: claim-and-mark it with the bare driver instead (the raw baseline's worker)."""
    setup_db.configure(db, fresh=False)
    from benchmarks import (
        bench_messages,  # noqa: F401 - registers the messages
        raw,
    )
    from transmissions.worker import process_all_notifications

    conn = setup_db.raw_connection(db) if bare else None
    # Workers started together begin together, once each has set Django up.
    time.sleep(max(0.0, start_at - time.time()))
    before = _rss_kib("VmRSS")
    # Reset the peak RSS so it reports processing only, not imports and setup.
    Path("/proc/self/clear_refs").write_text("5")
    started = time.time()
    t0 = time.perf_counter()
    if conn is not None:
        total = raw.claim_and_mark(conn, db, batch_size)
    else:
        total = 0
        while taken := process_all_notifications(batch_size=batch_size, time_limit=3600):
            total += taken
    seconds = time.perf_counter() - t0
    after = _rss_kib("VmHWM")
    report = {"count": total, "seconds": seconds, "started": started, "ended": started + seconds}
    print(json.dumps({**report, "rss_kib_before": before, "rss_kib_after": after}))


def round_trips_child(count: int, batch_size: int = 100) -> None:
    """Process ``count`` due rows, then claim-and-mark as many with the bare driver, both
    through wire.py's counter on PostgreSQL; print the round trips each side cost."""
    from benchmarks import raw, wire

    host, port = setup_db.PG["HOST"], int(setup_db.PG["PORT"])
    with wire.RoundTripCounter(host, port) as proxy:
        setup_db.configure("postgres", fresh=False, pg_port=proxy.port)
        from django.contrib.auth.models import User
        from django.db import connection

        from benchmarks import bench_messages
        from transmissions.worker import process_all_notifications

        direct = setup_db.raw_connection("postgres")
        ids = list(User.objects.order_by("pk").values_list("pk", flat=True)[:count])
        ids = [ids[i % len(ids)] for i in range(count)]
        raw.multi_row_insert(direct, "postgres", "bench-noop", ids)
        raw.analyze(direct, "postgres")
        connection.ensure_connection()
        before = proxy.round_trips
        total = 0
        while taken := process_all_notifications(batch_size=batch_size, time_limit=3600):
            total += taken
        ours = proxy.round_trips - before
        assert total == count, (total, count)
        proxied = setup_db.raw_connection("postgres", pg_port=proxy.port)
        raw.multi_row_insert(direct, "postgres", "bench-noop", ids)
        raw.analyze(direct, "postgres")
        before = proxy.round_trips
        assert raw.claim_and_mark(proxied, "postgres", batch_size) == count
        theirs = proxy.round_trips - before
        direct.execute(f"DELETE FROM {raw.TABLE}")
        # One trigger() per notification against one raw single-row INSERT each (autocommit).
        before = proxy.round_trips
        for user_id in ids[:100]:
            bench_messages.NoopMessage.trigger(User(pk=user_id))
        trigger = proxy.round_trips - before
        before = proxy.round_trips
        raw.single_inserts(proxied, "postgres", "bench-noop", ids[:100], keyed=False)
        insert = proxy.round_trips - before
        direct.execute(f"DELETE FROM {raw.TABLE}")
    print(
        json.dumps(
            {
                "batches": count // batch_size,
                "ours": ours,
                "raw": theirs,
                "trigger": trigger / 100,
                "insert": insert / 100,
            }
        )
    )


def _rss_kib(name: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{name}:"))


if __name__ == "__main__":
    main()
