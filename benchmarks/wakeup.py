#!/usr/bin/env python
"""Commit-to-sent latency: the django.tasks wake-up against a sweeper, with real worker processes.

    python benchmarks/wakeup.py --transactions 100 --per-transaction 10 --workers 2

Creates a scratch PostgreSQL database (as the test suite does; dropped at the end) and runs
two rounds in this process, one after the other, on the same workload: ``--transactions``
transactions, one every ``--pace`` seconds, each triggering ``--per-transaction``
notifications (``trigger_many``) that are due at once.

- ``django_tasks``: ``TRANSMISSIONS_WAKE_UP = "django_tasks"`` on django-tasks-db, and
  ``--workers`` ``db_worker`` processes (``--interval``, their poll when idle);
- ``sweep``: no wake-up, and ``--workers`` ``process_notifications --loop`` processes
  (``--sweep-interval``).

Every send is one line in an O_APPEND log (``tests/notifications.py``); the latency of a
notification is its first send minus the commit of its transaction. A round also times the
``atomic()`` block that triggers (with the wake-up: the task's INSERT at commit), and counts
duplicates (there must be none).
"""

from __future__ import annotations

import argparse
import collections
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

from benchmarks import setup_db  # noqa: E402

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transactions", type=int, default=100)
    p.add_argument("--per-transaction", type=int, default=10)
    p.add_argument("--pace", type=float, default=0.05, help="seconds between two transactions")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--interval", type=float, default=1.0, help="db_worker --interval (its default)")
    p.add_argument("--sweep-interval", type=float, default=5.0, help="process_notifications --interval")
    p.add_argument("--timeout", type=float, default=120.0)
    return p.parse_args(argv)


def round_(args: argparse.Namespace, mode: str, users: list, workdir: Path) -> dict:
    from django.db import connection, transaction
    from django.test.utils import override_settings

    from tests.child import child_env
    from tests.notifications import SEND_LOG_ENV, DurableMessage
    from transmissions.models import Notification

    log = workdir / f"{mode}.log"
    env = child_env(connection.settings_dict["NAME"], {"TASKS": TASKS}, **{SEND_LOG_ENV: str(log)})
    if mode == "django_tasks":
        command = ["db_worker", "--no-reload", "--no-startup-delay", "--interval", str(args.interval)]
        wake_up = "django_tasks"
    else:
        command = ["process_notifications", "--loop", "--interval", str(args.sweep_interval)]
        wake_up = None
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.child", "manage", *command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / f"{mode}-{i}.err", "w"),  # the child holds it
        )
        for i in range(args.workers)
    ]
    time.sleep(2)  # the workers' Django set up
    committed: dict[int, float] = {}
    blocks = []
    try:
        with override_settings(TRANSMISSIONS_WAKE_UP=wake_up, TASKS=TASKS):
            for _ in range(args.transactions):
                started = time.perf_counter()
                with transaction.atomic():
                    made = DurableMessage.trigger_many(users[: args.per_transaction])
                blocks.append(time.perf_counter() - started)
                now = time.time()
                committed.update((n.pk, now) for n in made)
                time.sleep(args.pace)
        deadline = time.monotonic() + args.timeout
        pending = Notification.objects.filter(pk__in=list(committed), datetime_processed__isnull=True)
        while pending.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
    first: dict[int, float] = {}
    sends: collections.Counter[int] = collections.Counter()
    for line in log.read_text().splitlines() if log.exists() else []:
        pk, _, at = line.split()
        sends[int(pk)] += 1
        first.setdefault(int(pk), float(at))
    latencies = sorted(first[pk] - committed[pk] for pk in first if pk in committed)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else 0.0

    return {
        "notifications sent / triggered": f"{len(first)} / {len(committed)}",
        "duplicates": sum(n - 1 for n in sends.values()),
        "commit-to-sent p50 / p95 / max": f"{pct(50):.0f} / {pct(95):.0f} / {pct(100):.0f} ms",
        "atomic() block that triggers, median": f"{statistics.median(blocks) * 1000:.2f} ms",
    }


def trigger_cost(args: argparse.Namespace, users: list) -> dict[str, float]:
    """Median ``atomic()`` block that triggers ``--per-transaction``, with no worker running
    (nothing else competes for the CPU): without a wake-up and with the django.tasks one,
    interleaved transaction by transaction."""
    from django.db import transaction
    from django.test.utils import override_settings

    from tests.notifications import DurableMessage
    from transmissions.models import Notification

    times: dict[str, list[float]] = {"none": [], "django_tasks": []}
    for _ in range(args.transactions):
        for mode in times:
            with override_settings(TRANSMISSIONS_WAKE_UP=None if mode == "none" else mode, TASKS=TASKS):
                started = time.perf_counter()
                with transaction.atomic():
                    DurableMessage.trigger_many(users[: args.per_transaction])
                times[mode].append(time.perf_counter() - started)
    Notification.objects.all().delete()
    return {mode: statistics.median(values) * 1000 for mode, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with setup_db.suite_database("tx_wakeup"):
        from tests.models import User

        users = [
            User.objects.create(username=f"w{i}", email=f"w{i}@example.com")
            for i in range(args.per_transaction)
        ]
        workdir = Path(tempfile.mkdtemp(prefix="tx-wakeup-"))
        cost = trigger_cost(args, users)
        table = {mode: round_(args, mode, users, workdir) for mode in ("django_tasks", "sweep")}
    keys = list(table["sweep"])
    width = max(map(len, keys))
    heads = {
        "django_tasks": f"wake-up, {args.workers} db_worker (--interval {args.interval:g})",
        "sweep": f"{args.workers} x process_notifications --loop --interval {args.sweep_interval:g}",
    }
    print(
        f"PostgreSQL, {args.transactions} transactions x {args.per_transaction}, "
        f"Django {django.get_version()}"
    )
    print(f"{'':{width}}  {heads['django_tasks']:<44}  {heads['sweep']}")
    for key in keys:
        print(f"{key:{width}}  {table['django_tasks'][key]!s:<44}  {table['sweep'][key]}")
    print(
        f"atomic() block triggering {args.per_transaction}, no worker running, "
        f"median of {args.transactions}: "
        f"{cost['none']:.2f} ms without a wake-up, {cost['django_tasks']:.2f} ms with the django.tasks one "
        f"(+{cost['django_tasks'] - cost['none']:.2f} ms: the task's INSERT at commit)"
    )
    return 1 if any(t["duplicates"] for t in table.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
