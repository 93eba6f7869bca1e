"""The baselines: the same rows written and claimed with the bare driver, no Django."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

TABLE = "transmissions_notification"
COLUMNS = (
    "uuid, trigger_name, target_user_id, datetime_created, datetime_scheduled, status, attempts, dedup_key"
)


def _ph(db: str) -> str:
    return "?" if db == "sqlite" else "%s"


def _now(db: str) -> Any:
    now = datetime.datetime.now(datetime.UTC)
    # Django stores SQLite datetimes as naive UTC text.
    return now.replace(tzinfo=None).isoformat(" ") if db == "sqlite" else now


def single_inserts(
    conn: Any, db: str, trigger_name: str, user_ids: list[int], keyed: bool, first: int = 0
) -> None:
    """One INSERT per row, each its own transaction (autocommit); ``first`` numbers the keys."""
    p = _ph(db)
    sql = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES ({', '.join([p] * 8)})"
    for i, user_id in enumerate(user_ids, first):
        now = _now(db)
        key = f"s:{trigger_name}:{user_id}:{i}" if keyed else None
        conn.execute(sql, (uuid.uuid4().hex[:22], trigger_name, user_id, now, now, 0, 0, key))


def multi_row_insert(
    conn: Any,
    db: str,
    trigger_name: str,
    user_ids: list[int],
    scheduled: Any = None,
    status: int = 0,
    chunk: int = 500,
) -> None:
    """Multi-row INSERTs of ``chunk`` rows, all in one transaction."""
    p = _ph(db)
    row = f"({', '.join([p] * 8)})"
    now = _now(db)
    scheduled = scheduled or now
    conn.execute("BEGIN")
    for start in range(0, len(user_ids), chunk):
        part = user_ids[start : start + chunk]
        sql = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES {', '.join([row] * len(part))}"
        params: list[Any] = []
        for user_id in part:
            params += [uuid.uuid4().hex[:22], trigger_name, user_id, now, scheduled, status, 0, None]
        conn.execute(sql, params)
    conn.execute("COMMIT")


def claim_and_mark(conn: Any, db: str, batch_size: int) -> int:
    """Claim due rows in batches and mark them sent: two statements per batch; return the count."""
    p = _ph(db)
    lock = " FOR UPDATE SKIP LOCKED" if db == "postgres" else ""
    claim = (
        f"UPDATE {TABLE} SET status = 2, attempts = attempts + 1 WHERE id IN ("
        f"SELECT id FROM {TABLE} WHERE status = 0 AND datetime_scheduled <= {p} "
        f"AND datetime_processed IS NULL ORDER BY datetime_scheduled LIMIT {p}{lock}) RETURNING id"
    )
    total = 0
    while True:
        ids = [r[0] for r in conn.execute(claim, (_now(db), batch_size)).fetchall()]
        if not ids:
            return total
        marks = ", ".join([p] * len(ids))
        conn.execute(
            f"UPDATE {TABLE} SET status = 1, datetime_processed = {p} WHERE id IN ({marks})",
            [_now(db), *ids],
        )
        total += len(ids)


def digests(conn: Any, db: str, user_ids: list[int], per_user: int) -> None:
    """The durable work of ``workloads.digests``: per item, in its own transaction, lock the
    user's open digest (or insert it) and insert the item; then claim the due digests in
    batches of 100, read their items and mark them sent."""
    import pickle

    p = _ph(db)
    lock = " FOR NO KEY UPDATE" if db == "postgres" else ""
    at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
    due = at + datetime.timedelta(hours=1)
    if db == "sqlite":
        at, due = (d.replace(tzinfo=None).isoformat(" ") for d in (at, due))
    find = f"SELECT id FROM {TABLE} WHERE active_key = {p} AND status = 0{lock}"
    head = (
        f"INSERT INTO {TABLE} ({COLUMNS}, digest_key) VALUES ({', '.join([p] * 9)}) "
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    item = (
        "INSERT INTO transmissions_digestitem (digest_id, target_user_id, data, datetime_created) "
        f"VALUES ({p}, {p}, {p}, {p})"
    )
    for i in range(per_user):
        data = pickle.dumps({"comment": i})
        for user_id in user_ids:
            key = f"bench-digest:{user_id}"
            conn.execute("BEGIN")
            row = conn.execute(find, (f"l:digest+{key}",)).fetchone()
            if row is None:
                values = (
                    uuid.uuid4().hex[:22],
                    "bench-digest",
                    user_id,
                    at,
                    due,
                    0,
                    0,
                    f"l:digest+{key}",
                    key,
                )
                row = conn.execute(head, values).fetchone()
            conn.execute(item, (row[0], user_id, data, at))
            conn.execute("COMMIT")
    skip = " FOR UPDATE SKIP LOCKED" if db == "postgres" else ""
    claim = (
        f"UPDATE {TABLE} SET status = 2, attempts = attempts + 1, dedup_key = NULL WHERE id IN ("
        f"SELECT id FROM {TABLE} WHERE status = 0 AND datetime_scheduled <= {p} "
        f"AND datetime_processed IS NULL ORDER BY datetime_scheduled LIMIT 100{skip}) RETURNING id"
    )
    sent = 0
    while ids := [r[0] for r in conn.execute(claim, (_now(db),)).fetchall()]:
        marks = ", ".join([p] * len(ids))
        items = conn.execute(
            f"SELECT digest_id, data FROM transmissions_digestitem WHERE digest_id IN ({marks}) ORDER BY id",
            ids,
        ).fetchall()
        assert all(pickle.loads(data) for _, data in items)
        conn.execute(
            f"UPDATE {TABLE} SET status = 1, datetime_processed = {p} WHERE id IN ({marks})", [_now(db), *ids]
        )
        sent += len(ids)
    assert sent == len(user_ids), (sent, len(user_ids))


def due_query_ms(conn: Any, db: str, batch_size: int, repeat: int) -> list[float]:
    """Time the due-query (the SELECT a claim runs) ``repeat`` times; return milliseconds."""
    import time

    p = _ph(db)
    sql = (
        f"SELECT id FROM {TABLE} WHERE status = 0 AND datetime_scheduled <= {p} "
        f"AND datetime_processed IS NULL ORDER BY datetime_scheduled LIMIT {p}"
    )
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = conn.execute(sql, (_now(db), batch_size)).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
        assert len(rows) == batch_size, len(rows)
    return times


def analyze(conn: Any, db: str) -> None:
    """Table statistics, as a production server's autovacuum keeps them (this machine's
    PostgreSQL runs with autovacuum off): without them the users' query of a batch is a
    sequential scan and the claim sorts the whole backlog. Both sides get the same."""
    if db == "postgres":
        conn.execute(f"ANALYZE {TABLE}")
        conn.execute("ANALYZE auth_user")
    else:
        conn.execute("ANALYZE")


def seed_processed(conn: Any, db: str, count: int, user_id: int) -> None:
    """Insert ``count`` processed rows (SUCCESSFULLY_SENT, a day old) in one statement."""
    if db == "postgres":
        conn.execute(
            f"INSERT INTO {TABLE} ({COLUMNS}, datetime_processed) "
            "SELECT 'p' || g, 'bench-noop', %s, now() - interval '1 day', "
            "now() - interval '1 day' + g * interval '1 ms', 1, 1, NULL, now() "
            "FROM generate_series(1, %s) AS g",
            (user_id, count),
        )
    else:
        conn.execute(
            f"WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < ?) "
            f"INSERT INTO {TABLE} ({COLUMNS}, datetime_processed) "
            "SELECT 'p' || x, 'bench-noop', ?, datetime('now', '-1 day'), "
            "strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 day'), 1, 1, NULL, datetime('now') FROM g",
            (count, user_id),
        )
    analyze(conn, db)
