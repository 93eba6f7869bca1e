#!/usr/bin/env python
"""The CPU a worker spends per processed row, beside the raw claim-and-mark's, in one process.

    python benchmarks/processing_cpu.py [--db sqlite|postgres] [--n 20000] [--rounds 5]

``run.py``'s processing row measures wall time, which other processes on a shared machine
move (and, on PostgreSQL, the server's commits); this one measures ``time.process_time()``
of the worker process alone: ``process_all_notifications(batch_size=100)`` over ``--n`` due
rows of a no-op channel, against ``raw.claim_and_mark()`` (the bare driver, the same two
statements' worth of durable work) over the same backlog. Rounds alternate the two sides;
the table shows medians, the microseconds per row, and the ratio raw / transmissions (the
share of the physical limit reached, as run.py's table gives it). Both sides run after
ANALYZE. Uses the benchmark database of ``benchmarks/setup_db.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import setup_db  # noqa: E402


def main() -> None:
    args = setup_db.parse_and_configure(__doc__, n=20000, rounds=5)

    from benchmarks import bench_messages, raw  # noqa: F401 - registers the messages
    from benchmarks import workloads as w
    from transmissions.worker import process_all_notifications

    ids = [u.pk for u in w.make_users(2000, "c")]
    conn = setup_db.raw_connection(args.db)

    def seed() -> None:
        w.clear(args.db)
        w.seed_due(conn, args.db, "bench-noop", ids, args.n)
        raw.analyze(conn, args.db)

    def ours() -> None:
        done = 0
        while taken := process_all_notifications(batch_size=100, time_limit=3600):
            done += taken
        assert done == args.n, (done, args.n)

    def theirs() -> None:
        assert raw.claim_and_mark(conn, args.db, 100) == args.n

    seconds: dict[str, list[float]] = {"transmissions": [], "raw": []}
    for _ in range(args.rounds):
        for name, side in (("transmissions", ours), ("raw", theirs)):
            seed()
            started = time.process_time()
            side()
            seconds[name].append(time.process_time() - started)
    mine, base = (statistics.median(seconds[k]) for k in ("transmissions", "raw"))
    print(f"{args.db}, n={args.n}, {args.rounds} round(s), CPU time of one process (median)\n")
    print("| side | CPU s | us per row | ratio (raw / transmissions) |")
    print("|---|---:|---:|---:|")
    per_row = mine / args.n * 1e6
    print(f"| transmissions, process_all_notifications | {mine:.3f} | {per_row:.1f} | {base / mine:.1%} |")
    print(f"| raw claim-and-mark | {base:.3f} | {base / args.n * 1e6:.1f} | |")


if __name__ == "__main__":
    main()
