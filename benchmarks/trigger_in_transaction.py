#!/usr/bin/env python
"""What trigger() costs in and out of a caller's transaction, beside raw INSERTs.

    python benchmarks/trigger_in_transaction.py [--db sqlite|postgres] [--n 5000] [--rounds 5]

Each row beside its baseline in the same process, rounds alternating (medians):

- run.py's trigger row: ``trigger()`` once per notification, each its own transaction,
  against the raw single-row INSERT of ``raw.single_inserts``;
- the same calls inside the caller's transactions (100 triggers per ``atomic()``), against
  raw INSERTs 100 to a transaction, and against themselves without the users' check;
- run.py's fan-out: ``trigger_many()`` to 1,000 users, against raw multi-row INSERTs, against
  itself without the users' check, and against itself checking in its own transaction too;
- a LAST_ONLY ``trigger()`` outside a transaction (its own atomic block), against itself
  checking there too.

In the caller's transaction an INSERT also makes sure its users exist (``Dialect.checks_users``),
so that a user deleted meanwhile is ``InvalidTrigger`` at the call, not ``IntegrityError`` at
the caller's COMMIT (docs/reliability.md); "not checked" patches that off, as it was before
a6b1d3c. a6b1d3c checked in every transaction, transmissions' own too; "checked in its own
transaction" patches ``Dialect.own_transactions`` off to measure that.

Uses the benchmark database of ``benchmarks/setup_db.py`` (``TRANSMISSIONS_BENCH_DB_NAME``).
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import setup_db  # noqa: E402

PER_TRANSACTION = 100


def main() -> None:
    args = setup_db.parse_and_configure(__doc__, n=5000, rounds=5)
    from django.db import transaction

    from benchmarks import bench_messages as m
    from benchmarks import raw
    from benchmarks import workloads as w
    from benchmarks.report import rates  # the sides alternating, round after round
    from transmissions.db.base import Dialect
    from transmissions.db.returning import ReturningDialect

    db, n = args.db, args.n
    users = w.make_users(n, "u")
    ids = [u.pk for u in users]
    conn = setup_db.raw_connection(db)
    raw.analyze(conn, db)

    def clear() -> None:
        w.clear(db)

    def in_transactions() -> float:
        def run() -> None:
            for start in range(0, n, PER_TRANSACTION):
                with transaction.atomic():
                    for i in range(start, min(start + PER_TRANSACTION, n)):
                        m.NoopMessage.trigger(users[i % len(users)])

        return w.timed(run)

    def raw_in_transactions() -> float:
        p = "%s" if db == "postgres" else "?"
        sql = f"INSERT INTO {raw.TABLE} ({raw.COLUMNS}) VALUES ({', '.join([p] * 8)})"

        def run() -> None:
            for start in range(0, n, PER_TRANSACTION):
                conn.execute("BEGIN")
                for i in range(start, min(start + PER_TRANSACTION, n)):
                    now = raw._now(db)
                    row = (uuid.uuid4().hex[:22], "bench-noop", ids[i % len(ids)], now, now, 0, 0, None)
                    conn.execute(sql, row)
                conn.execute("COMMIT")

        return w.timed(run)

    def without_check(measure: Any) -> Any:
        """``measure`` with the INSERTs' user check turned off (as before it existed)."""

        def run() -> float:
            with mock.patch.object(ReturningDialect, "checks_users", lambda self: False):
                return float(measure())

        return run

    def as_a6b1d3c(measure: Any) -> Any:
        """``measure`` checking the users in transmissions' own transactions too (a6b1d3c)."""

        def run() -> float:
            with mock.patch.object(Dialect, "own_transactions", lambda self: contextlib.nullcontext()):
                return float(measure())

        return run

    def last_only() -> float:
        def run() -> None:
            for i in range(n):
                m.LastOnlyMessage.trigger(users[i % len(users)])

        return w.timed(run)

    print(f"{db}, n={n}, {args.rounds} rounds (medians, notifications/s; ratio: first / second)")

    def show(label: str, ours: float, base: float) -> None:
        print(f"{label:<78} {ours:>9,.0f} {base:>9,.0f}  {ours / base:.2f}", flush=True)

    ours, base = rates(
        args.rounds,
        n,
        [
            (clear, lambda: w.trigger_default(users, n)),
            (clear, lambda: w.raw_single_inserts(conn, db, ids, n, False)),
        ],
    )
    show("trigger(), each its own transaction / raw INSERT (run.py's trigger row)", ours, base)
    checked, unchecked, bare = rates(
        args.rounds,
        n,
        [(clear, in_transactions), (clear, without_check(in_transactions)), (clear, raw_in_transactions)],
    )
    show(f"trigger() in the caller's transactions ({PER_TRANSACTION} a COMMIT) / raw INSERT", checked, bare)
    show("  the same, users checked / not checked (before)", checked, unchecked)
    fan_out = min(n, 1000)
    checked, unchecked, before, bare = rates(
        args.rounds,
        fan_out,
        [
            (clear, lambda: w.fan_out(users[:fan_out])),
            (clear, without_check(lambda: w.fan_out(users[:fan_out]))),
            (clear, as_a6b1d3c(lambda: w.fan_out(users[:fan_out]))),
            (clear, lambda: w.raw_fan_out(conn, db, ids[:fan_out])),
        ],
    )
    show(f"trigger_many() to {fan_out:,} users (its own transaction) / raw multi-row", checked, bare)
    show("  the same / not checked (before a6b1d3c)", checked, unchecked)
    show("  the same / checked in its own transaction too (a6b1d3c)", checked, before)
    ours, before = rates(args.rounds, n, [(clear, last_only), (clear, as_a6b1d3c(last_only))])
    show("LAST_ONLY trigger() (its own atomic block) / checked there too (a6b1d3c)", ours, before)


if __name__ == "__main__":
    main()
