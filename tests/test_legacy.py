"""fill_dedup_keys and check W101 (transmissions/legacy.py) on rows made to look like 0.2's.

Rows saved with ``Notification.objects.create`` have no dedup key, as 0.2's rows after
migration 0005; ``record_legacy_rows`` writes the upgrade's bookkeeping table as 0005 does.
tests/test_upgrade.py runs the real upgrade.
"""

import io

import pytest
from django.apps import apps
from django.core import checks
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import override_settings

from tests.messages import TriggerOncePerContentMessage
from tests.models import Article
from tests.utils import make_user
from transmissions import legacy, upgrade
from transmissions.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)
Status = Notification.Status


@pytest.fixture
def recorded():
    """Call to record the rows written so far as 0.2's; the table is gone afterwards."""
    yield lambda: upgrade.record_legacy_rows(connection)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(upgrade.STATE_TABLE)}")


def row(name, user, status=Status.CREATED, content=None):
    n = Notification(trigger_name=name, target_user=user, status=status)
    if content is not None:
        n.content = content
    n.save()
    return n


def w101(**kwargs):
    return [m for m in legacy.check_legacy_keys(**kwargs) if m.id == "transmissions.W101"]


def test_no_upgrade_no_warning_and_nothing_to_fill(recorded):
    assert w101(databases=["default"]) == []
    out = io.StringIO()
    call_command("fill_dedup_keys", stdout=out)
    assert out.getvalue().strip() == "No rows written by transmissions 0.2 wait for dedup keys."


def test_warning_names_the_rows_and_the_command(recorded):
    last = row("trigger-once", make_user())
    recorded()
    [warning] = w101(databases=["default"])
    assert f"ids up to {last.pk}, done up to 0" in warning.msg
    assert "fill_dedup_keys --database default" in warning.hint
    assert w101(databases=None) == []  # without --database Django runs no database check
    assert w101(app_configs=[apps.get_app_config("auth")], databases=["default"]) == []
    assert w101(app_configs=[apps.get_app_config("transmissions")], databases=["default"])


class NoTransmissionsRouter:
    def allow_migrate(self, db, app_label, **hints):
        return app_label != "transmissions"


def test_a_database_transmissions_does_not_migrate_is_not_checked(recorded):
    row("trigger-once", make_user())
    recorded()
    with override_settings(DATABASE_ROUTERS=[NoTransmissionsRouter()]):
        assert w101(databases=["default"]) == []


def test_only_no_0_2_pending_or_sent_rows_means_no_table(recorded):
    row("trigger-once", make_user(), status=Status.CANCELLED)
    recorded()
    assert legacy.pending_upgrade("default") is None


def test_keys_follow_behaviour_and_status(recorded):
    ada = make_user()
    article = Article.objects.create(title="a")
    rows = {
        "sent_send_once": row("send-once", ada, Status.SUCCESSFULLY_SENT),
        "failed_send_once": row("send-once-content", ada, Status.FAILED, content=article),
        "processing_last_only": row("last-only", ada, Status.PROCESSING),
        "sent_trigger_once": row("trigger-once", ada, Status.SUCCESSFULLY_SENT),
        "processing_trigger_once": row("trigger-once", ada, Status.PROCESSING),
        "per_content_without_content": row("trigger-once-content", ada),
        "per_content": row("send-once-content", ada, content=article),
    }
    recorded()
    out = io.StringIO()
    call_command("fill_dedup_keys", stdout=out)
    keys = dict(Notification.objects.values_list("pk", "dedup_key"))
    ct = rows["per_content"].content_type_id
    assert {name: keys[n.pk] for name, n in rows.items()} == {
        "sent_send_once": f"s:send-once:{ada.pk}",
        "failed_send_once": None,
        "processing_last_only": None,  # released when a worker claimed it
        "sent_trigger_once": None,
        "processing_trigger_once": f"t:trigger-once:{ada.pk}",
        "per_content_without_content": None,
        "per_content": f"s:send-once-content:{ada.pk}:{ct}:{article.pk}",
    }
    assert f"without content, so without a per-content key: ids {rows['per_content_without_content'].pk}" in (
        out.getvalue()
    )


def test_a_key_taken_while_filling_is_reported_not_an_error(recorded):
    ada = make_user()
    old = row("trigger-once", ada)
    other = row("trigger-once", make_user("bob"))  # same batch, no conflict: keyed all the same
    old_key = f"t:trigger-once:{ada.pk}"
    recorded()
    taken = []

    def trigger_in_between(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        selected = sql.split("FROM")[0]
        if not taken and "active_key" in selected and "trigger_name" not in selected:
            # Another trigger takes the key between the fill's look-up and its write.
            taken.append(True)
            Notification.objects.create(trigger_name="trigger-once", target_user=ada, dedup_key=old_key)
        return result

    out = io.StringIO()
    with connection.execute_wrapper(trigger_in_between):
        call_command("fill_dedup_keys", stdout=out)
    assert taken
    assert Notification.objects.get(pk=old.pk).dedup_key is None
    assert f"ids {old.pk}." in out.getvalue()
    assert Notification.objects.get(pk=other.pk).dedup_key == f"t:trigger-once:{other.target_user_id}"


def test_batch_size_must_be_positive():
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("fill_dedup_keys", batch_size=0)


def test_trigger_after_fill_is_refused_by_the_old_row(recorded):
    ada = make_user()
    article = Article.objects.create(title="a")
    row("trigger-once-content", ada, content=article)
    recorded()
    assert TriggerOncePerContentMessage.trigger(ada, content=article) is not None  # not seen yet
    Notification.objects.filter(dedup_key__isnull=False).delete()
    call_command("fill_dedup_keys", stdout=io.StringIO())
    assert TriggerOncePerContentMessage.trigger(ada, content=article) is None
    assert checks.run_checks(databases=["default"], tags=[checks.Tags.database]) == []


def test_a_row_a_worker_finished_meanwhile_gets_no_key(recorded):
    ada = make_user()
    old = row("send-once", ada)
    recorded()
    done = []

    def fail_it_in_between(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not done and "trigger_name" in sql.split("FROM")[0]:
            # A worker ends the row FAILED after the fill read it as pending.
            done.append(True)
            Notification.objects.filter(pk=old.pk).update(status=Status.FAILED)
        return result

    out = io.StringIO()
    with connection.execute_wrapper(fail_it_in_between):
        call_command("fill_dedup_keys", batch_size=old.pk, stdout=out)  # one batch, the row's
    assert done and Notification.objects.get(pk=old.pk).dedup_key is None  # a FAILED SEND_ONCE blocks nothing
    assert "send-once (SEND_ONCE): 0 key(s)" in out.getvalue()
