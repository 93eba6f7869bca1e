"""Throughput of processing vs batch size and vs number of worker processes, as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import run
from benchmarks import workloads as w

BATCH_SIZES = (10, 50, 100, 500, 1000)
WORKERS = (1, 2, 4)


def draw(conn: Any, db: str, ids: list[int], n: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours, theirs = [], []
    for size in BATCH_SIZES:
        w.clear(db)
        w.seed_due(conn, db, "bench-noop", ids, n)
        ours.append(n / w.process(n, size))
        w.clear(db)
        w.seed_due(conn, db, "bench-noop", ids, n)
        theirs.append(n / w.raw_claim_and_mark(conn, db, n, size))
    by_workers = []
    for workers in WORKERS:
        w.clear(db)
        w.seed_due(conn, db, "bench-noop", ids, n)
        wall, reports = run.run_children(db, workers, 100)
        assert sum(r["count"] for r in reports) == n, reports
        by_workers.append(n / wall)
    w.clear(db)

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(BATCH_SIZES, ours, "o-", label="transmissions (no-op channel)")
    left.plot(BATCH_SIZES, theirs, "s--", label="raw SQL claim-and-mark")
    left.set(xscale="log", xlabel="batch size", ylabel="notifications/s", title=f"vs batch size ({db})")
    left.legend()
    left.grid(True, alpha=0.3)
    right.plot(WORKERS, by_workers, "o-", label="transmissions, batch 100")
    right.set(
        xlabel="worker processes",
        ylabel="notifications/s",
        xticks=WORKERS,
        title=f"vs worker processes ({db}, {run.machine()})",
    )
    right.set_ylim(bottom=0)
    right.legend()
    right.grid(True, alpha=0.3)
    fig.suptitle(f"Processing a due backlog of {n:,} notifications (one round each)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
