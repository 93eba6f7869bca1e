"""Throughput of processing vs batch size and vs number of worker processes.

Each run measures its database and keeps the figures in ``plot-<db>.json``; the PNG
shows every database measured so far, one row each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import processes
from benchmarks import workloads as w

BATCH_SIZES = (10, 50, 100, 500, 1000)
WORKERS = (1, 2, 4)


def measure(conn: Any, db: str, ids: list[int], n: int) -> dict[str, Any]:
    ours, theirs = [], []
    for size in BATCH_SIZES:
        w.clear(db)
        w.seed_due(conn, db, "bench-noop", ids, n)
        ours.append(n / w.process(n, size))
        w.clear(db)
        w.seed_due(conn, db, "bench-noop", ids, n)
        theirs.append(n / w.raw_claim_and_mark(conn, db, n, size))
    by_workers, raw_workers = [], []
    for workers in WORKERS:
        for bare, figures in ((False, by_workers), (True, raw_workers)):
            w.clear(db)
            w.seed_due(conn, db, "bench-noop", ids, n)
            figures.append(n / w.workers(db, n, workers, bare=bare))
    w.clear(db)
    return {
        "db": db,
        "n": n,
        "machine": processes.machine(),
        "ours": ours,
        "raw": theirs,
        "workers": by_workers,
        "raw_workers": raw_workers,
    }


def draw(conn: Any, db: str, ids: list[int], n: int, path: Path) -> None:
    (path.parent / f"plot-{db}.json").write_text(json.dumps(measure(conn, db, ids, n), indent=1) + "\n")
    render(path)


def render(path: Path) -> None:
    """Draw ``path`` from every ``plot-<db>.json`` beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(p.read_text()) for p in sorted(path.parent.glob("plot-*.json"))]
    fig, axes = plt.subplots(len(runs), 2, figsize=(11, 4 * len(runs)), squeeze=False)
    for (left, right), data in zip(axes, runs, strict=True):
        left.plot(BATCH_SIZES, data["ours"], "o-", label="transmissions (no-op channel)")
        left.plot(BATCH_SIZES, data["raw"], "s--", label="raw SQL claim-and-mark")
        left.set(xscale="log", xlabel="batch size", ylabel="notifications/s")
        left.set_title(f"{data['db']}: vs batch size, backlog of {data['n']:,}")
        left.set_ylim(bottom=0)
        left.legend()
        left.grid(True, alpha=0.3)
        right.plot(WORKERS, data["workers"], "o-", label="transmissions, batch 100")
        if "raw_workers" in data:
            right.plot(WORKERS, data["raw_workers"], "s--", label="raw SQL claim-and-mark, batch 100")
        right.set(xlabel="worker processes", ylabel="notifications/s", xticks=WORKERS)
        right.set_title(f"{data['db']}: vs worker processes ({data['machine']})")
        right.set_ylim(bottom=0)
        right.legend()
        right.grid(True, alpha=0.3)
    fig.suptitle("Processing a due backlog (one round per point): python benchmarks/run.py")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
