#!/usr/bin/env python
"""Where a batch of emails spends its time: the claim, the deliveries, the outcomes, the rest.

    python benchmarks/email_split.py [--db sqlite|postgres] [--n 5000] [--rounds 3]

Processes ``--n`` due ``DefaultEmailMessage`` rows through Django's locmem backend in batches
of 100 (as ``run.py``'s emails row does) with the worker's ``claim()``, ``deliver()`` and
``finish()`` timed from the inside, then django-post-office's ``send_queued()`` and the bare
ceiling (``EmailMessage.send()``, no database) on the same emails; prints milliseconds per
batch of 100 for each round. Uses the benchmark database of ``benchmarks/setup_db.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import setup_db  # noqa: E402


def main() -> None:
    args = setup_db.parse_and_configure(__doc__, n=5000, rounds=3)

    from django.core import mail

    from benchmarks import bench_messages, raw  # noqa: F401 - registers the messages
    from benchmarks import workloads as w
    from transmissions import worker
    from transmissions.models import Notification

    users = w.make_users(args.n, "e")
    ids = [u.pk for u in users]
    conn = setup_db.raw_connection(args.db)
    spent = {"claim": 0.0, "deliver": 0.0, "finish": 0.0}

    queryset = type(Notification.objects.get_queryset())
    w.add_time_of(queryset, "claim", spent, "claim")
    w.add_time_of(queryset, "finish", spent, "finish")
    w.add_time_of(worker, "deliver", spent, "deliver")
    batches = args.n / 100
    print("| round | total | claim | deliveries | outcomes | rest | post-office | bare ceiling |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for round_ in range(1, args.rounds + 1):
        spent.update(dict.fromkeys(spent, 0.0))
        w.clear(args.db)
        w.seed_due(conn, args.db, "bench-email", ids, args.n)
        raw.analyze(conn, args.db)
        mail.outbox = []
        ours = w.process_emails(args.n)
        w.clear(args.db)
        w.seed_post_office(users, args.n)
        mail.outbox = []
        theirs = w.post_office_send_queued(args.n)
        w.clear(args.db)
        mail.outbox = []
        bare = w.bare_emails(users, args.n)
        ms = {k: v / batches * 1e3 for k, v in spent.items()}
        rest = ours / batches * 1e3 - sum(ms.values())
        print(
            f"| {round_} | {ours / batches * 1e3:.1f} | {ms['claim']:.1f} | {ms['deliver']:.1f} | "
            f"{ms['finish']:.1f} | {rest:.1f} | {theirs / batches * 1e3:.1f} | {bare / batches * 1e3:.1f} |",
            flush=True,
        )
    print("\nmilliseconds per batch of 100 emails")


if __name__ == "__main__":
    main()
