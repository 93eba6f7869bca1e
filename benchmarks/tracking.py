#!/usr/bin/env python
"""What delivery tracking costs, each figure beside its baseline in the same process.

    python benchmarks/tracking.py [--db sqlite|postgres] [--n 5000] [--rounds 3] [--events 1000]

1. Processing emails (``DefaultEmailMessage`` to Django's locmem backend, batches of 100)
   with the default policies (``SuppressionPolicy``: one query a batch; the provider id in
   the outcome's UPDATE) against ``TRANSMISSIONS_POLICIES = []``.
2. ``trigger_many()`` of the same rows with the ``provider_message_id`` index against the
   table without it (dropped, then created again).
3. Recording delivery events (``tracking.record()``: look-up, INSERT, conditional UPDATE,
   one transaction each, as a webhook does), per second: "delivered" for ``--events``
   emails and "opened" for half of them.

Rounds alternate the two sides; the table shows medians. Uses the benchmark database of
``benchmarks/setup_db.py`` (``TRANSMISSIONS_BENCH_DB_NAME`` on PostgreSQL).
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import setup_db  # noqa: E402

INDEX = "transmissions_provider_id_idx"


def main() -> None:
    def events_arg(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--events", type=int, default=1000, help="emails whose events are recorded")

    args = setup_db.parse_and_configure(__doc__, n=5000, rounds=3, extra=events_arg)

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import override_settings

    from benchmarks.bench_messages import DigestEmail
    from transmissions.models import DeliveryEvent, Notification
    from transmissions.tracking import Event, SuppressionPolicy, record
    from transmissions.worker import process_all_notifications

    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"t{i}", email=f"t{i}@example.com") for i in range(args.n)
    )
    users = list(get_user_model().objects.order_by("pk"))

    def clear() -> None:
        DeliveryEvent.objects.all().delete()
        Notification.objects.all().delete()

    def trigger() -> float:
        started = time.perf_counter()
        DigestEmail.trigger_many(users)
        return time.perf_counter() - started

    def process(policies: list[str] | None) -> float:
        DigestEmail.trigger_many(users)
        settings = {} if policies is None else {"TRANSMISSIONS_POLICIES": policies}
        with override_settings(**settings):
            started = time.perf_counter()
            done = process_all_notifications(batch_size=100, time_limit=3600)
            elapsed = time.perf_counter() - started
        assert done == len(users), done
        return elapsed

    def index(present: bool) -> None:
        with connection.cursor() as cursor:
            if present:
                table = "transmissions_notification"
                cursor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON {table} (provider_message_id)")
            else:
                cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")

    results: dict[str, list[float]] = {k: [] for k in ("proc", "proc0", "trig", "trig0", "events")}
    for round_ in range(args.rounds):
        # Alternate which side goes first, so that a drift of the machine's load is shared.
        for policies in ([], None) if round_ % 2 else (None, []):
            clear()
            results["proc0" if policies == [] else "proc"].append(process(policies))
        # Delivery events for the emails just sent: delivered, then opened for half.
        sent = list(Notification.objects.values_list("provider_message_id", flat=True))
        at = datetime.datetime(2026, 5, 4, 12, tzinfo=datetime.UTC)
        sample = sent[: args.events]
        events = [Event("bench", f"{m}:d", "delivered", "delivered", m, at) for m in sample]
        events += [Event("bench", f"{m}:o", "opened", "opened", m, at) for m in sample[::2]]
        started = time.perf_counter()
        for event in events:
            record(event)
        results["events"].append(len(events) / (time.perf_counter() - started))
        for present in (True, False) if round_ % 2 else (False, True):
            clear()
            index(present)
            results["trig" if present else "trig0"].append(trigger())
        index(True)
    # The policy's own cost, alone: prepare() for one claimed batch of 100.
    clear()
    DigestEmail.trigger_many(users[:100])
    batch = Notification.objects.claim(100)
    policy = SuppressionPolicy()
    started = time.perf_counter()
    for _ in range(100):
        policy.prepare(batch)
    prepare_ms = (time.perf_counter() - started) * 10

    med = {k: statistics.median(v) for k, v in results.items()}
    n = len(users)
    print(f"{args.db}, {n} emails, {args.rounds} rounds (medians; time ratio = with / without)")
    rows = [
        ("process, SuppressionPolicy (default)", n / med["proc"], ""),
        ("process, TRANSMISSIONS_POLICIES = []", n / med["proc0"], f"{med['proc'] / med['proc0']:.2f}"),
        ("trigger_many, provider id index", n / med["trig"], ""),
        ("trigger_many, without that index", n / med["trig0"], f"{med['trig'] / med['trig0']:.2f}"),
        ("record() of delivery events", med["events"], ""),
    ]
    for name, rate, ratio in rows:
        print(f"{name:<40} {rate:9.0f}/s  {ratio}")
    print(f"{'SuppressionPolicy.prepare(), batch of 100':<40} {prepare_ms:9.2f} ms")


if __name__ == "__main__":
    main()
