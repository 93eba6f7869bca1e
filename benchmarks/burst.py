#!/usr/bin/env python
"""Dispatch on commit: a burst of separately committed triggers, with a real Celery worker.

    python benchmarks/burst.py --triggers 2000

Creates a scratch PostgreSQL database (as the test suite does; dropped at the end), starts
one ``celery worker --pool=solo`` on Redis (``TRANSMISSIONS_TEST_REDIS_URL``, database 7
by default) and runs two rounds on the same workload, ``--triggers`` calls of
``trigger()``, each its own transaction:

- ``coalesced``: ``TRANSMISSIONS_WAKE_UP = "celery"`` with ``TRANSMISSIONS_WAKE_UP_CACHE``
  naming a Redis cache the worker shares (transmissions/coalesce.py);
- ``per-commit``: the same wake-up without the cache, one task per committed transaction.

A round counts the tasks published (Celery's ``before_task_publish``), waits until every
row is sent (``--timeout``) and takes trigger-to-sent from the rows themselves
(``datetime_processed - datetime_created``). Prints one JSON line per round; exits 1 when a
row was sent twice or not at all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import setup_db  # noqa: E402

REDIS_URL = os.environ.setdefault("TRANSMISSIONS_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "wake": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--triggers", type=int, default=2000)
    p.add_argument("--timeout", type=float, default=300.0)
    return p.parse_args(argv)


def round_(args: argparse.Namespace, coalesced: bool, workdir: Path) -> dict:
    import redis
    from celery.signals import before_task_publish
    from django.db import connection
    from django.test.utils import override_settings

    from tests.celery_app import TASK, app
    from tests.child import child_env
    from tests.models import User
    from tests.notifications import SEND_LOG_ENV, DurableMessage, read_send_log
    from transmissions.models import Notification

    redis.Redis.from_url(REDIS_URL).flushdb()  # this benchmark's own database number
    mode = "coalesced" if coalesced else "per-commit"
    log = workdir / f"{mode}.log"
    settings = {
        "CACHES": CACHES,
        "TRANSMISSIONS_WAKE_UP": "celery",
        "TRANSMISSIONS_WAKE_UP_CACHE": "wake" if coalesced else None,
    }
    env = child_env(connection.settings_dict["NAME"], settings, **{SEND_LOG_ENV: str(log)})
    out = workdir / f"{mode}.out"
    cmd = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "--pool=solo"]
    cmd += ["--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=info"]
    cmd += [f"--hostname=tx-burst-{os.getpid()}@%h"]
    with open(out, "w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    published: list[str] = []

    def count(sender: str | None = None, **kwargs: object) -> None:
        if sender == TASK:
            published.append(sender)

    app.set_current()
    before_task_publish.connect(count)
    user = User.objects.create(username=f"burst-{mode}", email=f"{mode}@example.com")
    try:
        deadline = time.monotonic() + 60
        while " ready." not in out.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the celery worker did not start:\n{out.read_text()}")
            time.sleep(0.05)
        with override_settings(**settings):
            started = time.perf_counter()
            pks = [DurableMessage.trigger(user).pk for _ in range(args.triggers)]
            triggered = time.perf_counter() - started
        rows = Notification.objects.filter(pk__in=pks)
        deadline = time.monotonic() + args.timeout
        while rows.filter(datetime_processed__isnull=True).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        before_task_publish.disconnect(count)
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(EPOCH FROM datetime_processed - datetime_created) FROM "
            f"{Notification._meta.db_table} WHERE id = ANY(%s) AND datetime_processed IS NOT NULL",
            [pks],
        )
        latencies = sorted(float(row[0]) * 1000 for row in cursor.fetchall())
    sends = read_send_log(log)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else 0.0

    return {
        "mode": mode,
        "triggers": args.triggers,
        "tasks": len(published),
        "sent": len(set(sends) & set(pks)),
        "duplicates": len(sends) - len(set(sends)),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": pct(100),
        "triggering_s": triggered,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with setup_db.suite_database("tx_burst"):
        workdir = Path(tempfile.mkdtemp(prefix="tx-burst-"))
        results = [round_(args, coalesced, workdir) for coalesced in (True, False)]
    for result in results:
        print(json.dumps(result))
    bad = any(r["duplicates"] or r["sent"] != r["triggers"] for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
