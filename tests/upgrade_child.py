"""A fresh Django on a database of its own, for the upgrade tests: ``python -m tests.upgrade_child ROLE``.

``legacy`` builds transmissions 0.2's table with raw DDL (tests/legacy02.py), records 0.2's
four migrations, writes rows as 0.2 wrote them, runs ``migrate`` and then uses the rows.
``fresh`` migrates an empty database. Both undo what they can and print one JSON line of
what they saw; tests/test_upgrade.py asserts on it. The database is named as in
tests/child.py (``TRANSMISSIONS_CHILD_DB_NAME``).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import io
import json
import os
import pickle
import sys
import time
from typing import Any

from tests import legacy02
from tests.child import configure_django


def _call(*args: Any, **kwargs: Any) -> str:
    from django.core.management import call_command

    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out, **kwargs)
    return out.getvalue()


def _migrate(*args: str, database: str = "default") -> str:
    # skip_checks=False: the database checks run before migrating, as from the shell.
    return _call("migrate", *args, database=database, interactive=False, skip_checks=False, verbosity=1)


def _refusal(*args: str) -> str | None:
    from transmissions.exceptions import DowngradeRefused

    try:
        _migrate(*args)
    except DowngradeRefused as exc:
        return str(exc)
    return None


def _warnings() -> list[str]:
    from django.core import checks

    return [
        m.id for m in checks.run_checks(databases=["default"]) if m.id and m.id.startswith("transmissions.")
    ]


def schema() -> dict[str, Any]:
    """The notification table as the database describes it, in terms that do not depend on names.

    Index names count only where the model names them; a foreign key and the index on its
    column are two facts even where MySQL reports them as one constraint.
    """
    from django.db import connection

    from transmissions.models import Notification

    table = Notification._meta.db_table
    introspection = connection.introspection
    with connection.cursor() as cursor:
        description = introspection.get_table_description(cursor, table)
        constraints = introspection.get_constraints(cursor, table)
        sequence = None
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT data_type FROM pg_sequences WHERE schemaname || '.' || sequencename = "
                "pg_get_serial_sequence(%s, 'id')",
                [table],
            )
            sequence = cursor.fetchone()[0]
        precision = None
        if connection.vendor == "mysql":
            cursor.execute(
                "SELECT COLUMN_NAME, DATETIME_PRECISION FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND DATA_TYPE = 'datetime'",
                [table],
            )
            precision = dict(cursor.fetchall())
    columns = {c.name: [introspection.get_field_type(c.type_code, c), bool(c.null_ok)] for c in description}
    facts = set()
    for name, c in constraints.items():
        named = name if name.startswith("transmissions_") and name.endswith("_idx") else None
        columns_ = tuple(c["columns"] or ())
        if c["foreign_key"]:
            facts.add(("fk", columns_, tuple(c["foreign_key"])))
        if c["primary_key"]:
            facts.add(("pk", columns_))
        elif c["index"] or c["unique"]:
            facts.add(("index", columns_, bool(c["unique"]), tuple(c.get("orders") or ()), named))
        elif c["check"] and connection.vendor != "sqlite":  # SQLite reports CHECKs without columns
            facts.add(("check", columns_))
    return {
        "columns": columns,
        "constraints": sorted(facts, key=repr),
        "id_sequence": sequence,
        "datetime_precision": precision,
    }


def _applied() -> list[str]:
    from django.db.migrations.recorder import MigrationRecorder

    return sorted(
        name
        for app, name in MigrationRecorder.Migration.objects.values_list("app", "name")
        if app == "transmissions"
    )


# --- the 0.2 database ---------------------------------------------------------------------


def build_legacy_database(using: str = "default") -> tuple[dict[str, int], dict[str, int]]:
    """0.2's table and migration records, users and content, and rows as 0.2 wrote them."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connections
    from django.utils import timezone

    from tests.models import Article, User

    connection = connections[using]
    _migrate("tests", database=using)  # what 0.2's table refers to: users and content types
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        for statement in legacy02.DDL[connection.vendor]:
            cursor.execute(statement)
        for name in legacy02.MIGRATIONS:
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)",
                ["transmissions", name, adapt(timezone.make_aware(legacy02.APPLIED))],
            )
    users, articles = User.objects.using(using), Article.objects.using(using)
    ada = users.create(username="ada", email="ada@example.com")
    bob = users.create(username="bob", email="bob@example.com")
    first, second = articles.create(title="first"), articles.create(title="second")
    article_type = ContentType.objects.db_manager(using).get_for_model(Article).pk
    now = timezone.now()
    ago, earlier = now - datetime.timedelta(hours=1), now - datetime.timedelta(hours=2)
    p = legacy02.PY2_PICKLES
    rows = {
        # name: trigger, user, status, scheduled, processed, data, content, created
        "trigger_once": ("trigger-once", ada, 0, ago, None, p[0], None, earlier),
        "send_once_sent": ("send-once", ada, 1, ago, ago, p[1], None, earlier),
        "per_content": ("trigger-once-content", bob, 0, ago, None, "", first, earlier),
        "last_only": ("last-only", ada, 0, now + datetime.timedelta(days=1), None, p[2], None, earlier),
        "default": ("default", bob, 0, ago, None, p[2], None, earlier),
        "failed": ("default", ada, -1, ago, ago, p[1], None, earlier),
        "dup_a": ("trigger-once", bob, 0, ago, None, p[0], None, earlier),
        "dup_b": ("trigger-once", bob, 0, ago, None, p[0], None, earlier),
        "no_created": ("default", ada, 0, ago, None, legacy02.PY2_AWARE_PICKLES[("pytz", 0)], None, None),
        "unregistered": ("gone-message", ada, 0, ago, None, p[0], None, earlier),
        "send_once_cancelled": ("send-once", bob, -2, ago, ago, p[0], None, earlier),
        "not_base64": ("default", bob, 0, ago, None, "not base64!", None, earlier),
    }
    ids = {}
    with connection.cursor() as cursor:
        for index, (name, (trigger, user, status, scheduled, processed, data, content, created)) in enumerate(
            rows.items()
        ):
            cursor.execute(
                f"INSERT INTO {legacy02.TABLE} (uuid, trigger_name, target_user_id, trigger_user_id, "
                "content_type_id, content_id, data_pickled, datetime_created, datetime_scheduled, "
                "datetime_processed, datetime_seen, datetime_consumed, status) "
                "VALUES (%s, %s, %s, NULL, %s, %s, %s, %s, %s, %s, NULL, NULL, %s)",
                [
                    f"legacyuuid{index:012d}",
                    trigger,
                    user.pk,
                    article_type if content else None,
                    content.pk if content else None,
                    data,
                    None if created is None else adapt(created),
                    adapt(scheduled),
                    None if processed is None else adapt(processed),
                    status,
                ],
            )
            cursor.execute(f"SELECT MAX(id) FROM {legacy02.TABLE}")
            ids[name] = cursor.fetchone()[0]
    refs = {
        "ada": ada.pk,
        "bob": bob.pk,
        "first": first.pk,
        "second": second.pk,
        "article_type": article_type,
    }
    return ids, refs


def _admin_pages(ids: dict[str, int]) -> dict[str, Any]:
    """The admin's list of notifications and one change page, as a staff user sees them."""
    from django.test import Client
    from django.test.utils import setup_test_environment

    from tests.models import User

    setup_test_environment()  # lets the test client's host in
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "x"))
    listing = client.get("/admin/transmissions/notification/")
    change = client.get(f"/admin/transmissions/notification/{ids['default']}/change/")
    broken = client.get(f"/admin/transmissions/notification/{ids['not_base64']}/change/")
    return {
        "list_status": listing.status_code,
        "listed": sorted(name for name in ("gone-message", "trigger-once-content") if name in listing.text),
        "change_status": change.status_code,
        "change_shows_data": "caf\u00e9" in change.text or "café" in change.text,
        "broken_status": broken.status_code,
        "broken_says_unreadable": "unreadable" in broken.text,
    }


def _by_name(ids: dict[str, int], field: str) -> dict[str, Any]:
    """``field`` of each 0.2 row still in the table, by the row's name in build_legacy_database()."""
    from transmissions.models import Notification

    values = dict(Notification.objects.values_list("pk", field))
    return {name: values[pk] for name, pk in ids.items() if pk in values}


def legacy() -> dict[str, Any]:
    from tests import messages
    from tests.models import Article, User
    from transmissions.exceptions import DataDecodeError
    from transmissions.models import Notification
    from transmissions.registry import registry
    from transmissions.worker import process_all_notifications

    ids, refs = build_legacy_database()
    seen: dict[str, Any] = {"ids": ids, "refs": refs, "warnings_before": _warnings()}
    seen["migrate"] = _migrate()
    seen["applied"] = _applied()
    seen["warnings_after_migrate"] = _warnings()
    rows = {}
    by_pk = {pk: name for name, pk in ids.items()}
    for n in Notification.objects.order_by("pk"):
        row = {
            "trigger": n.trigger_name,
            "status": n.status,
            "object_id": n.object_id,
            "content_type_id": n.content_type_id,
            "created": n.datetime_created.isoformat(),
            "scheduled": n.datetime_scheduled.isoformat(),
            "key": n.dedup_key,
            "attempts": n.attempts,
        }
        try:
            row["data"] = base64.b64encode(pickle.dumps(n.data)).decode()
        except DataDecodeError as exc:
            row["error"] = str(exc)
        rows[by_pk[n.pk]] = row
    seen["rows"] = rows
    seen["admin"] = _admin_pages(ids)
    seen["data_bytes_empty"] = Notification.objects.get(pk=ids["per_content"]).data_bytes is None

    seen["fill"] = _call("fill_dedup_keys")
    seen["warnings_after_fill"] = _warnings()
    seen["keys"] = _by_name(ids, "dedup_key")

    ada, bob = User.objects.get(pk=refs["ada"]), User.objects.get(pk=refs["bob"])
    first, second = Article.objects.get(pk=refs["first"]), Article.objects.get(pk=refs["second"])
    cls = registry.get

    def created(result: Any) -> bool:
        return result is not None

    seen["triggers"] = {
        "trigger_once_ada": created(cls("trigger-once").trigger(ada)),
        "send_once_ada": created(cls("send-once").trigger(ada)),
        "per_content_bob_first": created(cls("trigger-once-content").trigger(bob, content=first)),
        "per_content_bob_second": created(cls("trigger-once-content").trigger(bob, content=second)),
        "send_once_bob": created(cls("send-once").trigger(bob)),
    }
    newest = cls("last-only").trigger(ada)
    seen["last_only_new"] = newest is not None
    seen["last_only_old_status"] = Notification.objects.get(pk=ids["last_only"]).status

    seen["cancelled"] = Notification.objects.get(pk=ids["no_created"]).cancel()
    messages.sent.clear()
    seen["processed"] = process_all_notifications()
    seen["sent"] = sorted(pk for _, pk in messages.sent)
    seen["statuses"] = _by_name(ids, "status")
    seen["requeued"] = Notification.objects.filter(pk=ids["failed"]).requeue()
    messages.sent.clear()
    seen["processed_again"] = process_all_notifications()
    seen["sent_again"] = sorted(pk for _, pk in messages.sent)
    seen["after_processing"] = {
        "trigger_once_ada": created(cls("trigger-once").trigger(ada)),
        "send_once_ada": created(cls("send-once").trigger(ada)),
    }
    count = Notification.objects.count()
    seen["refusal"] = _refusal("transmissions", "0004")
    seen["refusal_zero"] = _refusal("transmissions", "zero")
    seen["count_before_refusal"], seen["count_after_refusal"] = count, Notification.objects.count()
    seen["applied_after_refusal"] = _applied()
    seen["schema"] = schema()
    return seen


def fresh() -> dict[str, Any]:
    from tests.models import User
    from transmissions.models import Notification
    from transmissions.registry import registry

    seen: dict[str, Any] = {"migrate": _migrate(), "applied": _applied(), "warnings": _warnings()}
    seen["schema"] = schema()
    user = User.objects.create(username="ada")
    registry.get("default").trigger(user)
    seen["refusal"] = _refusal("transmissions", "zero")
    seen["count_after_refusal"] = Notification.objects.count()
    Notification.objects.all().delete()
    seen["unmigrate_empty"] = _migrate("transmissions", "zero")
    seen["applied_after_zero"] = _applied()
    from django.db import connection

    seen["tables_after_zero"] = sorted(
        t for t in connection.introspection.table_names() if t.startswith("transmissions")
    )
    seen["remigrate"] = _migrate()
    seen["applied_after_remigrate"] = _applied()
    return seen


def trigger_all(barrier: str, rounds: int) -> dict[str, Any]:
    """Trigger ``trigger-once`` for every user, ``rounds`` times, once the barrier opens."""
    from pathlib import Path

    from django.db import connection

    from tests.models import User
    from transmissions.registry import registry

    users = list(User.objects.order_by("pk"))
    connection.ensure_connection()
    Path(barrier, f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not Path(barrier, "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("barrier: no go within the timeout")
        time.sleep(0.001)
    message = registry.get("trigger-once")
    created = sum(message.trigger(user) is not None for _ in range(rounds) for user in users)
    return {"created": created}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["legacy", "fresh", "trigger-all"])
    parser.add_argument("--barrier")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    configure_django()
    if args.role == "trigger-all":
        result = trigger_all(args.barrier, args.rounds)
    else:
        result = legacy() if args.role == "legacy" else fresh()
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
