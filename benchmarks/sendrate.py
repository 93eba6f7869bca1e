#!/usr/bin/env python
"""What send rates (``TRANSMISSIONS_SEND_RATES``) cost a worker, each figure beside its
baseline in the same process.

    python benchmarks/sendrate.py [--db sqlite|postgres] [--n 5000] [--rounds 5]

Processing ``--n`` notifications of a no-op channel (nothing is sent: what remains is the
app's own cost), in batches of 100, one worker:

1. the no-rate path: ``TRANSMISSIONS_SEND_RATES`` unset (the baseline) against a rate for
   another channel kind (each row's key is looked up, no query);
2. the paced path: a rate so high it never waits (10000/s), so what it costs is the slot's
   statements (a SELECT and an UPDATE to take it, an UPDATE to free it), against none.

Each side's statements are counted, and its CPU time (``time.process_time()``, which the
other processes on a shared machine do not move) and wall time measured; rounds alternate
the two sides and the table shows medians. Uses the benchmark database of
``benchmarks/setup_db.py`` (``TRANSMISSIONS_BENCH_DB_NAME`` on PostgreSQL).
"""

from __future__ import annotations

import datetime
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import setup_db  # noqa: E402


def main() -> None:
    args = setup_db.parse_and_configure(__doc__, n=5000, rounds=5)

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import override_settings

    from benchmarks.bench_messages import NoopMessage
    from transmissions.models import Notification, SendSlot
    from transmissions.worker import process_all_notifications

    user_model = get_user_model()
    user_model.objects.bulk_create(
        user_model(username=f"r{i}", email=f"r{i}@example.com") for i in range(args.n)
    )
    users = list(user_model.objects.order_by("pk"))
    kind = NoopMessage.channel or "bench"
    NoopMessage.send_rate_key = kind  # type: ignore[attr-defined]

    def process(**settings: Any) -> tuple[float, float, int]:
        Notification.objects.all().delete()
        SendSlot.objects.all().delete()
        NoopMessage.trigger_many(users)
        queries = []

        def count(execute: Any, sql: str, *args: Any) -> Any:
            queries.append(sql)
            return execute(sql, *args)

        with override_settings(**settings), connection.execute_wrapper(count):
            cpu, wall = time.process_time(), time.perf_counter()
            done = process_all_notifications(batch_size=100, time_limit=3600)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert done == len(users) == Notification.objects.sent().count(), done
        return cpu, wall, len(queries)

    sides = {
        "unset": lambda: process(),
        "other": lambda: process(TRANSMISSIONS_SEND_RATES={"sms": "1/s"}),
        "paced": lambda: process(TRANSMISSIONS_SEND_RATES={kind: "10000/s"}),
        "paced0": lambda: process(),
    }
    results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in sides}
    for round_ in range(args.rounds):
        for pair in (("other", "unset"), ("paced", "paced0")):
            # Alternate which side goes first, so that a drift of the machine's load is shared.
            for key in pair if round_ % 2 == 0 else reversed(pair):
                results[key].append(sides[key]())
    n = len(users)
    print(
        f"{args.db}, {n} notifications, {args.rounds} rounds, {datetime.date.today()} "
        "(medians; CPU and wall microseconds per notification; ratio = with / without)"
    )
    rows = [
        ("TRANSMISSIONS_SEND_RATES unset (baseline)", "unset", ""),
        ("a rate for another channel kind", "other", "unset"),
        ("no rate (baseline)", "paced0", ""),
        ("paced at 10000/s (never waits)", "paced", "paced0"),
    ]
    med = {
        key: tuple(statistics.median(r[i] for r in runs) for i in range(3)) for key, runs in results.items()
    }
    for name, key, against in rows:
        cpu, wall, queries = med[key]
        ratio = f"  cpu x{cpu / med[against][0]:.2f}  wall x{wall / med[against][1]:.2f}" if against else ""
        print(
            f"{name:<44} cpu {cpu / n * 1e6:7.1f} us  wall {wall / n * 1e6:7.1f} us  "
            f"{queries:6.0f} queries{ratio}"
        )


if __name__ == "__main__":
    main()
