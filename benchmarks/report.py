"""Run every workload next to its baseline, then print and write the table and the plot."""

from __future__ import annotations

import datetime
import statistics
from pathlib import Path
from typing import Any

import django
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from benchmarks import processes, raw, setup_db
from benchmarks import workloads as w

HERE = Path(__file__).resolve().parent
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
FAN_OUT = 10_000
WORKERS = 4
# The digest workload: users, and items per user (issue 16: 1,000 x 20).
DIGEST_USERS = 1000
DIGEST_ITEMS = 20
BURST = 2000
# Calls per side and turn in the trigger rows (interleaved()).
CHUNK = 500


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float, str, float, float]] = []

    def add(self, workload: str, unit: str, ours: float, baseline: str, theirs: float, ratio: float) -> None:
        self.rows.append((workload, unit, ours, baseline, theirs, ratio))
        print(f"  {workload}: {ours:,.2f} vs {baseline} {theirs:,.2f} {unit} -> {ratio:.0%}", flush=True)

    def markdown(self) -> str:
        lines = [
            "| workload | transmissions | baseline | baseline figure | ratio |",
            "|---|---:|---|---:|---:|",
        ]
        for workload, unit, ours, baseline, theirs, ratio in self.rows:
            digits = 2 if unit.startswith("ms") else 0
            lines.append(
                f"| {workload} | {ours:,.{digits}f} {unit} | {baseline} | {theirs:,.{digits}f} {unit} "
                f"| {ratio:.0%} |"
            )
        return "\n".join(lines)


def rates(rounds: int, count: int, sides: list[tuple[Any, Any]]) -> list[float]:
    """Median rate of each (setup, timed run) side, the sides alternating round after round."""
    samples: list[list[float]] = [[] for _ in sides]
    for _ in range(rounds):
        for i, (setup, measure) in enumerate(sides):
            setup()
            samples[i].append(count / measure())
    return [statistics.median(s) for s in samples]


def interleaved(rounds: int, count: int, setup: Any, sides: list[Any], chunk: int = CHUNK) -> list[float]:
    """Median rate of each side's chunks. Each round runs ``setup()`` once, then ``count``
    calls of every side in chunks of ``chunk``, the sides taking turns chunk by chunk (which
    one goes first rotates), so both write into the same table at the same sizes and share
    the moments of the machine's load; a side is ``run(n, start)``, timing the calls
    ``start`` to ``start + n``. The median of many short chunks is not moved by the one a
    checkpoint or another process's burst of writes lands on, where one long run a side was."""
    samples: list[list[float]] = [[] for _ in sides]
    for _ in range(rounds):
        setup()
        for k, start in enumerate(range(0, count, chunk)):
            size = min(chunk, count - start)
            order = list(enumerate(sides))
            turn = k % len(order)
            for i, measure in order[turn:] + order[:turn]:
                samples[i].append(size / measure(size, start))
    return [statistics.median(s) for s in samples]


def trigger_rows(table: Table, db: str, rounds: int, n: int, users: list[Any], conn: Any, clear: Any) -> None:
    """The trigger rows, each side against its baseline in interleaved chunks."""
    ids = [u.pk for u in users]
    sides = [
        lambda size, start: w.trigger_default(users, size, start),
        lambda size, start: w.raw_single_inserts(conn, db, ids, size, False, start),
    ]
    unprepared = setup_db.raw_connection(db, prepared=False) if db == "postgres" else None
    if unprepared is not None:
        sides.append(lambda size, start: w.raw_single_inserts(unprepared, db, ids, size, False, start))
    ours, base, *rest = interleaved(rounds, n, clear, sides)
    label = "trigger, DEFAULT, one call per notification"
    baseline = "raw single-row INSERT, one transaction each"
    table.add(label, "notifications/s", ours, baseline, base, ours / base)
    if rest:
        # Django turns psycopg's prepared statements off unless OPTIONS turns them on (poolers).
        table.add(
            label,
            "notifications/s",
            ours,
            "the same raw INSERT unprepared (prepare_threshold=None, as Django's default)",
            rest[0],
            ours / rest[0],
        )
        unprepared.close()

    for label, workload in (
        ("trigger, DEFAULT, with an idempotency key", w.trigger_keyed),
        ("trigger, throttled (3 an hour per user), under the limit", w.trigger_throttled),
    ):
        ours, base = interleaved(
            rounds,
            n,
            clear,
            [
                lambda size, start, workload=workload: workload(users, size, start),
                lambda size, start: w.trigger_default(users, size, start),
            ],
        )
        table.add(label, "notifications/s", ours, "trigger, DEFAULT, without", base, ours / base)

    ours, base = interleaved(
        rounds,
        n,
        clear,
        [
            lambda size, start: w.trigger_dedup(users, size, start, total=n),
            lambda size, start: w.raw_single_inserts(conn, db, ids, size, True, start),
        ],
    )
    table.add(
        "trigger, SEND_ONCE and TRIGGER_ONCE_PER_CONTENT",
        "notifications/s",
        ours,
        "the same raw INSERT (with its dedup key)",
        base,
        ours / base,
    )


def run(args: Any, cli: str) -> None:
    db, n, rounds = args.db, args.n, args.rounds
    fan_out = FAN_OUT if not args.smoke else 500
    conn = setup_db.raw_connection(db)
    User.objects.bulk_create(
        [User(username=f"u{i}", email=f"u{i}@example.com") for i in range(max(n, fan_out))], batch_size=1000
    )
    users = list(User.objects.order_by("pk"))
    ids = [u.pk for u in users]
    raw.analyze(conn, db)
    queue_n = min(n, 5000)
    table = Table()
    print(
        f"{cli}: {db}, n={n}, {rounds} round(s), {processes.machine()}, Django {django.get_version()}",
        flush=True,
    )

    def clear() -> None:
        w.clear(db)

    def seeded(name: str, count: int) -> Any:
        return lambda: (clear(), w.seed_due(conn, db, name, ids, count), raw.analyze(conn, db))

    trigger_rows(table, db, rounds, n, users, conn, clear)

    ours, base = rates(
        rounds,
        fan_out,
        [
            (clear, lambda: w.fan_out(users[:fan_out])),
            (clear, lambda: w.raw_fan_out(conn, db, ids[:fan_out])),
        ],
    )
    table.add(
        f"fan-out: one message to {fan_out:,} users in one call (DEFAULT)",
        "notifications/s",
        ours,
        "raw multi-row INSERT",
        base,
        ours / base,
    )
    (ours,) = rates(rounds, fan_out, [(clear, lambda: w.fan_out(users[:fan_out], w.m.SendOnceMessage))])
    table.add(
        f"fan-out: one message to {fan_out:,} users in one call (SEND_ONCE)",
        "notifications/s",
        ours,
        "raw multi-row INSERT",
        base,
        ours / base,
    )

    digest_users = ids[: max(1, min(DIGEST_USERS, n // DIGEST_ITEMS))]
    items = len(digest_users) * DIGEST_ITEMS
    ours, base = rates(
        rounds,
        items,
        [
            (clear, lambda: w.digests(users[: len(digest_users)], DIGEST_ITEMS)),
            (clear, lambda: w.raw_digests(conn, db, digest_users, DIGEST_ITEMS)),
        ],
    )
    table.add(
        f"digests: {len(digest_users):,} users x {DIGEST_ITEMS} items into hourly digests, "
        "each a trigger, then the digests sent",
        "items/s",
        ours,
        "raw SQL: per item lock or insert the digest, insert the item; claim, read, mark",
        base,
        ours / base,
    )

    ours, base = rates(
        rounds,
        n,
        [
            (seeded("bench-noop", n), lambda: w.process(n)),
            (seeded("bench-noop", n), lambda: w.raw_claim_and_mark(conn, db, n)),
        ],
    )
    table.add(
        "processing a due backlog through a no-op channel, batch 100",
        "notifications/s",
        ours,
        "raw SQL claim-and-mark, batches of 100",
        base,
        ours / base,
    )

    if db == "postgres":
        ours, base = rates(
            rounds,
            n,
            [
                (seeded("bench-noop", n), lambda: w.workers(db, n, WORKERS)),
                (seeded("bench-noop", n), lambda: w.workers(db, n, WORKERS, bare=True)),
            ],
        )
        table.add(
            f"processing that backlog with {WORKERS} worker processes, batch 100",
            "notifications/s",
            ours,
            f"raw SQL claim-and-mark, {WORKERS} processes",
            base,
            ours / base,
        )

    def seed_po() -> None:
        clear()
        w.seed_post_office(users, n)

    ours, po, bare = rates(
        rounds,
        n,
        [
            (seeded("bench-email", n), lambda: w.process_emails(n)),
            (seed_po, lambda: w.post_office_send_queued(n)),
            (clear, lambda: w.bare_emails(users, n)),
        ],
    )
    table.add(
        "processing the backlog of emails through locmem",
        "emails/s",
        ours,
        "django-post-office send_queued",
        po,
        ours / po,
    )
    table.add(
        "processing the backlog of emails through locmem",
        "emails/s",
        ours,
        "bare ceiling: the same EmailMessages through one open locmem connection, no database",
        bare,
        ours / bare,
    )

    ours, po = rates(
        rounds,
        queue_n,
        [
            (clear, lambda: w.queue_emails(users, queue_n)),
            (clear, lambda: w.post_office_mail_send(users, queue_n)),
        ],
    )
    table.add(
        "queueing those emails, one call at a time",
        "emails/s",
        ours,
        "django-post-office mail.send",
        po,
        ours / po,
    )

    full, empty, processed_rows = due_query(conn, db, ids, args.smoke)
    table.add(
        f"due-query, batch 100, {processed_rows:,} processed rows in the table",
        "ms per batch",
        full,
        "the same with no processed rows",
        empty,
        full / empty,
    )

    if db == "postgres":
        triggers = BURST if not args.smoke else 200
        coalesced, per_commit = processes.burst(triggers)
        table.add(
            f"dispatch on commit: {triggers:,} triggers, each committed alone, a Celery worker "
            "(coalesced wake-ups)",
            "tasks queued",
            coalesced["tasks"],
            "one task per commit (no wake-up cache)",
            per_commit["tasks"],
            coalesced["tasks"] / per_commit["tasks"],
        )
        table.add(
            "the same burst, trigger-to-sent p99 (coalesced)",
            "ms",
            coalesced["p99_ms"],
            "one task per commit",
            per_commit["p99_ms"],
            coalesced["p99_ms"] / per_commit["p99_ms"],
        )
    extras = [*queries_per_notification(db, users, conn, ids), *memory(conn, db, ids, args.smoke)]
    if db == "postgres":
        extras.append(wire_round_trips())
    md = "\n".join(
        [
            f"`{cli}` ({db}, n={n}, median of {rounds} round(s); {processes.machine()}, Django "
            f"{django.get_version()}, {datetime.date.today().isoformat()})",
            "",
            table.markdown(),
            "",
            *[f"- {line}" for line in extras],
        ]
    )
    print("\n" + md)
    if not args.smoke:
        write_results(db, md)
        from benchmarks import plot

        plot.draw(conn, db, ids, n, HERE / "results.png")
        print(f"\nwrote {HERE / 'results.md'} and {HERE / 'results.png'}")
    clear()


def write_results(db: str, md: str) -> None:
    """Replace this database's section of results.md, keeping the others'."""
    path = HERE / "results.md"
    sections = {}
    if path.exists():
        for part in path.read_text().split("\n## ")[1:]:
            name, _, body = part.partition("\n")
            sections[name.strip()] = body.strip()
    sections[db] = md
    path.write_text(
        "# Benchmark results\n\nWritten by `benchmarks/run.py`; see docs/benchmarks.md.\n"
        + "".join(f"\n## {name}\n\n{body}\n" for name, body in sorted(sections.items(), reverse=True))
    )


def due_query(conn: Any, db: str, ids: list[int], smoke: bool) -> tuple[float, float, int]:
    """Median ms of the due-query with many processed rows, then with none."""
    processed = 20_000 if smoke else 1_000_000
    repeat = 20 if smoke else 200
    w.clear(db)
    w.seed_due(conn, db, "bench-noop", ids, 1000)
    raw.analyze(conn, db)
    empty = statistics.median(raw.due_query_ms(conn, db, 100, repeat))
    raw.seed_processed(conn, db, processed, ids[0])
    full = statistics.median(raw.due_query_ms(conn, db, 100, repeat))
    w.clear(db)
    return full, empty, processed


def _statements(ctx: CaptureQueriesContext) -> int:
    return sum(not q["sql"].upper().startswith(CONTROL) for q in ctx.captured_queries)


def queries_per_notification(db: str, users: list[Any], conn: Any, ids: list[int]) -> list[str]:
    lines = []
    count = 200
    for label, fn in (
        ("trigger DEFAULT", lambda i: w.m.NoopMessage.trigger(users[i])),
        ("trigger SEND_ONCE", lambda i: w.m.SendOnceMessage.trigger(users[i])),
        ("trigger SEND_ONCE, refused", lambda i: w.m.SendOnceMessage.trigger(users[i])),
        ("trigger LAST_ONLY", lambda i: w.m.LastOnlyMessage.trigger(users[i])),
    ):
        if "refused" not in label:
            w.clear(db)
        with CaptureQueriesContext(connection) as ctx:
            for i in range(count):
                fn(i)
        lines.append(f"{label}: {_statements(ctx) / count:.2f} queries per notification")
    w.clear(db)
    with CaptureQueriesContext(connection) as ctx:
        w.m.NoopMessage.trigger_many(users[:1000])
    lines.append(f"trigger_many, 1,000 users: {_statements(ctx)} queries in all")
    w.clear(db)
    w.seed_due(conn, db, "bench-noop", ids, 1000)
    with CaptureQueriesContext(connection) as ctx:
        w.process(1000)
    lines.append(
        f"processing 1,000 notifications in batches of 100: {_statements(ctx) / 1000:.3f} queries "
        "per notification"
    )
    w.clear(db)
    return lines


def wire_round_trips(count: int = 1000) -> str:
    """Round trips per processed batch of 100, counted on the wire (benchmarks/wire.py)."""
    counts = processes.round_trips(count)
    batches = counts["batches"]
    return (
        f"round trips per batch of 100, processing {count:,} notifications, counted on the wire: "
        f"{counts['ours'] / batches:.1f} (raw claim-and-mark: {counts['raw'] / batches:.1f}; each side "
        f"includes its last, empty claim); per trigger(): {counts['trigger']:.2f} (raw single-row "
        f"INSERT: {counts['insert']:.2f})"
    )


def memory(conn: Any, db: str, ids: list[int], smoke: bool) -> list[str]:
    """Peak RSS growth of a worker process processing a backlog, for two backlog sizes."""
    sizes = (2_000, 20_000) if smoke else (20_000, 200_000)
    lines = []
    for size in sizes:
        w.clear(db)
        w.seed_due(conn, db, "bench-noop", ids, size)
        _, [report] = processes.run_children(db, 1, 100)
        assert report["count"] == size, report
        growth = (report["rss_kib_after"] - report["rss_kib_before"]) / 1024
        lines.append(
            f"peak memory processing a {size:,}-row backlog (batch 100): "
            f"{report['rss_kib_after'] / 1024:.0f} MiB peak RSS of the worker, "
            f"{growth:.1f} MiB above its RSS before processing"
        )
    w.clear(db)
    return lines
