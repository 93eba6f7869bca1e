"""A real Celery worker and beat on Redis, against the PostgreSQL test database.

The worker (``celery -A tests.celery_app worker``) and beat are subprocesses; a view
triggers through the Django test client; the sends are read from the workers' O_APPEND
log. Runs with TRANSMISSIONS_TEST_DB=postgres; Redis missing is a skip on a developer's
machine and a failure under TRANSMISSIONS_REQUIRE_SERVICES=1 (CI).
"""

import os
import subprocess
import sys
import time

import pytest
from django.db import connection
from django.test.utils import override_settings

from tests.celery_app import REDIS_URL, app
from tests.child import ROOT, child_env
from tests.markers import server_db
from tests.notifications import SEND_LOG_ENV, read_send_log
from tests.utils import make_user
from transmissions.models import Notification

pytestmark = server_db
TIMEOUT = 30


@pytest.fixture
def redis_db():
    """Our Redis database, emptied; fail rather than skip when CI requires the services."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("TRANSMISSIONS_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis at {REDIS_URL} is required and unreachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable")
    client.flushdb()  # only the tests' own database number
    app.set_current()
    yield client
    client.flushdb()
    client.close()


class Celery:
    """Start ``celery worker``/``beat`` subprocesses; always stop them."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.log = tmp_path / "sends.log"
        # Unbuffered, so a log line the test waits for is in the file as soon as it is printed.
        self.env = child_env(
            connection.settings_dict["NAME"], **{SEND_LOG_ENV: str(self.log), "PYTHONUNBUFFERED": "1"}
        )
        self.procs = {}

    def start(self, role, *args, ready):
        out = self.tmp_path / f"{role}.out"
        cmd = [sys.executable, "-m", "celery", "-A", "tests.celery_app", role, *args]
        with open(out, "w") as f:
            self.procs[role] = (
                subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=f, stderr=subprocess.STDOUT),
                out,
            )
        self.wait(lambda: ready in self.output(role), f"{role} to start")

    def output(self, role):
        proc, out = self.procs[role]
        if proc.poll() is not None:
            raise AssertionError(f"celery {role} exited {proc.returncode}:\n{out.read_text()}")
        return out.read_text()

    def wait(self, predicate, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {r}:\n{o.read_text()}" for r, (_, o) in self.procs.items())
                raise AssertionError(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.05)

    def stop(self):
        for proc, _ in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def celery(tmp_path, redis_db):
    c = Celery(tmp_path)
    try:
        c.start(
            "worker",
            *("--pool=solo", "--without-heartbeat", "--without-gossip", "--without-mingle"),
            *("--loglevel=info", f"--hostname=tx-test-{os.getpid()}@%h"),
            ready=" ready.",
        )
        yield c
    finally:
        c.stop()


def trigger_from_view(client, user, count):
    response = client.post("/trigger/", {"user": user.pk, "count": count})
    assert response.status_code == 200
    return response.json()["pks"]


def all_sent(celery, pks):
    """Sent (in the log) and recorded (the log line is written before the status)."""
    done = Notification.objects.filter(pk__in=pks, datetime_processed__isnull=False).count()
    return set(pks) <= set(read_send_log(celery.log)) and done == len(pks)


def test_beat_and_worker_deliver(client, celery):
    schedule = celery.tmp_path / "celerybeat-schedule"
    celery.start("beat", "--loglevel=debug", f"--schedule={schedule}", ready="beat: Starting")
    user = make_user()
    pks = trigger_from_view(client, user, 3)
    celery.wait(lambda: all_sent(celery, pks), "beat's run to send the notifications")

    assert sorted(read_send_log(celery.log)) == sorted(pks)  # each once
    assert set(Notification.objects.values_list("status", flat=True)) == {
        Notification.Status.SUCCESSFULLY_SENT
    }
    celery.wait(lambda: "Sending due task process-notifications-fast" in celery.output("beat"), "beat's log")
    beat = celery.output("beat")
    # The README's crontab(minute='*') entry is accepted beside the fast one.
    assert "<ScheduleEntry: process-notifications transmissions.tasks.process_all_notifications()" in beat
    assert "<crontab: * * * * *" in beat
    assert "Scheduler: Sending due task process-notifications-fast" in beat


def test_dispatch_on_commit_delivers_without_beat(client, celery):
    user = make_user()
    with override_settings(TRANSMISSIONS_DISPATCH_ON_COMMIT=True):
        started = time.monotonic()
        pks = trigger_from_view(client, user, 3)
        celery.wait(lambda: all_sent(celery, pks), "the dispatched task to send", timeout=15)
    latency = time.monotonic() - started
    assert sorted(read_send_log(celery.log)) == sorted(pks)
    assert "beat" not in celery.procs
    # One transaction in the view: one task queued for its three notifications.
    worker = celery.output("worker")
    assert worker.count("Task transmissions.tasks.process_all_notifications[") >= 1
    assert worker.count("] received") == 1
    assert latency < 10, latency
