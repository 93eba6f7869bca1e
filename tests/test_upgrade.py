"""Upgrading a transmissions 0.2 database with a plain ``migrate`` (transmissions/upgrade.py, 0005).

Each pass runs these on its own database vendor, in databases of their own: a file on
the SQLite pass, a database created on the server on the PostgreSQL and MariaDB passes.
tests/upgrade_child.py does the work in a fresh process on that database (0.2's table
built with raw DDL, migrate, use the rows; and a new database migrated from nothing),
these tests assert on what it saw.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import io
import json
import pathlib
import pickle
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core import checks
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

import transmissions
from tests import legacy02, upgrade_child
from tests.child import ROOT, child_env, release, results
from transmissions import upgrade
from transmissions.exceptions import DowngradeRefused, UpgradeRefused
from transmissions.legacy import fill_dedup_keys, pending_upgrade
from transmissions.models import Notification

CREATED, SENT, FAILED, CANCELLED, BROKEN = 0, 1, -1, -2, -3


@contextlib.contextmanager
def _server_database(vendor: str, name: str) -> Iterator[str]:
    """Create ``name`` on the pass's server (dropped afterwards), through the driver itself."""
    params = settings.DATABASES["default"]
    if vendor == "postgresql":
        import psycopg

        def run(sql: str) -> None:
            with psycopg.connect(
                host=params["HOST"],
                port=params["PORT"],
                user=params["USER"],
                dbname="postgres",
                autocommit=True,
            ) as conn:
                conn.execute(sql)

        drop, create = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    else:
        import MySQLdb

        def run(sql: str) -> None:
            conn = MySQLdb.connect(host=params["HOST"], port=int(params["PORT"]), user=params["USER"])
            try:
                conn.cursor().execute(sql)
            finally:
                conn.close()

        drop, create = f"DROP DATABASE IF EXISTS `{name}`", f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
    run(drop)
    run(create)
    try:
        yield name
    finally:
        run(drop)


def _run(role: str, db_name: str) -> dict[str, Any]:
    env = child_env(db_name, PYTHONWARNINGS="error::DeprecationWarning")
    done = subprocess.run(
        [sys.executable, "-m", "tests.upgrade_child", role],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    vendor = connection.vendor
    if vendor == "sqlite":
        folder = tmp_path_factory.mktemp("upgrade")
        return {role: _run(role, str(folder / f"{role}.sqlite3")) for role in ("legacy", "fresh")}
    base = settings.DATABASES["default"]["TEST"]["NAME"]
    found = {}
    for role in ("legacy", "fresh"):
        with _server_database(vendor, f"{base}_{role}") as name:
            found[role] = _run(role, name)
    return found


@pytest.fixture(scope="module")
def legacy(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return runs["legacy"]


def _data(seen: dict[str, Any], name: str) -> Any:
    return pickle.loads(base64.b64decode(seen["rows"][name]["data"]))  # our own child's output


# --- migrate continues 0.2's history ----------------------------------------------------------


# The migrations added after the upgrade (0006 onward).
LATER_MIGRATIONS = {
    path.stem
    for path in (pathlib.Path(transmissions.__file__).parent / "migrations").glob("0*.py")
    if int(path.stem[:4]) > 5
}


def test_migrate_applies_only_the_upgrade_on_a_0_2_database(legacy):
    out = legacy["migrate"]
    assert "Applying transmissions.0005_transmissions_1_0... OK" in out
    applying = [line for line in out.splitlines() if "Applying transmissions." in line]
    # 0.2's four stay as they were; 0005 converts, then whatever came since applies as usual.
    later = sorted(LATER_MIGRATIONS)
    assert applying == [
        f"  Applying transmissions.{name}... OK" for name in ["0005_transmissions_1_0", *later]
    ]
    assert legacy["applied"] == sorted(
        [*legacy02.MIGRATIONS, "0005_transmissions_1_0", "0001_squashed_0005_transmissions_1_0", *later]
    )


def test_the_database_checks_run_on_the_0_2_schema_without_error(legacy):
    assert legacy["warnings_before"] == []


def test_upgraded_table_is_the_same_as_a_new_one(runs):
    upgraded, new = runs["legacy"]["schema"], runs["fresh"]["schema"]
    assert upgraded["columns"] == new["columns"]
    assert upgraded["constraints"] == new["constraints"]
    assert upgraded["id_sequence"] == new["id_sequence"]  # bigint on PostgreSQL, not 0.2's integer
    assert upgraded["datetime_precision"] == new["datetime_precision"]  # microseconds on MySQL
    named = {fact[-1] for fact in upgraded["constraints"] if fact[0] == "index" and fact[-1]}
    # Today's named indexes, those added since the upgrade included.
    assert named == {index.name for index in Notification._meta.indexes}
    assert {"transmissions_due_idx", "transmissions_user_idx", "transmissions_content_idx"} <= named


# --- rows keep their meaning ------------------------------------------------------------------


def test_rows_are_listed_with_their_values(legacy):
    rows, refs = legacy["rows"], legacy["refs"]
    assert set(rows) == set(legacy["ids"])
    content = rows["per_content"]
    assert (content["object_id"], content["content_type_id"]) == (str(refs["first"]), refs["article_type"])
    assert all(row["object_id"] is None for name, row in rows.items() if name != "per_content")
    assert rows["failed"]["status"] == FAILED and rows["send_once_sent"]["status"] == SENT
    assert all(row["attempts"] == 0 and row["key"] is None for row in rows.values())


def test_the_admin_lists_and_shows_0_2_rows(legacy):
    assert legacy["admin"] == {
        "list_status": 200,
        "listed": ["gone-message", "trigger-once-content"],
        "change_status": 200,
        "change_shows_data": True,  # a Python 2 pickle, read
        "broken_status": 200,
        "broken_says_unreadable": True,  # data that was not base64
    }


def test_python_2_pickles_are_read(legacy):
    assert _data(legacy, "trigger_once") == legacy02.PY2_VALUES[0]  # protocol 0, with a date
    assert _data(legacy, "send_once_sent") == legacy02.PY2_VALUES[1]
    assert _data(legacy, "default") == legacy02.PY2_VALUES[2]
    assert _data(legacy, "no_created") == legacy02.AWARE_VALUE


def test_empty_data_becomes_null_and_reads_as_empty(legacy):
    assert legacy["data_bytes_empty"] is True
    assert _data(legacy, "per_content") == {}


def test_data_that_is_not_base64_is_kept_and_fails_visibly(legacy):
    assert "stored data cannot be read" in legacy["rows"]["not_base64"]["error"]
    assert legacy["statuses"]["not_base64"] == BROKEN


def test_missing_datetime_created_comes_from_datetime_scheduled(legacy):
    rows = legacy["rows"]
    assert rows["no_created"]["created"] == rows["no_created"]["scheduled"]
    other = rows["trigger_once"]
    assert datetime.datetime.fromisoformat(other["created"]) < datetime.datetime.fromisoformat(
        other["scheduled"]
    )


# --- dedup keys: the command and its check ------------------------------------------------------


def test_check_warns_until_the_keys_are_filled(legacy):
    assert legacy["warnings_after_migrate"] == ["transmissions.W101"]
    assert legacy["warnings_after_fill"] == []


def test_fill_gives_each_row_the_key_of_its_behaviour(legacy):
    ada, bob, first = legacy["refs"]["ada"], legacy["refs"]["bob"], legacy["refs"]["first"]
    article = legacy["refs"]["article_type"]
    assert legacy["keys"] == {
        "trigger_once": f"t:trigger-once:{ada}",
        "send_once_sent": f"s:send-once:{ada}",
        "per_content": f"t:trigger-once-content:{bob}:{article}:{first}",
        "last_only": f"l:last-only:{ada}",
        "dup_a": f"t:trigger-once:{bob}",
        "dup_b": None,  # 0.2 let a duplicate through: reported, left as it is
        "default": None,
        "failed": None,
        "no_created": None,
        "unregistered": None,
        "send_once_cancelled": None,  # a cancelled SEND_ONCE row holds no key today
        "not_base64": None,
    }


def test_fill_reports_duplicates_and_unregistered_names(legacy):
    out = legacy["fill"]
    assert "dedup key(s) set" in out and "trigger-once (TRIGGER_ONCE): 2 key(s)" in out
    assert f"ids {legacy['ids']['dup_b']}." in out
    assert "gone-message: 1 row(s) of a trigger name no message is registered under" in out


# --- the behaviours see 0.2's rows ------------------------------------------------------------


def test_0_2_rows_refuse_new_triggers(legacy):
    assert legacy["triggers"] == {
        "trigger_once_ada": False,  # a pending 0.2 TRIGGER_ONCE row
        "send_once_ada": False,  # a sent 0.2 SEND_ONCE row
        "per_content_bob_first": False,  # a pending 0.2 row for that content
        "per_content_bob_second": True,
        "send_once_bob": True,  # bob's 0.2 row was cancelled: nothing blocks
    }


def test_last_only_replaces_the_waiting_0_2_row(legacy):
    assert legacy["last_only_new"] is True
    assert legacy["last_only_old_status"] == CANCELLED


def test_0_2_rows_are_processed_cancelled_and_retried(legacy):
    ids, statuses = legacy["ids"], legacy["statuses"]
    assert legacy["cancelled"] is True and statuses["no_created"] == CANCELLED
    for name in ("trigger_once", "per_content", "default", "dup_a", "dup_b"):
        assert statuses[name] == SENT and ids[name] in legacy["sent"], name
    assert statuses["unregistered"] == BROKEN
    assert statuses["failed"] == FAILED  # until requeued
    assert legacy["requeued"] == [1, 0]
    assert legacy["sent_again"] == [ids["failed"]]


def test_after_sending_trigger_once_accepts_and_send_once_still_refuses(legacy):
    assert legacy["after_processing"] == {"trigger_once_ada": True, "send_once_ada": False}


# --- undoing never drops rows silently --------------------------------------------------------


def test_unapplying_the_upgrade_refuses_while_rows_exist(legacy):
    for refusal in (legacy["refusal"], legacy["refusal_zero"]):
        assert refusal and "Refusing to unapply" in refusal
        assert f"holds {legacy['count_before_refusal']} notification(s)" in refusal
    assert legacy["count_after_refusal"] == legacy["count_before_refusal"]
    assert legacy["applied_after_refusal"] == legacy["applied"]


# --- a new database -----------------------------------------------------------------------------


def test_new_database_migrates_through_the_squashed_migration(runs):
    fresh = runs["fresh"]
    assert "Applying transmissions.0001_squashed_0005_transmissions_1_0... OK" in fresh["migrate"]
    assert "0005_transmissions_1_0... OK" not in fresh["migrate"].replace(
        "squashed_0005_transmissions_1_0", ""
    )
    assert fresh["applied"] == runs["legacy"]["applied"]
    assert fresh["warnings"] == []


def test_new_database_refuses_to_unmigrate_over_rows_then_unmigrates_empty(runs):
    fresh = runs["fresh"]
    assert "holds 1 notification(s)" in fresh["refusal"] and fresh["count_after_refusal"] == 1
    assert "Unapplying transmissions.0001_squashed_0005_transmissions_1_0... OK" in fresh["unmigrate_empty"]
    assert fresh["applied_after_zero"] == [] and fresh["tables_after_zero"] == []
    assert fresh["applied_after_remigrate"] == fresh["applied"]


# --- the same steps in this process, on a database alias of their own ---------------------------

ALIAS = "upgrade"


@pytest.fixture
def legacy_alias(django_db_blocker, tmp_path):
    """A 0.2 database (tests/upgrade_child.build_legacy_database) under the alias ``upgrade``."""
    vendor = connection.vendor
    with contextlib.ExitStack() as stack:
        if vendor == "sqlite":
            name = str(tmp_path / "upgrade.sqlite3")
        else:
            name = stack.enter_context(
                _server_database(vendor, settings.DATABASES["default"]["TEST"]["NAME"] + "_inproc")
            )
        databases = {
            "default": dict(settings.DATABASES["default"]),
            ALIAS: {**settings.DATABASES["default"], "NAME": name},
        }
        connections.settings[ALIAS] = connections.configure_settings(databases)[ALIAS]
        try:
            with django_db_blocker.unblock():
                ids, refs = upgrade_child.build_legacy_database(ALIAS)
                yield ids, refs
        finally:
            connections[ALIAS].close()
            del connections[ALIAS]
            del connections.settings[ALIAS]


def _columns(using: str) -> set[str]:
    with connections[using].cursor() as cursor:
        return {
            c.name for c in connections[using].introspection.get_table_description(cursor, legacy02.TABLE)
        }


def test_in_process_upgrade_fill_refusal_and_undo_over_an_empty_table(legacy_alias):
    ids, refs = legacy_alias
    upgrade_child._migrate(database=ALIAS)
    assert [m.id for m in checks.run_checks(databases=[ALIAS]) if m.id == "transmissions.W101"] == [
        "transmissions.W101"
    ]
    # One id per transaction: the duplicate is found by the database, a batch after its twin.
    out = io.StringIO()
    call_command("fill_dedup_keys", database=ALIAS, batch_size=1, stdout=out)
    assert f"ids {ids['dup_b']}." in out.getvalue()
    rows = Notification.objects.using(ALIAS)
    assert rows.get(pk=ids["dup_a"]).dedup_key == f"t:trigger-once:{refs['bob']}"
    assert rows.get(pk=ids["dup_b"]).dedup_key is None
    assert rows.get(pk=ids["send_once_sent"]).dedup_key == f"s:send-once:{refs['ada']}"
    assert not [m for m in checks.run_checks(databases=[ALIAS]) if m.id == "transmissions.W101"]
    again = io.StringIO()
    call_command("fill_dedup_keys", database=ALIAS, stdout=again)
    assert again.getvalue().strip() == "No rows written by transmissions 0.2 wait for dedup keys."

    with pytest.raises(DowngradeRefused, match=f"holds {len(ids)} notification"):
        upgrade_child._migrate("transmissions", "0004", database=ALIAS)
    assert rows.count() == len(ids)

    rows.all().delete()
    upgrade_child._migrate("transmissions", "0004", database=ALIAS)
    assert {"content_id", "data_pickled"} <= _columns(ALIAS) and "dedup_key" not in _columns(ALIAS)
    upgrade_child._migrate(database=ALIAS)  # an empty 0.2 table: no keys to fill afterwards
    assert "content_id" not in _columns(ALIAS)
    assert pending_upgrade(ALIAS) is None


def test_rows_0_2_writes_while_the_copy_runs_are_converted_too(legacy_alias):
    ids, refs = legacy_alias
    late = {}

    def insert_after_the_copy_starts(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "MAX(" in sql and "MIN(" in sql and not late:
            # As a 0.2 process still running would: a row the copy's range does not cover.
            with connections[ALIAS].cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {legacy02.TABLE} (uuid, trigger_name, target_user_id, content_type_id, "
                    "content_id, data_pickled, datetime_created, datetime_scheduled, status) "
                    "VALUES ('latecomer', 'default', %s, %s, %s, %s, NULL, %s, 0)",
                    [refs["ada"], refs["article_type"], refs["second"], legacy02.PY2_PICKLES[1],
                     connections[ALIAS].ops.adapt_datetimefield_value(timezone.now())],
                )  # fmt: skip
                late["pk"] = max(ids.values()) + 1
        return result

    with connections[ALIAS].execute_wrapper(insert_after_the_copy_starts):
        upgrade_child._migrate(database=ALIAS)
    row = Notification.objects.using(ALIAS).get(uuid="latecomer")
    assert row.pk == late["pk"]
    assert (row.object_id, row.data) == (str(refs["second"]), legacy02.PY2_VALUES[1])
    assert row.datetime_created == row.datetime_scheduled
    assert pending_upgrade(ALIAS) == (late["pk"], 0)  # the keys to fill include it


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", None), (None, None), ("aGk=", b"hi"), ("aG\nk=", b"hi"), ("not base64!", b"not base64!")],
)
def test_decode_pickled(text, expected):
    assert upgrade.decode_pickled(text) == expected


def test_a_database_of_a_later_0_2_line_release_is_refused_untouched(legacy_alias):
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)",
            ["transmissions", "0005_notification_exception",
             connections[ALIAS].ops.adapt_datetimefield_value(timezone.now())],
        )  # fmt: skip
    with pytest.raises(UpgradeRefused, match="0005_notification_exception"):
        upgrade_child._migrate(database=ALIAS)
    assert {"content_id", "data_pickled"} <= _columns(ALIAS) and "object_id" not in _columns(ALIAS)


@pytest.mark.postgres  # other processes on one server database: the PostgreSQL and MariaDB passes
def test_fill_while_other_processes_trigger(legacy_alias, tmp_path):
    """Three processes trigger TRIGGER_ONCE for every user while fill_dedup_keys runs."""
    conn = connections[ALIAS]
    now = conn.ops.adapt_datetimefield_value(timezone.now())
    with conn.cursor() as cursor:
        for i in range(300):
            cursor.execute(
                "INSERT INTO tests_user (password, is_superuser, username, first_name, last_name, email, "
                "is_staff, is_active, date_joined, phone_number) "
                "VALUES ('', %s, %s, '', '', '', %s, %s, %s, '')",
                [False, f"racer{i}", False, True, now],
            )
            cursor.execute("SELECT MAX(id) FROM tests_user")
            user = cursor.fetchone()[0]
            cursor.execute(
                f"INSERT INTO {legacy02.TABLE} (uuid, trigger_name, target_user_id, data_pickled, "
                "datetime_created, datetime_scheduled, status) "
                "VALUES (%s, 'trigger-once', %s, '', %s, %s, 0)",
                [f"racer{i:017d}", user, now, now],
            )
    upgrade_child._migrate(database=ALIAS)
    legacy_max, _ = pending_upgrade(ALIAS)
    env = child_env(conn.settings_dict["NAME"])
    command = [
        sys.executable,
        "-m",
        "tests.upgrade_child",
        "trigger-all",
        "--barrier",
        str(tmp_path),
        "--rounds",
        "2",
    ]
    procs = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    release(tmp_path, procs)
    report = fill_dedup_keys(using=ALIAS, batch_size=10)
    created = sum(r["created"] for r in results(procs))

    pending = Notification.objects.using(ALIAS).filter(trigger_name="trigger-once", status=0)
    keyed = list(pending.exclude(dedup_key=None).values_list("target_user_id", flat=True))
    assert len(keyed) == len(set(keyed)) == len(set(pending.values_list("target_user_id", flat=True)))
    unkeyed = set(pending.filter(dedup_key=None).values_list("pk", flat=True))
    assert unkeyed == set(report.duplicates["trigger-once"])  # each one reported, none lost
    assert all(pk <= legacy_max for pk in unkeyed)  # every row the racers created holds its key
    # 0.2's pending TRIGGER_ONCE rows (300 racers', 3 of the scenario) and the new ones, none lost.
    assert pending.count() == 303 + created
