"""The claim's due-query is an ordered index scan that stops at the batch limit.

With many processed rows in the table, a claim must not read them, nor sort the
waiting ones: its cost depends on the batch size, not on the table's history.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.utils import earlier, make_user
from transmissions.models import Notification
from transmissions.worker import process_batch

pytestmark = pytest.mark.django_db(transaction=True)
TABLE = Notification._meta.db_table


def claim_sql(size=10):
    with CaptureQueriesContext(connection) as ctx:
        assert len(Notification.objects.claim(size)) == size
    [sql] = [q["sql"] for q in ctx.captured_queries if q["sql"].upper().startswith(("WITH", "UPDATE"))]
    return sql


def seed(user, processed, due):
    # Processed history and a due backlog, written in bulk as a busy site would have them.
    rows = [
        Notification(
            uuid=f"p{i}",
            trigger_name="default",
            target_user=user,
            status=Notification.Status.SUCCESSFULLY_SENT,
            datetime_scheduled=earlier(days=2),
            datetime_processed=earlier(days=1),
        )
        for i in range(processed)
    ]
    rows += [
        Notification(
            uuid=f"d{i}", trigger_name="default", target_user=user, datetime_scheduled=earlier(seconds=i)
        )
        for i in range(due)
    ]
    Notification.objects.bulk_create(rows, batch_size=500)
    if connection.vendor == "postgresql":  # autovacuum would; SQLite has no statistics by default
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {TABLE}")


@pytest.mark.only_on("postgresql")
def test_postgres_due_query_uses_the_due_index_with_a_limit_and_no_sort():
    seed(make_user(), processed=20_000, due=300)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + claim_sql())
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "transmissions_due_idx" in plan, plan
    assert "Limit" in plan, plan
    assert "Sort" not in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.only_on("sqlite")
def test_sqlite_claim_looks_up_the_chosen_ids_and_scans_the_due_index_in_order():
    seed(make_user(), processed=2_000, due=300)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + claim_sql())
        plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
    # The outer UPDATE finds rows by id, not by scanning every waiting row ...
    assert "INTEGER PRIMARY KEY" in plan, plan
    assert plan.count("transmissions_due_idx") == 1, plan
    # ... and the subquery reads the due index in order: no temporary B-tree to sort.
    assert "USING COVERING INDEX transmissions_due_idx (status=? AND datetime_scheduled<?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


@pytest.mark.only_on("sqlite")
def test_sqlite_outcome_update_looks_up_ids_not_every_processing_row():
    user = make_user()
    seed(user, processed=0, due=300)
    Notification.objects.claim(200)  # another worker's batch, still held
    batch = Notification.objects.claim(10)
    with CaptureQueriesContext(connection) as ctx:
        process_batch(batch)
    [sql] = [q["sql"] for q in ctx.captured_queries if "datetime_processed" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
    assert "INTEGER PRIMARY KEY" in plan and "transmissions_due_idx" not in plan, plan
    assert Notification.objects.filter(status=Notification.Status.SUCCESSFULLY_SENT).count() == 10
