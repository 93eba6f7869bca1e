#!/usr/bin/env python
"""PostgreSQL: what migration 0016 (the index diet) saves, before and after in one process.

    python benchmarks/indexdiet.py [--n 20000] [--rounds 3] [--sizes 200000]

Each round runs, with the indexes of 0015 and then of 0016 (the order alternating round
after round; ``migrate transmissions 0015`` / ``0016`` on the emptied table): processing a
due backlog through a no-op channel, the raw claim-and-mark cycle, and processing a backlog
of emails through locmem; django-post-office's ``send_queued`` once a round (its table does
not change). Batches of 100, ANALYZE after seeding. Per batch, the claim (``claim()``: the
UPDATE ... RETURNING and the users' query) and the outcome (``finish()``: the UPDATE) are
timed apart. Then ``--sizes`` rows go through the raw claim-and-mark (two non-HOT UPDATEs
each, as a worker does) under each set of indexes, and the indexes' sizes are printed.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import setup_db  # noqa: E402

TABLE = "transmissions_notification"
SIDES = ("0015_send_slot", "0016_postgresql_index_diet")
FULL_UNIQUE = "0016, full unique keys"


def main() -> None:
    def sizes_arg(parser: Any) -> None:
        parser.add_argument("--sizes", type=int, default=200_000, help="rows for the index sizes (0: none)")
        parser.add_argument(
            "--full-unique",
            action="store_true",
            help="a third side: 0016, but idempotency_key and throttle_slot keep full UNIQUE constraints",
        )

    args = setup_db.parse_and_configure(__doc__, n=20_000, rounds=3, extra=sizes_arg)
    if args.db != "postgres":
        sys.exit("The index diet is PostgreSQL's: run with --db postgres.")

    from django.contrib.auth.models import User
    from django.core import mail
    from django.core.management import call_command

    from benchmarks import raw
    from benchmarks import workloads as w
    from transmissions import lifecycle

    n, conn = args.n, setup_db.raw_connection("postgres")
    User.objects.bulk_create(
        [User(username=f"u{i}", email=f"u{i}@example.com") for i in range(n)], batch_size=1000
    )
    users = list(User.objects.order_by("pk"))
    ids = [u.pk for u in users]

    spent = {"claim": 0.0, "finish": 0.0}

    w.add_time_of(lifecycle.LifecycleQuerySet, "claim", spent, "claim")
    w.add_time_of(lifecycle.LifecycleQuerySet, "finish", spent, "finish")

    sides = (*SIDES, FULL_UNIQUE) if args.full_unique else SIDES

    def use(side: str) -> None:
        w.clear("postgres")
        call_command("migrate", "transmissions", SIDES[0], verbosity=0)  # from a known state
        call_command("migrate", "transmissions", SIDES[1] if side == FULL_UNIQUE else side, verbosity=0)
        if side == FULL_UNIQUE:
            for column in ("idempotency_key", "throttle_slot"):
                name = f"{TABLE}_{column}_key"
                conn.execute(f"DROP INDEX {name}")
                conn.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} UNIQUE ({column})")

    def seeded(name: str) -> None:
        w.clear("postgres")
        w.seed_due(conn, "postgres", name, ids, n)
        raw.analyze(conn, "postgres")

    def measure(run: Any) -> tuple[float, float, float]:
        """(rate, claim ms a batch, outcome ms a batch)."""
        spent.update(claim=0.0, finish=0.0)
        seconds = run()
        batches = n / 100
        return n / seconds, spent["claim"] / batches * 1e3, spent["finish"] / batches * 1e3

    results: dict[str, list[tuple[float, ...]]] = {}
    for round_ in range(args.rounds):
        for side in sides if round_ % 2 == 0 else sides[::-1]:
            use(side)
            seeded("bench-noop")
            results.setdefault(f"noop {side}", []).append(measure(lambda: w.process(n)))
            seeded("bench-noop")
            results.setdefault(f"raw {side}", []).append(
                measure(lambda: w.raw_claim_and_mark(conn, "postgres", n))
            )
            seeded("bench-email")
            mail.outbox = []
            results.setdefault(f"email {side}", []).append(measure(lambda: w.process_emails(n)))
        w.clear("postgres")
        w.seed_post_office(users, n)
        mail.outbox = []
        results.setdefault("post-office", []).append(measure(lambda: w.post_office_send_queued(n)))
        print(f"round {round_ + 1} done", flush=True)

    print(f"PostgreSQL, n={n}, {args.rounds} rounds, batches of 100 (medians)")
    print(f"{'':<34}{'rate/s':>9}{'claim ms':>10}{'outcome ms':>12}")
    for name, samples in results.items():
        rate, claim, finish = (statistics.median(s[i] for s in samples) for i in range(3))
        print(f"{name:<34}{rate:9.0f}{claim:10.2f}{finish:12.2f}")
    po = statistics.median(s[0] for s in results["post-office"])
    for side in sides:
        noop = statistics.median(s[0] for s in results[f"noop {side}"])
        bare = statistics.median(s[0] for s in results[f"raw {side}"])
        email = statistics.median(s[0] for s in results[f"email {side}"])
        print(f"{side}: no-op {noop / bare:.0%} of raw; emails {email / po:.2f}x post-office")

    if args.sizes:
        index_sizes(conn, args.sizes, use, ids, raw, w)


def index_sizes(conn: Any, count: int, use: Any, ids: list[int], raw: Any, w: Any) -> None:
    sizes_sql = (
        "SELECT c.relname, pg_relation_size(c.oid) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass ORDER BY 1"
    )
    print(f"\nIndex sizes after {count} rows seeded and processed (raw claim-and-mark), MB:")
    found: dict[str, dict[str, int]] = {}
    for side in SIDES:
        use(side)
        w.seed_due(conn, "postgres", "bench-noop", ids, count)
        raw.analyze(conn, "postgres")
        assert raw.claim_and_mark(conn, "postgres", 100) == count
        found[side] = dict(conn.execute(sizes_sql, (TABLE,)).fetchall())
    names = sorted(set(found[SIDES[0]]) | set(found[SIDES[1]]))
    mb = 1024 * 1024
    for name in names:
        before, after = (found[s].get(name) for s in SIDES)
        cells = [f"{v / mb:8.1f}" if v is not None else f"{'-':>8}" for v in (before, after)]
        print(f"{name:<58}{cells[0]}{cells[1]}")
    totals = [sum(found[s].values()) / mb for s in SIDES]
    print(f"{'total':<58}{totals[0]:8.1f}{totals[1]:8.1f}")
    use(SIDES[1])


if __name__ == "__main__":
    main()
