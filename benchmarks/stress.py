#!/usr/bin/env python
"""Chaos run: workers SIGKILLed while they deliver a backlog; count what was sent, twice, never.

    python benchmarks/stress.py --workers 4 --notifications 20000 --kill-every 5s --policy broken
    python benchmarks/stress.py --mode slow --workers 4 --notifications 2000 --send-ms 100 --lease 2
    python benchmarks/stress.py --mode dbterm --workers 4 --notifications 5000 --kill-every 1s

``--mode kill`` (the default) SIGKILLs a worker every ``--kill-every``; ``slow`` kills
nothing, but each send takes ``--send-ms`` so a batch outlasts the lease; ``dbterm``
terminates a random worker's database connection every ``--kill-every``
(``pg_terminate_backend``, ``KILL`` on MySQL/MariaDB) instead of the worker, and
counts the workers that died of it (each is replaced).

Creates a scratch PostgreSQL database (127.0.0.1, as the test suite does; dropped at
the end), starts ``--workers`` worker processes (``tests/child.py``: a fresh Django
each, looping ``process_all_notifications``), triggers the backlog from this process
through ``trigger()`` (``--future`` of it scheduled up to 10 s ahead) while every
``--kill-every`` one random worker is SIGKILLed and replaced, waits until every
notification is final (or ``--timeout``), then prints one table. It runs ANALYZE after
creating the users, as the table grows (autovacuum's default threshold) and after the
last trigger, since the test servers run with autovacuum off. Every send is one
line in an O_APPEND log (``tests/notifications.py``), so sends of killed workers count.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def seconds(text: str) -> float:
    return float(text[:-1] if text.endswith("s") else text)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--notifications", type=int, default=20_000)
    p.add_argument("--mode", choices=["kill", "slow", "dbterm"], default="kill")
    p.add_argument("--kill-every", type=seconds, default=5.0, help="e.g. 5s; 0 never kills")
    p.add_argument("--policy", choices=["broken", "retry"], default="broken")
    p.add_argument("--lease", type=float, default=5.0, help="TRANSMISSIONS_LEASE_SECONDS")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--send-ms", type=float, default=1.0, help="time one send takes (a provider call)")
    p.add_argument("--future", type=float, default=0.1, help="share scheduled 1-10 s ahead")
    p.add_argument("--timeout", type=seconds, default=300.0, help="stop whatever the state")
    p.add_argument("--db", choices=["postgres", "mysql"], default="postgres")
    p.add_argument("--backlog", action="store_true", help="trigger everything before the workers start")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


class Workers:
    """The worker processes; only these are ever killed, by their id."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str], workdir: Path) -> None:
        self.args, self.env, self.workdir = args, env, workdir
        self.stop_file = workdir / "stop"
        self.procs: list[subprocess.Popen] = []
        self.killed = 0
        self.terminated = 0
        self.died = 0

    def start(self) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "tests.child", "process", "--loop", "--stop", str(self.stop_file)]
        cmd += ["--batch-size", str(self.args.batch_size)]
        with open(self.workdir / f"worker-{len(self.procs)}.err", "w") as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=err)
        self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.procs if p.poll() is None]

    def kill_one(self, rng: random.Random) -> None:
        victims = self.alive()
        if victims:
            rng.choice(victims).send_signal(signal.SIGKILL)
            self.killed += 1
        self.start()

    def replace_dead(self) -> None:
        """Count and replace the workers that died by themselves (not SIGKILLed here)."""
        for p in list(self.procs):
            if p.poll() is not None and p.returncode != -signal.SIGKILL and not getattr(p, "counted", False):
                p.counted = True  # type: ignore[attr-defined]
                self.died += 1
                self.start()

    def terminate_connection(self, rng: random.Random) -> None:
        """Kill one worker's database connection (not the worker), as an administrator would."""
        from django.db import connection

        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
                pids = [row[0] for row in cursor.fetchall()]
                if pids:
                    cursor.execute("SELECT pg_terminate_backend(%s)", [rng.choice(pids)])
                    self.terminated += 1
            else:
                cursor.execute(
                    "SELECT id FROM information_schema.processlist WHERE db = DATABASE() "
                    "AND id <> CONNECTION_ID()"
                )
                ids = [row[0] for row in cursor.fetchall()]
                if ids:
                    cursor.execute(f"KILL {int(rng.choice(ids))}")
                    self.terminated += 1

    def stop(self, timeout: float = 30) -> None:
        self.stop_file.touch()
        deadline = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


def analyze(db: str) -> None:
    """Table statistics, as a production server's autovacuum keeps them (the test servers
    here run with autovacuum off): without them the claim's due-query and a batch's users'
    query are planned for empty tables (see benchmarks/raw.py's ``analyze``)."""
    from django.db import connection

    from tests.models import User
    from transmissions.models import Notification

    with connection.cursor() as cursor:
        for table in (Notification._meta.db_table, User._meta.db_table):
            cursor.execute(f"ANALYZE {table}" if db == "postgres" else f"ANALYZE TABLE {table}")


def run(args: argparse.Namespace) -> dict:
    from django.db import connection
    from django.utils import timezone

    from tests.child import child_env
    from tests.models import User
    from tests.notifications import SEND_DELAY_ENV, SEND_LOG_ENV, DurableMessage
    from transmissions.models import Notification

    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="tx-stress-"))
    log = workdir / "sends.log"
    settings = {
        "TRANSMISSIONS_LEASE_SECONDS": args.lease,
        "TRANSMISSIONS_EXPIRED_LEASE_POLICY": args.policy,
        "TRANSMISSIONS_BATCH_SIZE": args.batch_size,
        "TRANSMISSIONS_TIME_LIMIT": min(2.0, args.lease / 2),
    }
    env = child_env(
        connection.settings_dict["NAME"],
        settings,
        **{SEND_LOG_ENV: str(log), SEND_DELAY_ENV: str(args.send_ms / 1000)},
    )
    users = [User.objects.create(username=f"stress{i}", email=f"s{i}@example.com") for i in range(50)]
    analyze(args.db)
    workers = Workers(args, env, workdir)
    started = time.monotonic()
    deadline = started + args.timeout
    next_kill = float("inf")

    def start_workers() -> None:
        nonlocal next_kill
        for _ in range(args.workers):
            workers.start()
        if args.kill_every and args.mode != "slow":
            next_kill = time.monotonic() + args.kill_every

    def chaos() -> None:
        nonlocal next_kill
        workers.replace_dead()
        if time.monotonic() >= next_kill:
            if args.mode == "dbterm":
                workers.terminate_connection(rng)
            else:
                workers.kill_one(rng)
            next_kill += args.kill_every

    if not args.backlog:
        start_workers()
    pending = Notification.objects.filter(
        status__in=[Notification.Status.CREATED, Notification.Status.PROCESSING]
    )
    # Analyze again as the table grows by autovacuum's default threshold (50 rows + 10%).
    analyzed_at = 0
    try:
        for i in range(args.notifications):
            when = None
            if rng.random() < args.future:
                when = timezone.now() + datetime.timedelta(seconds=rng.uniform(1, 10))
            DurableMessage.trigger(users[i % len(users)], datetime_scheduled=when)
            if i % 200 == 0:
                chaos()
            if i - analyzed_at >= 50 + analyzed_at // 10:
                analyze(args.db)
                analyzed_at = i
        triggered_in = time.monotonic() - started
        analyze(args.db)
        if args.backlog:
            start_workers()
        # Chaos goes on while work is due; then wait for leases to expire and be taken back.
        while pending.exists() and time.monotonic() < deadline:
            due = pending.filter(status=Notification.Status.CREATED, datetime_scheduled__lte=timezone.now())
            if due.exists():
                chaos()
            else:
                workers.replace_dead()
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        workers.stop()
    return report(args, log, workers, elapsed, triggered_in)


def report(
    args: argparse.Namespace, log: Path, workers: Workers, elapsed: float, triggered_in: float
) -> dict:
    from transmissions.models import Notification

    S = Notification.Status
    rows = {
        pk: (status, when)
        for pk, status, when in Notification.objects.values_list("pk", "status", "datetime_scheduled")
    }
    first_sent: dict[int, float] = {}
    sends = collections.Counter()
    for line in log.read_text().splitlines() if log.exists() else []:
        pk, _, at = line.split()
        sends[int(pk)] += 1
        first_sent.setdefault(int(pk), float(at))
    status_count = collections.Counter(status for status, _ in rows.values())
    broken = {pk for pk, (status, _) in rows.items() if status == S.BROKEN}
    sent_ok = {pk for pk, (status, _) in rows.items() if status == S.SUCCESSFULLY_SENT}
    # Lost: should have gone out and did not, and nothing says so (not BROKEN, not stuck).
    lost = (sent_ok - set(sends)) | {
        pk
        for pk, (status, _) in rows.items()
        if status not in (S.SUCCESSFULLY_SENT, S.BROKEN, S.CREATED, S.PROCESSING)
    }
    latencies = sorted(first_sent[pk] - rows[pk][1].timestamp() for pk in first_sent if pk in rows)

    def pct(p: float) -> str:
        if not latencies:
            return "-"
        return f"{latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000:.0f} ms"

    return {
        "policy": f"{args.policy} (lease {args.lease:g} s)",
        "mode": args.mode,
        "workers / killed": f"{args.workers} / {workers.killed}"
        + (f" (every {args.kill_every:g} s)" if args.mode == "kill" else ""),
        "connections terminated": workers.terminated,
        "workers died (not killed by the run)": workers.died,
        "notifications": args.notifications,
        "sent": len(sent_ok),
        "sent, then BROKEN": len(broken & set(sends)),
        "BROKEN, not sent": len(broken - set(sends)),
        "duplicates (sends beyond the first)": sum(n - 1 for n in sends.values()),
        "lost": len(lost) + (args.notifications - len(rows)),
        "stuck (not final at the end)": status_count[S.CREATED] + status_count[S.PROCESSING],
        "due-to-sent latency p50 / p99": f"{pct(50)} / {pct(99)}",
        "wall time (triggering)": f"{elapsed:.1f} s ({triggered_in:.1f} s)",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ["TRANSMISSIONS_TEST_DB"] = args.db
    os.environ.setdefault("TRANSMISSIONS_TEST_DB_NAME", "tx_stress")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    from django.db import connection

    django.setup()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        table = run(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    width = max(map(len, table))
    mode = "backlog triggered first" if args.backlog else "triggered while workers run"
    print(f"{'':{width}}  {args.db}, batch {args.batch_size}, send {args.send_ms:g} ms, {mode}")
    broken_sent = "sent, then BROKEN"
    for key, value in table.items():
        print(f"{key:{width}}  {value}")
    bad = table["lost"] or table["stuck (not final at the end)"]
    bad = bad or (args.policy == "broken" and table["duplicates (sends beyond the first)"])
    # No worker is killed outside "kill": a row sent and then BROKEN, or a worker that
    # died, is a fault.
    bad = bad or (
        args.mode != "kill" and (table[broken_sent] or table["workers died (not killed by the run)"])
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
