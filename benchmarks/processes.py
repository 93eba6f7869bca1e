"""The benchmark's other processes, started from ``run.py``'s report: its worker children
(``run.py --child``), the round-trip count (``run.py --round-trips``) and the dispatch burst
(``burst.py``); and the machine's description. Apart from ``run.py`` so that the modules it
uses (``report``, ``workloads``, ``plot``) do not import it back.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import setup_db

HERE = Path(__file__).resolve().parent
RUN = HERE / "run.py"


def burst(triggers: int) -> list[dict[str, Any]]:
    """Run benchmarks/burst.py (PostgreSQL, a Celery worker on Redis) in a fresh process on
    its own scratch database; return its rounds (coalesced, then one task per commit)."""
    name = f"{setup_db.PG['NAME']}_burst"
    env = {**os.environ, "TRANSMISSIONS_TEST_DB_NAME": name}
    cmd = [sys.executable, str(HERE / "burst.py"), "--triggers", str(triggers)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if out.returncode:
        raise SystemExit(f"the burst failed:\n{out.stdout}\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.strip().splitlines()[-2:]]


def round_trips(count: int = 1000) -> dict[str, float]:
    """Run ``round_trips_child`` in a fresh process; return its counts."""
    cmd = [sys.executable, str(RUN), "--db", "postgres", "--round-trips", str(count)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ})
    if out.returncode:
        raise SystemExit(f"the round-trip count failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_children(
    db: str, workers: int, batch_size: int, bare: bool = False
) -> tuple[float, list[dict[str, Any]]]:
    """Start ``workers`` processes on the seeded backlog (``bare``: the raw claim-and-mark's
    workers); return the time from the first one's start of processing to the last one's
    end (not counting Django's start-up), and their reports."""
    start_at = time.time() + 3 + workers  # time enough for every worker's Django set-up
    cmd = [sys.executable, str(RUN), "--db", db, "--child", str(batch_size)]
    cmd += ["--child-start", str(start_at), *(["--raw-child"] if bare else [])]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True) for _ in range(workers)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a benchmark worker failed: {outs}")
    reports = [json.loads(o.strip().splitlines()[-1]) for o in outs]
    return max(r["ended"] for r in reports) - min(r["started"] for r in reports), reports


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores"
