"""PostgreSQL only: fewer index entries written per processed row.

Every processed row is updated twice (the claim, then the outcome), and as ``status`` is
indexed neither update is HOT: PostgreSQL inserts a new entry into every index of the table
for each new row version. Before this migration the table had 19 indexes. This one

- drops the six ``*_like`` indexes (``varchar_pattern_ops``) Django's PostgreSQL backend adds
  beside a CharField's index: transmissions never filters those columns with LIKE or
  ``startswith`` (the admin's search is ``icontains`` or exact, which they do not serve);
- makes the indexes of columns that are NULL in most rows, and only ever looked up by
  equality with a value, partial (``WHERE col IS NOT NULL``; ``<> ''`` for the provider's
  message id), under the same names: a row version with NULL there adds no entry. Uniqueness is the same (NULLs never conflicted).

InnoDB and SQLite only touch the indexes whose columns change, so this does nothing there.
The models' state does not change: Django does not model ``_like`` indexes, and the partial
indexes keep the fields' ``unique``/``db_index`` (``makemigrations`` sees no drift).

The SQL lives here, not in ``transmissions/db/postgresql.py``: a migration must stay as it
was written (frozen), whatever the app's modules become.

Every step is skipped when it is already done, so an operator may do the work beforehand
without locking the table (``CREATE INDEX CONCURRENTLY``): see docs/reference.md, "Upgrade
notes". A partial index made beforehand under another name is found by its columns and
predicate (an invalid one, from a failed CONCURRENTLY, is not) and renamed.

For later migrations (tested in tests/test_migrations.py):
- AlterField of these columns' length or type works: PostgreSQL keeps the partial indexes.
- AlterField to ``db_index=False`` finds the partial index by its column and drops it.
- Adding ``db_index``/``unique`` to a CharField makes Django create a ``_like`` index again:
  drop it in the same migration.
- Removing ``unique=True`` from ``idempotency_key`` or ``throttle_slot`` does NOT work as
  generated: Django issues ``ALTER TABLE ... DROP CONSTRAINT`` and there is no constraint,
  only a unique index. Such a migration drops the index itself (SeparateDatabaseAndState,
  ``DROP INDEX IF EXISTS`` on PostgreSQL, the AlterField as the state operation and on the
  other databases).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

TABLE = "transmissions_notification"

# The ``_like`` indexes Django created (names from Django's naming, the same in every project).
LIKE_INDEXES = {
    "uuid": "transmissions_notification_uuid_9d616550_like",
    "trigger_name": "transmissions_notification_trigger_name_51054d1e_like",
    "idempotency_key": "transmissions_notification_idempotency_key_8f0fdc73_like",
    "throttle_slot": "transmissions_notification_throttle_slot_138845c7_like",
    "escalation": "transmissions_notification_escalation_06c22f76_like",
    "digest_key": "transmissions_notification_digest_key_7c50f0d6_like",
}

# (name, columns, unique, predicate as pg_get_expr() prints it). The unique ones were UNIQUE
# constraints of the same name; a partial unique index cannot be a constraint, only an index.
PARTIAL_INDEXES = [
    (
        "transmissions_notification_idempotency_key_key",
        ("idempotency_key",),
        True,
        "(idempotency_key IS NOT NULL)",
    ),
    ("transmissions_notification_throttle_slot_key", ("throttle_slot",), True, "(throttle_slot IS NOT NULL)"),
    ("transmissions_notification_escalation_06c22f76", ("escalation",), False, "(escalation IS NOT NULL)"),
    ("transmissions_notification_digest_key_7c50f0d6", ("digest_key",), False, "(digest_key IS NOT NULL)"),
    (
        "transmissions_notification_trigger_user_id_3c5baf14",
        ("trigger_user_id",),
        False,
        "(trigger_user_id IS NOT NULL)",
    ),
    ("transmissions_content_idx", ("content_type_id", "object_id"), False, "(content_type_id IS NOT NULL)"),
    # Empty ('') until a channel names the message: a delivery event's look-up passes the id
    # as a literal (Django binds parameters client-side), which proves it is not ''.
    (
        "transmissions_provider_id_idx",
        ("provider_message_id",),
        False,
        "((provider_message_id)::text <> ''::text)",
    ),
]

# Each valid index of the table: name, columns ("a, b"), unique, predicate (or NULL), whether
# it is a LIKE index (pattern ops), the constraint it backs (or NULL).
INDEXES = f"""
SELECT i.relname::text AS name,
       (SELECT string_agg(a.attname::text, ', ' ORDER BY k.n)
        FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
        JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum) AS cols,
       x.indisunique AS uniq,
       pg_get_expr(x.indpred, x.indrelid) AS pred,
       EXISTS (SELECT 1 FROM unnest(x.indclass) AS o(oid) JOIN pg_opclass c ON c.oid = o.oid
               WHERE c.opcname IN ('varchar_pattern_ops', 'text_pattern_ops')) AS lik,
       (SELECT conname::text FROM pg_constraint WHERE conindid = x.indexrelid AND conrelid = x.indrelid) AS con
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = '{TABLE}'::regclass AND x.indisvalid
"""

SPECS = ", ".join(
    f"('{name}', '{', '.join(columns)}', {str(unique).lower()}, $p${predicate}$p$)"
    for name, columns, unique, predicate in PARTIAL_INDEXES
)

# Drop the LIKE indexes; then for each partial index: drop the full index (or constraint) it
# replaces, and build it, unless it exists already (under any name: renamed then).
FORWARDS = f"""
DO $diet$
DECLARE
    r record;
    s record;
    done text;
BEGIN
    FOR r IN SELECT * FROM ({INDEXES}) AS l WHERE l.lik LOOP
        IF r.con IS NOT NULL THEN
            EXECUTE format('ALTER TABLE {TABLE} DROP CONSTRAINT %I', r.con);
        ELSE
            EXECUTE format('DROP INDEX %I', r.name);
        END IF;
    END LOOP;
    FOR s IN SELECT * FROM (VALUES {SPECS}) AS v(target, cols, uniq, pred) LOOP
        FOR r IN SELECT * FROM ({INDEXES}) AS l
                 WHERE l.cols = s.cols AND NOT l.lik AND l.pred IS NULL LOOP
            IF r.con IS NOT NULL THEN
                EXECUTE format('ALTER TABLE {TABLE} DROP CONSTRAINT %I', r.con);
            ELSE
                EXECUTE format('DROP INDEX %I', r.name);
            END IF;
        END LOOP;
        SELECT l.name INTO done FROM ({INDEXES}) AS l
        WHERE l.cols = s.cols AND NOT l.lik AND l.uniq = s.uniq AND l.pred = s.pred
        ORDER BY l.name = s.target DESC LIMIT 1;
        IF done IS NULL THEN
            EXECUTE format('CREATE %s %I ON {TABLE} (%s) WHERE %s',
                           CASE WHEN s.uniq THEN 'UNIQUE INDEX' ELSE 'INDEX' END, s.target, s.cols, s.pred);
        ELSIF done <> s.target THEN
            EXECUTE format('ALTER INDEX %I RENAME TO %I', done, s.target);
        END IF;
    END LOOP;
END
$diet$
"""

# The full indexes and constraints back (unless there already), then the LIKE indexes.
BACKWARDS = f"""
DO $diet$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT * FROM (VALUES {SPECS}) AS v(target, cols, uniq, pred) LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM ({INDEXES}) AS l WHERE l.name = s.target AND l.pred IS NULL);
        EXECUTE format('DROP INDEX IF EXISTS %I', s.target);
        IF s.uniq THEN
            EXECUTE format('ALTER TABLE {TABLE} ADD CONSTRAINT %I UNIQUE (%s)', s.target, s.cols);
        ELSE
            EXECUTE format('CREATE INDEX %I ON {TABLE} (%s)', s.target, s.cols);
        END IF;
    END LOOP;
END
$diet$;
""" + "".join(
    f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} ({column} varchar_pattern_ops);\n"
    for column, name in LIKE_INDEXES.items()
)


def forwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARDS, params=None)


def backwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARDS, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("transmissions", "0015_send_slot"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
