"""coalesce.py: one woken worker at a time, whatever the commit rate; no committed row left behind.

In-process tests run the Celery task eagerly (a real Celery app, ``task_always_eager``) on
the locmem cache; the burst runs a real ``celery worker`` on Redis against PostgreSQL, with
a Redis cache shared by the test process and the worker.
"""

import json
import statistics

import pytest
from celery.signals import before_task_publish
from django.core.cache import caches
from django.db import connection, transaction
from django.test.utils import override_settings

from tests import messages
from tests.celery_app import REDIS_URL, TASK, app
from tests.child import SETTINGS_ENV
from tests.messages import DefaultMessage
from tests.notifications import DurableMessage, read_send_log
from tests.test_celery import Celery, all_sent, redis_db  # noqa: F401 - the fixture
from tests.utils import make_user
from transmissions import coalesce, worker
from transmissions.checks import check_settings
from transmissions.models import Notification

S = Notification.Status
COALESCED = {"TRANSMISSIONS_WAKE_UP": "celery", "TRANSMISSIONS_WAKE_UP_CACHE": "default"}


@pytest.fixture
def published():
    """The processing tasks queued while the test runs (Celery's own publish signal), with
    the task running eagerly here."""
    seen = []

    def count(sender=None, **kwargs):
        if sender == TASK:
            seen.append(sender)

    app.set_current()
    before_task_publish.connect(count)
    try:
        yield seen
    finally:
        before_task_publish.disconnect(count)


@pytest.fixture
def eager_runs():
    from celery.signals import task_prerun

    seen = []

    def count(sender=None, **kwargs):
        if sender is not None and sender.name == TASK:
            seen.append(sender.name)

    app.set_current()
    app.conf.task_always_eager = True
    task_prerun.connect(count)
    caches["default"].delete(coalesce.KEY)
    try:
        with override_settings(**COALESCED, TRANSMISSIONS_WAKE_UP_LINGER=0):
            yield seen
    finally:
        task_prerun.disconnect(count)
        app.conf.task_always_eager = False
        caches["default"].delete(coalesce.KEY)


@pytest.mark.django_db(transaction=True)
def test_commits_while_a_worker_is_looking_wake_no_other(eager_runs):
    user = make_user()
    coalesce.hold()  # a worker is queued, or running
    rows = [DefaultMessage.trigger(user) for _ in range(3)]  # three commits
    assert eager_runs == []
    assert set(Notification.objects.values_list("status", flat=True)) == {S.CREATED}
    # That worker's run sends them all, then lets the next commit wake one.
    assert worker.process_all_notifications() == 3
    assert sorted(pk for _, pk in messages.sent) == sorted(n.pk for n in rows)
    assert caches["default"].get(coalesce.KEY) is None
    DefaultMessage.trigger(user)
    assert len(eager_runs) == 1 and len(messages.sent) == 4


@pytest.mark.django_db(transaction=True)
def test_a_commit_just_before_the_worker_stops_looking_is_sent_by_its_last_look(eager_runs, monkeypatch):
    """The race the last claim closes: a row committed while the key is still there (its
    wake-up is skipped), just before the worker deletes the key."""
    user = make_user()
    release = coalesce.release
    late = []

    def commit_then_release():
        if not late:
            coalesce.hold()
            late.append(DefaultMessage.trigger(user))  # skipped: the key is there
        release()

    monkeypatch.setattr(coalesce, "release", commit_then_release)
    DefaultMessage.trigger(user)  # wakes the (eager) worker, which sends it, then the late one
    assert len(eager_runs) == 1
    assert [pk for _, pk in messages.sent][-1] == late[0].pk
    assert Notification.objects.filter(status=S.SUCCESSFULLY_SENT).count() == 2


@pytest.mark.django_db(transaction=True)
def test_off_every_commit_wakes_a_worker(eager_runs):
    user = make_user()
    with override_settings(TRANSMISSIONS_WAKE_UP_CACHE=None):
        coalesce.hold()  # ignored: no cache named
        DefaultMessage.trigger(user)
        DefaultMessage.trigger(user)
    assert len(eager_runs) == 2


@pytest.mark.django_db(transaction=True)
def test_a_run_that_fails_stops_holding_the_key(eager_runs, monkeypatch):
    user = make_user()
    with transaction.atomic():
        DefaultMessage.trigger(user)
        coalesce.hold()

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(worker, "process_batch", broken)
    with pytest.raises(RuntimeError):
        worker.process_all_notifications()
    assert caches["default"].get(coalesce.KEY) is None


@pytest.mark.parametrize(
    ("settings", "ids"),
    [
        ({"TRANSMISSIONS_WAKE_UP_CACHE": "nope"}, ["transmissions.E065"]),
        ({"TRANSMISSIONS_WAKE_UP_CACHE": "default"}, ["transmissions.W064"]),
        ({"TRANSMISSIONS_WAKE_UP_LINGER": -1}, ["transmissions.E066"]),
        ({"TRANSMISSIONS_WAKE_UP_LINGER": "1"}, ["transmissions.E066"]),
        (
            {
                "TRANSMISSIONS_WAKE_UP_CACHE": "shared",
                "CACHES": {
                    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
                    "shared": {
                        "BACKEND": "django.core.cache.backends.redis.RedisCache",
                        "LOCATION": REDIS_URL,
                    },
                },
            },
            [],
        ),
    ],
)
def test_checks(settings, ids):
    with override_settings(**settings):
        found = [m.id for m in check_settings(None)]
    assert [
        i for i in found if i in ("transmissions.E065", "transmissions.E066", "transmissions.W064")
    ] == ids


BURST = 300


@pytest.mark.usefixtures("redis_db")
@pytest.mark.postgres
@pytest.mark.only_on("postgresql")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("coalesced", [True, False], ids=["coalesced", "one-task-per-commit"])
def test_a_burst_of_separate_commits_wakes_a_few_workers_and_each_row_is_sent_once(
    tmp_path, published, coalesced
):
    """300 triggers, each its own commit, with a real worker on Redis: one task per commit
    without coalescing; with it, a handful, and every row sent once, soon."""
    shared = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "wake": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
    }
    cache = "wake" if coalesced else None
    settings = {"CACHES": shared, "TRANSMISSIONS_WAKE_UP_CACHE": cache, "TRANSMISSIONS_WAKE_UP": "celery"}
    celery = Celery(tmp_path)
    celery.env = {**celery.env, SETTINGS_ENV: json.dumps(settings)}
    try:
        celery.start(
            "worker",
            *(
                "--pool=solo",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=info",
            ),
            ready=" ready.",
        )
        user = make_user()
        with override_settings(**settings):
            caches["wake"].delete(coalesce.KEY)
            pks = [DurableMessage.trigger(user).pk for _ in range(BURST)]
            celery.wait(lambda: all_sent(celery, pks), "the burst to be sent", timeout=60)
    finally:
        celery.stop()
    assert sorted(read_send_log(celery.log)) == sorted(pks)  # each once
    if coalesced:
        assert 1 <= len(published) <= 20, len(published)
    else:
        assert len(published) == BURST
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(EPOCH FROM datetime_processed - datetime_created) FROM transmissions_notification"
        )
        latencies = sorted(float(row[0]) for row in cursor.fetchall())
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    p50 = statistics.median(latencies)
    tasks = len(published)
    print(f"{BURST} commits, coalesced={coalesced}: {tasks} tasks; p50 {p50:.3f} s, p99 {p99:.3f} s")
    assert p99 < 2, latencies[-5:]
