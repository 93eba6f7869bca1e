import importlib
from io import StringIO
from unittest import mock

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import IntegrityError, ProgrammingError, connection, migrations, transaction
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState
from django.test.utils import CaptureQueriesContext

from tests.utils import make_user
from transmissions import db
from transmissions.models import Notification


@pytest.mark.django_db
def test_models_and_migrations_do_not_drift():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:
        pytest.fail(f"Models and migrations drift:\n{out.getvalue()}")


@pytest.mark.django_db
@pytest.mark.parametrize("setting", ["django.db.models.AutoField", "django.db.models.BigAutoField"])
def test_host_default_auto_field_makes_no_migration(settings, setting):
    settings.DEFAULT_AUTO_FIELD = setting
    out = StringIO()
    try:
        call_command("makemigrations", "transmissions", "--check", "--dry-run", stdout=out)
    except SystemExit:
        pytest.fail(out.getvalue())


def test_the_0_2_chain_ends_in_the_same_state_as_the_squashed_migration():
    """makemigrations checks the squashed path; a 0.2 database goes through 0001-0005 instead,
    then the migrations added since: both must end in the models' state."""
    for replace in (False, True):
        loader = MigrationLoader(None, ignore_no_migrations=True, replace_migrations=replace)
        leaves = [
            leaf
            for leaf in loader.graph.leaf_nodes("transmissions")
            if replace or leaf[1] != "0001_squashed_0005_transmissions_1_0"
        ]
        assert len(leaves) == 1, leaves
        state = loader.project_state(leaves[0], at_end=True)
        if not replace:  # the 0.2 chain, not the squash
            assert ("transmissions", "0005_transmissions_1_0") in loader.graph.forwards_plan(leaves[0])
        changes = MigrationAutodetector(state, ProjectState.from_apps(apps)).changes(graph=loader.graph)
        assert "transmissions" not in changes, (leaves[0], changes.get("transmissions"))


# -- 0016: PostgreSQL's index diet ----------------------------------------------------------

DIET = importlib.import_module("transmissions.migrations.0016_postgresql_index_diet")
TABLE = Notification._meta.db_table
INDEXES_SQL = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s"


def indexes():
    with connection.cursor() as cursor:
        cursor.execute(INDEXES_SQL, [TABLE])
        return dict(cursor.fetchall())


def plan(query):
    """EXPLAIN of a queryset's SQL, or of SQL a real call ran; parameters bound as Django does."""
    sql, params = (query, None) if isinstance(query, str) else query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def alter(field_name, field):
    """Run a future migration's AlterField of ``field_name`` on this database, from 0016's state."""
    state = MigrationLoader(connection).project_state(("transmissions", "0016_postgresql_index_diet"))
    operation = migrations.AlterField("notification", field_name, field)
    new_state = state.clone()
    operation.state_forwards("transmissions", new_state)
    with connection.schema_editor() as editor:
        operation.database_forwards("transmissions", editor, state, new_state)
    return state, new_state, operation


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db
def test_postgres_table_has_no_like_index_and_the_sparse_columns_partial_ones():
    found = indexes()
    assert not [name for name, sql in found.items() if "pattern_ops" in sql or name.endswith("_like")], found
    for name, columns, unique, predicate in DIET.PARTIAL_INDEXES:
        kind = "UNIQUE INDEX" if unique else "INDEX"
        assert (
            found[name]
            == f"CREATE {kind} {name} ON public.{TABLE} USING btree ({', '.join(columns)}) WHERE {predicate}"
        )
    assert len(found) == 13, sorted(found)
    # The behaviours' key stays whole: ON CONFLICT (active_key), with no predicate, infers it.
    assert found["transmissions_active_key"].endswith("(active_key)")


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db
def test_postgres_look_ups_of_the_sparse_columns_use_their_partial_indexes(user):
    """20,000 rows with those columns NULL or empty, 100 with values, analyzed: each real
    look-up is an index scan of the partial index, not a scan of the table."""
    other = make_user("grace")
    ct = ContentType.objects.get_for_model(user)
    rows = [Notification(uuid=f"n{i}", trigger_name="default", target_user=user) for i in range(20_000)]
    for i, row in enumerate(rows[:100]):
        row.idempotency_key, row.throttle_slot, row.digest_key = f"k{i}", f"throttle:t:{i}:0", f"d:{i}"
        row.escalation, row.provider_message_id = f"e{i // 2}", f"<m{i}@example.com>"
        row.trigger_user, row.content_type, row.object_id = other, ct, str(i)
    Notification.objects.bulk_create(rows, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")
    n = Notification.objects
    with CaptureQueriesContext(connection) as ctx:
        db.dialect("default", Notification).slot_holders(["throttle:t:7:0", "throttle:t:8:0"])
    [slots] = [q["sql"] for q in ctx.captured_queries]
    first = n.get(uuid="n3")
    look_ups = {
        "transmissions_notification_idempotency_key_key": n.filter(idempotency_key__in=["k3", "k4"]),
        "transmissions_notification_throttle_slot_key": slots,
        "transmissions_notification_escalation_06c22f76": n.filter(
            escalation__in=n.filter(pk=first.pk, escalation__isnull=False).values("escalation")
        ),
        "transmissions_notification_digest_key_7c50f0d6": n.filter(digest_key="d:5"),
        "transmissions_provider_id_idx": n.filter(provider_message_id="<m5@example.com>").order_by("-pk")[:1],
        "transmissions_content_idx": n.filter(content_type=ct, object_id="5"),
    }
    with CaptureQueriesContext(connection) as ctx:
        other.delete()  # SET NULL on trigger_user: UPDATE ... WHERE trigger_user_id IN (...)
    [set_null] = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith(f'UPDATE "{TABLE}"')]
    look_ups["transmissions_notification_trigger_user_id_3c5baf14"] = set_null
    for index, query in look_ups.items():
        explained = plan(query)
        assert index in explained and "Seq Scan" not in explained, (index, explained)
    assert n.filter(trigger_user__isnull=False).count() == 0


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db
def test_postgres_partial_unique_indexes_still_refuse_a_taken_key_and_allow_many_nulls(user):
    Notification.objects.bulk_create(
        [Notification(uuid=f"n{i}", trigger_name="default", target_user=user) for i in range(3)]
    )
    Notification.objects.create(
        trigger_name="default", target_user=user, idempotency_key="k", throttle_slot="s"
    )
    for column in ("idempotency_key", "throttle_slot"):
        with pytest.raises(IntegrityError), transaction.atomic():
            Notification.objects.create(
                trigger_name="default", target_user=user, **{column: "k" if column[0] == "i" else "s"}
            )


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db
def test_postgres_unapplying_0016_restores_the_indexes_of_0015_and_applying_it_again_is_the_same():
    diet = indexes()
    call_command("migrate", "transmissions", "0015_send_slot", verbosity=0)
    try:
        before = indexes()
        assert len(before) == 19, sorted(before)
        likes = {name for name, sql in before.items() if sql.endswith("varchar_pattern_ops)")}
        assert likes == set(DIET.LIKE_INDEXES.values())
        assert not [sql for sql in before.values() if " WHERE " in sql], before
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'", [TABLE]
            )
            unique = {row[0] for row in cursor.fetchall()}
        assert {
            "transmissions_notification_idempotency_key_key",
            "transmissions_notification_throttle_slot_key",
            "transmissions_notification_uuid_key",
            "transmissions_active_key",
        } == unique
    finally:
        call_command("migrate", "transmissions", verbosity=0)
    assert indexes() == diet


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db
def test_postgres_0016_skips_what_an_operator_did_beforehand():
    """docs/reference.md: the partial indexes made beforehand under other names (CONCURRENTLY
    there), the LIKE ones dropped: 0016 then only drops the full indexes and renames, and
    builds what is missing."""
    diet = indexes()
    call_command("migrate", "transmissions", "0015_send_slot", verbosity=0)
    try:
        with connection.cursor() as cursor:
            for name in DIET.LIKE_INDEXES.values():
                cursor.execute(f"DROP INDEX {name}")
            for i, (_name, columns, unique, _predicate) in enumerate(DIET.PARTIAL_INDEXES):
                if columns == ("escalation",):
                    continue  # below: its CONCURRENTLY failed
                # As docs/reference.md writes them (a transaction cannot run CONCURRENTLY).
                kind = "UNIQUE INDEX" if unique else "INDEX"
                where = (
                    "provider_message_id <> ''"
                    if columns[0] == "provider_message_id"
                    else f"{columns[0]} IS NOT NULL"
                )
                cursor.execute(
                    f"CREATE {kind} made_early_{i} ON {TABLE} ({', '.join(columns)}) WHERE {where}"
                )
            # A CONCURRENTLY that failed leaves an invalid index: 0016 builds its own.
            cursor.execute(
                f"CREATE INDEX made_early_invalid ON {TABLE} (escalation) WHERE escalation IS NOT NULL"
            )
            cursor.execute(
                "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'made_early_invalid'::regclass"
            )
    finally:
        call_command("migrate", "transmissions", verbosity=0)
    assert indexes() == {**diet, "made_early_invalid": mock.ANY}


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db
def test_postgres_a_later_alter_field_still_works_on_the_dieted_indexes():
    # A longer column: ALTER COLUMN TYPE keeps the partial indexes as they are, adds no LIKE index.
    for name, length in (("escalation", 64), ("idempotency_key", 300)):
        field = Notification._meta.get_field(name).clone()
        field.max_length = length
        alter(name, field)
    after = indexes()
    assert after["transmissions_notification_escalation_06c22f76"].endswith("WHERE (escalation IS NOT NULL)")
    assert after["transmissions_notification_idempotency_key_key"].endswith(
        "WHERE (idempotency_key IS NOT NULL)"
    )
    assert not [name for name in after if name.endswith("_like")]
    # db_index=False finds the partial index (by its column) and drops it; back, a full one.
    field = Notification._meta.get_field("digest_key").clone()
    field.db_index = False
    state, new_state, operation = alter("digest_key", field)
    assert not [sql for sql in indexes().values() if "(digest_key" in sql]
    with connection.schema_editor() as editor:
        operation.database_backwards("transmissions", editor, new_state, state)
    assert [sql for sql in indexes().values() if "(digest_key" in sql]


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db
def test_postgres_dropping_unique_from_a_dieted_key_needs_its_own_drop_index():
    """The hazard 0016's docstring names: the AlterField Django generates for unique=False
    drops a constraint that is an index now, and fails. The recipe there works."""
    field = Notification._meta.get_field("idempotency_key").clone()
    field._unique = False
    with pytest.raises(ProgrammingError, match="does not exist"), transaction.atomic():
        alter("idempotency_key", field)
    state = MigrationLoader(connection).project_state(("transmissions", "0016_postgresql_index_diet"))
    name = "transmissions_notification_idempotency_key_key"
    operation = migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RunSQL(f'DROP INDEX IF EXISTS "{name}"')],
        state_operations=[migrations.AlterField("notification", "idempotency_key", field)],
    )
    new_state = state.clone()
    operation.state_forwards("transmissions", new_state)
    with connection.schema_editor() as editor:
        operation.database_forwards("transmissions", editor, state, new_state)
    assert name not in indexes()
    assert not new_state.models["transmissions", "notification"].fields["idempotency_key"].unique
