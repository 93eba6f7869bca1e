"""TRANSMISSIONS_WAKE_UP = "django_tasks": one django.tasks task per committed transaction.

The tasks are real: django-tasks-db's DatabaseBackend stores them in the test database
and its ``db_worker`` command runs them (in this process on SQLite; two worker processes
on PostgreSQL). Django's own ``django.tasks`` on Django 6.x, the django-tasks backport on
5.2 (``transmissions.taskapi`` picks).
"""

import datetime
import io
import os
import signal
import subprocess
import sys
import time

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import modify_settings, override_settings
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult

from tests import messages
from tests.child import ROOT, child_env
from tests.messages import DefaultMessage, LastOnlyMessage, TransientMessage
from tests.notifications import SEND_LOG_ENV, DurableMessage, read_send_log
from tests.utils import later, make_user
from transmissions import taskapi, tasks
from transmissions.checks import check_settings
from transmissions.conf import conf
from transmissions.models import Notification

S = Notification.Status
TASK_PATH = "transmissions.tasks.process_due_notifications"
DB_BACKEND = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
API = taskapi.module().__name__  # "django.tasks" on Django 6.x, "django_tasks" on 5.2


def backend(name):
    return {"default": {"BACKEND": f"{API}.backends.{name}"}}


@pytest.fixture
def db_tasks(transactional_db):
    with override_settings(TRANSMISSIONS_WAKE_UP="django_tasks", TASKS=DB_BACKEND):
        yield


def run_worker():
    out = io.StringIO()
    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--no-reload", "--interval", "0.01", stdout=out
    )
    return out.getvalue()


def test_the_task_is_found_by_its_path_and_the_celery_task_keeps_its_name():
    task = import_string(TASK_PATH)
    assert type(task).__name__ == "Task" and task.module_path == TASK_PATH
    assert task is tasks.process_due_notifications is tasks.django_task()
    assert tasks.process_all_notifications.name == "transmissions.tasks.process_all_notifications"
    with pytest.raises(AttributeError, match="no_such_task"):
        tasks.no_such_task  # noqa: B018


@pytest.mark.fast_path  # without the shortcuts: one task per trigger
def test_one_task_per_transaction_and_the_worker_sends_them(db_tasks):
    user = make_user()
    with transaction.atomic():
        rows = [DefaultMessage.trigger(user) for _ in range(5)]
        LastOnlyMessage.trigger(user)
        assert not DBTaskResult.objects.exists()  # nothing before the commit
    queued = DBTaskResult.objects.get()  # one for the transaction
    assert (queued.task_path, queued.status, queued.queue_name) == (TASK_PATH, "READY", "default")
    assert messages.sent == []  # a worker sends them, not the request
    run_worker()
    queued.refresh_from_db()
    assert queued.status == "SUCCESSFUL" and queued.return_value == 6
    assert sorted(pk for name, pk in messages.sent if name == "default") == sorted(n.pk for n in rows)
    assert not Notification.objects.filter(status=S.CREATED).exists()


@pytest.mark.fast_path  # without the shortcuts: one task per trigger
def test_trigger_many_and_triggers_in_one_transaction_enqueue_once(db_tasks):
    with transaction.atomic():
        DefaultMessage.trigger_many([make_user(f"m{i}") for i in range(3)])
        DefaultMessage.trigger(make_user("m3"))
    assert DBTaskResult.objects.count() == 1


def test_autocommit_enqueues_at_each_commit(db_tasks):
    user = make_user()
    DefaultMessage.trigger(user)
    DefaultMessage.trigger(user)
    assert DBTaskResult.objects.count() == 2
    run_worker()
    # The first task took both; the second found nothing: nothing is sent twice.
    assert sorted(DBTaskResult.objects.values_list("return_value", flat=True)) == [0, 2]
    assert len(messages.sent) == 2


def test_rollback_and_rolled_back_savepoint_enqueue_nothing(db_tasks):
    user = make_user()
    with pytest.raises(RuntimeError), transaction.atomic():
        DefaultMessage.trigger(user)
        raise RuntimeError("the view failed")
    assert not DBTaskResult.objects.exists() and not Notification.objects.exists()
    with transaction.atomic():
        try:
            with transaction.atomic():
                DefaultMessage.trigger(user)
                raise RuntimeError("inner part failed")
        except RuntimeError:
            pass
        kept = DefaultMessage.trigger(user)
    assert DBTaskResult.objects.count() == 1
    run_worker()
    assert messages.sent == [("default", kept.pk)]


@pytest.mark.fast_path  # without the shortcuts: one task per trigger
def test_future_schedules_are_deferred_with_run_after(db_tasks, time_machine):
    user = make_user()
    soon, after = later(minutes=5), later(minutes=9)
    with transaction.atomic():
        DefaultMessage.trigger(user, datetime_scheduled=soon)
        DefaultMessage.trigger(make_user("b"), datetime_scheduled=soon)
        DefaultMessage.trigger(user, datetime_scheduled=after)
    queued = DBTaskResult.objects.order_by("run_after")
    assert [q.run_after for q in queued] == [soon, after]  # one per distinct time
    run_worker()
    assert messages.sent == [] and set(queued.values_list("status", flat=True)) == {"READY"}
    time_machine.move_to(soon + datetime.timedelta(seconds=1))
    run_worker()
    assert len(messages.sent) == 2
    assert list(queued.values_list("status", flat=True)) == ["SUCCESSFUL", "READY"]


@pytest.mark.fast_path  # without the shortcuts: one task per trigger
def test_a_run_stopped_by_its_time_limit_enqueues_the_rest(db_tasks):
    user = make_user()
    # A time limit of 0: every run stops after its first batch, however fast the machine (at
    # 0.001 s a fast run took two batches of 2 before its deadline).
    with override_settings(TRANSMISSIONS_BATCH_SIZE=2, TRANSMISSIONS_TIME_LIMIT=0):
        with transaction.atomic():
            rows = [DefaultMessage.trigger(user) for _ in range(5)]
        assert DBTaskResult.objects.count() == 1
        run_worker()  # runs the tasks the runs enqueue, until none is ready
    # One batch per run (the time limit), each run enqueuing the next while some are due.
    taken = list(DBTaskResult.objects.order_by("enqueued_at").values_list("return_value", flat=True))
    assert taken == [2, 2, 1]
    assert sorted(pk for _, pk in messages.sent) == sorted(n.pk for n in rows)  # each once


def test_a_retried_notification_gets_a_task_at_its_retry_time(db_tasks, time_machine):
    n = TransientMessage.trigger(make_user())
    run_worker()
    n.refresh_from_db()
    assert (n.status, n.attempts) == (S.CREATED, 1) and n.datetime_scheduled > timezone.now()
    first, retry = DBTaskResult.objects.order_by("enqueued_at")
    assert (first.status, first.return_value) == ("SUCCESSFUL", 1)
    assert (retry.status, retry.run_after) == ("READY", n.datetime_scheduled)
    run_worker()
    assert DBTaskResult.objects.filter(status="READY").count() == 1  # not due yet: not run
    time_machine.move_to(n.datetime_scheduled + datetime.timedelta(seconds=1))
    run_worker()
    n.refresh_from_db()
    assert n.attempts == 2  # the deferred task tried it again, and deferred the next try
    assert DBTaskResult.objects.get(status="READY").run_after == n.datetime_scheduled


def test_future_schedule_on_a_backend_without_defer_enqueues_nothing(transactional_db):
    user = make_user()
    with override_settings(TRANSMISSIONS_WAKE_UP="django_tasks", TASKS=backend("immediate.ImmediateBackend")):
        n = DefaultMessage.trigger(user, datetime_scheduled=later(minutes=5))
        assert Notification.objects.get(pk=n.pk).status == S.CREATED
        now = DefaultMessage.trigger(user)
    # The immediate backend ran the task in this process as the trigger committed.
    assert messages.sent == [("default", now.pk)]


def test_a_backend_that_cannot_be_loaded_is_logged_not_raised(transactional_db, caplog):
    user = make_user()
    broken = {"default": {"BACKEND": "no.such.Backend"}}
    with override_settings(TRANSMISSIONS_WAKE_UP="django_tasks", TASKS=broken), transaction.atomic():
        n = DefaultMessage.trigger(user)
    assert Notification.objects.get(pk=n.pk).status == S.CREATED  # committed; the sweep sends it
    assert "Could not enqueue transmissions.tasks.process_due_notifications on the 'default'" in caplog.text


def test_named_backend_and_queue(transactional_db):
    named = {"mail": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "notifications"]}}
    settings = {"TRANSMISSIONS_TASKS_BACKEND": "mail", "TRANSMISSIONS_TASKS_QUEUE": "notifications"}
    with override_settings(TRANSMISSIONS_WAKE_UP="django_tasks", TASKS=named, **settings):
        DefaultMessage.trigger(make_user())
        assert check_settings() == []
    queued = DBTaskResult.objects.get()
    assert (queued.backend_name, queued.queue_name) == ("mail", "notifications")


def test_dispatch_on_commit_means_celery_unless_wake_up_is_set():
    with override_settings(TRANSMISSIONS_DISPATCH_ON_COMMIT=True):
        assert conf.TRANSMISSIONS_WAKE_UP == "celery"
        with override_settings(TRANSMISSIONS_WAKE_UP="django_tasks"):
            assert conf.TRANSMISSIONS_WAKE_UP == "django_tasks"
        with override_settings(TRANSMISSIONS_WAKE_UP=None):
            assert conf.TRANSMISSIONS_WAKE_UP is None
    assert conf.TRANSMISSIONS_WAKE_UP is None


def test_wake_up_set_wins_over_dispatch_on_commit(db_tasks):
    with override_settings(TRANSMISSIONS_DISPATCH_ON_COMMIT=True):
        DefaultMessage.trigger(make_user())
        assert [m.id for m in check_settings()] == ["transmissions.W060"]
    assert DBTaskResult.objects.count() == 1  # a django.tasks task, not a Celery one


# --- system checks ----------------------------------------------------------------------


def check_ids(**settings):
    with override_settings(**settings):
        return [m.id for m in check_settings()]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"TRANSMISSIONS_WAKE_UP": "tasks"}, ["transmissions.E060"]),
        ({"TRANSMISSIONS_WAKE_UP": True}, ["transmissions.E060"]),
        ({"TRANSMISSIONS_WAKE_UP": None, "TRANSMISSIONS_DISPATCH_ON_COMMIT": True}, ["transmissions.W060"]),
        ({"TRANSMISSIONS_WAKE_UP": "celery", "TRANSMISSIONS_DISPATCH_ON_COMMIT": True}, []),
        ({"TRANSMISSIONS_WAKE_UP": "celery"}, []),
        ({"TRANSMISSIONS_WAKE_UP": "django_tasks", "TASKS": DB_BACKEND}, []),
        (
            {
                "TRANSMISSIONS_WAKE_UP": "django_tasks",
                "TASKS": DB_BACKEND,
                "TRANSMISSIONS_TASKS_BACKEND": "x",
            },
            ["transmissions.E062"],
        ),
        (
            {"TRANSMISSIONS_WAKE_UP": "django_tasks", "TASKS": {"default": {"BACKEND": "no.such.Backend"}}},
            ["transmissions.E063"],
        ),
        (
            {
                "TRANSMISSIONS_WAKE_UP": "django_tasks",
                "TASKS": DB_BACKEND,
                "TRANSMISSIONS_TASKS_QUEUE": "mail",
            },
            ["transmissions.E064"],
        ),
        (
            {"TRANSMISSIONS_WAKE_UP": "django_tasks", "TASKS": backend("immediate.ImmediateBackend")},
            ["transmissions.W061"],
        ),
        (
            {
                "TRANSMISSIONS_WAKE_UP": "django_tasks",
                "TASKS": backend("immediate.ImmediateBackend"),
                "DEBUG": True,
            },
            [],
        ),
        (
            {"TRANSMISSIONS_WAKE_UP": "django_tasks", "TASKS": backend("dummy.DummyBackend")},
            ["transmissions.W062"],
        ),
    ],
)
def test_wake_up_checks(settings, expected):
    assert check_ids(**settings) == expected


def test_django_tasks_not_installed_is_e061(monkeypatch):
    # None in sys.modules: importing it raises ImportError, as when it is not installed.
    for name in taskapi.MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    assert taskapi.module() is None
    assert check_ids(TRANSMISSIONS_WAKE_UP="django_tasks") == ["transmissions.E061"]
    monkeypatch.delitem(tasks.__dict__, "process_due_notifications", raising=False)
    with pytest.raises(Exception, match=r'pip install "transmissions\[tasks\]"'):
        tasks.django_task()


def test_the_backport_outside_installed_apps_is_w063():
    with modify_settings(INSTALLED_APPS={"remove": "django_tasks"}):
        found = check_ids(TRANSMISSIONS_WAKE_UP="django_tasks", TASKS=DB_BACKEND)
    # Django 6.x has its own django.tasks: the backport's app is not needed there.
    assert found == (["transmissions.W063"] if API == "django_tasks" else [])


# --- end to end: two real db_worker processes on PostgreSQL ------------------------------

TOTAL, PER_TRANSACTION = 1000, 50


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_db_workers_send_1000_notifications_exactly_once(tmp_path):
    log = tmp_path / "sends.log"
    env = child_env(
        connection.settings_dict["NAME"],
        {"TASKS": DB_BACKEND},
        **{SEND_LOG_ENV: str(log), "PYTHONUNBUFFERED": "1"},
    )
    workers = []
    for i in range(2):
        out = open(tmp_path / f"worker{i}.out", "w")  # closed below
        cmd = [
            sys.executable,
            "-m",
            "tests.child",
            "manage",
            "db_worker",
            "--no-reload",
            "--interval",
            "0.05",
        ]
        workers.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT), out))
    try:
        users = [make_user(f"e2e{i}") for i in range(PER_TRANSACTION)]
        pks = []
        with override_settings(TRANSMISSIONS_WAKE_UP="django_tasks", TASKS=DB_BACKEND):
            for _ in range(TOTAL // PER_TRANSACTION):
                with transaction.atomic():
                    pks += [n.pk for n in DurableMessage.trigger_many(users)]
            with pytest.raises(RuntimeError), transaction.atomic():
                DurableMessage.trigger_many(users)
                raise RuntimeError("rolled back: no task, no rows")
        assert len(pks) == TOTAL
        deadline = time.monotonic() + 120
        while DBTaskResult.objects.exclude(status__in=["SUCCESSFUL", "FAILED"]).exists() or (
            Notification.objects.filter(status__in=[S.CREATED, S.PROCESSING]).exists()
        ):
            for proc, _out in workers:
                assert proc.poll() is None, (tmp_path / "worker0.out").read_text()
            assert time.monotonic() < deadline, "the workers did not finish within 120 s"
            time.sleep(0.1)
    finally:
        for proc, _out in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # db_worker stops after its task
        for proc, out in workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            out.close()
    sent = read_send_log(log)
    assert sorted(sent) == sorted(pks)  # each of the 1,000 once
    assert Notification.objects.filter(status=S.SUCCESSFULLY_SENT).count() == TOTAL
    results = DBTaskResult.objects.all()
    # One per committed transaction, and a follow-up from each run that ended with rows still
    # due (another transaction had committed meanwhile).
    assert len(results) >= TOTAL // PER_TRANSACTION
    assert {r.status for r in results} == {"SUCCESSFUL"}
    assert sum(r.return_value for r in results) == TOTAL  # the tasks took each notification once
    pids = {line.split()[1] for line in log.read_text().splitlines()}
    assert len(pids) <= 2 and str(os.getpid()) not in pids  # sent by the workers, not here
