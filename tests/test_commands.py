import datetime
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone

from tests import messages
from tests.child import ROOT, child_env
from tests.messages import DefaultMessage, FailingMessage, MyEmailMessage, SendOnceMessage, TransientMessage
from tests.notifications import SEND_LOG_ENV, DurableMessage, read_send_log
from tests.utils import make_user
from transmissions.models import Notification

pytestmark = pytest.mark.django_db
S = Notification.Status


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_process_notifications_command():
    user = make_user()
    DefaultMessage.trigger(user)
    DefaultMessage.trigger(user)
    out = run("process_notifications", "--batch-size", "1")
    assert out.splitlines()[0] == "Processed 2 notifications."
    assert [line.split() for line in out.splitlines()[1:]] == [["sent", "2"]]
    assert len(messages.sent) == 2
    assert run("process_notifications") == "Processed 0 notifications.\n"


def test_process_notifications_prints_every_outcome_and_with_v2_every_row(caplog):
    ada, nobody = make_user(), make_user("nobody", email="")
    sent = DefaultMessage.trigger(ada)
    cancelled = MyEmailMessage.trigger(nobody)
    failed = FailingMessage.trigger(ada)
    retried = TransientMessage.trigger(ada)
    broken = DefaultMessage.trigger(ada)
    Notification.objects.filter(pk=broken.pk).update(trigger_name="renamed-since")
    out = run("process_notifications", "-v", "2")
    lines = out.splitlines()
    table = dict(line.split() for line in lines[lines.index("Processed 5 notifications.") + 1 :])
    assert table == {"sent": "1", "cancelled": "1", "failed": "1", "broken": "1", "retried": "1"}
    rows = {int(line.split()[0]): line for line in lines[: lines.index("Processed 5 notifications.")]}
    assert "successfully sent" in rows[sent.pk]
    assert "cancelled" in rows[cancelled.pk] and "the user has no email address" in rows[cancelled.pk]
    assert "failed" in rows[failed.pk]
    assert "retried" in rows[retried.pk]
    assert "broken" in rows[broken.pk] and "no message is registered" in rows[broken.pk]
    # Every cancel and break is logged with its reason at a level a default config shows.
    logged = {(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING}
    assert (
        "WARNING",
        f"Cancelled notification {cancelled.pk} (hello-world-message): the user has no email address.",
    ) in logged
    assert any(level == "ERROR" and f"notification {broken.pk}" in text for level, text in logged)


def fail(n, days_ago=0):
    when = timezone.now() - datetime.timedelta(days=days_ago)
    Notification.objects.filter(pk=n.pk).update(
        status=S.FAILED, dedup_key=None, attempts=3, datetime_scheduled=when, datetime_processed=when
    )


def test_retry_failed_notifications_sends_them_now():
    user = make_user()
    recent, old = DefaultMessage.trigger(user), DefaultMessage.trigger(user)
    fail(recent, days_ago=1)
    fail(old, days_ago=10)
    out = run("retry_failed_notifications", "--days", "2")
    assert out.splitlines() == [
        "Sending default to ada (failed)",
        "  successfully sent",
        "Sent 1 failed notification(s) again; 0 not sent.",
    ]
    recent.refresh_from_db()
    assert recent.status == S.SUCCESSFULLY_SENT and recent.datetime_processed is not None
    assert [pk for _, pk in messages.sent] == [recent.pk]
    assert Notification.objects.get(pk=old.pk).status == S.FAILED
    # Sent once: a second run finds nothing to send.
    assert "Sent 0" in run("retry_failed_notifications", "--days", "2")
    assert len(messages.sent) == 1


def test_retry_selects_by_schedule_within_seven_days_by_default_oldest_first():
    user = make_user()
    rows = [DefaultMessage.trigger(user) for _ in range(3)]
    for row, days in zip(rows, (2, 6, 8), strict=True):
        fail(row, days_ago=days)
    later_row = DefaultMessage.trigger(user, datetime_scheduled=timezone.now() + datetime.timedelta(hours=1))
    Notification.objects.filter(pk=later_row.pk).update(status=S.FAILED)  # scheduled after now: left
    out = run("retry_failed_notifications")
    assert out.count("Sending ") == 2
    assert [pk for _, pk in messages.sent] == [rows[1].pk, rows[0].pk]
    assert Notification.objects.get(pk=rows[2].pk).status == S.FAILED
    assert Notification.objects.get(pk=later_row.pk).status == S.FAILED


def test_retry_reports_each_outcome_and_goes_on(caplog):
    user = make_user()
    again = FailingMessage.trigger(user)
    fail(again, days_ago=1)
    broken = DefaultMessage.trigger(user)
    fail(broken)
    Notification.objects.filter(pk=broken.pk).update(trigger_name="no-such-message")
    with caplog.at_level(logging.CRITICAL, logger="transmissions"):
        lines = run("retry_failed_notifications").splitlines()
    assert lines[0].startswith("Sending always-fails to ada")
    assert lines[1].startswith("  failed: ")
    assert lines[2] == "Sending no-such-message to ada (failed)"
    assert lines[3] == "  broken: no message is registered under this trigger name"
    assert lines[4] == "Sent 0 failed notification(s) again; 2 not sent."


def test_retry_reports_a_retry_and_a_hold_by_quiet_hours():
    """The two outcomes that leave a row waiting: the channel asks to be retried later, or a
    policy holds it (quiet hours); each is reported, neither counts as sent."""
    ada = make_user()
    transient = TransientMessage.trigger(ada)
    fail(transient, days_ago=1)
    out = run("retry_failed_notifications").splitlines()
    assert out[1] == "  to be retried: try later"
    assert out[-1] == "Sent 0 failed notification(s) again; 1 not sent."
    transient.refresh_from_db()
    assert transient.status == S.CREATED and transient.reason == "try later"

    Notification.objects.all().delete()
    quiet = DefaultMessage.trigger(ada)
    fail(quiet, days_ago=1)
    night = (timezone.now() + datetime.timedelta(days=1)).replace(hour=23, minute=30)
    quiet_hours = override_settings(TRANSMISSIONS_QUIET_HOURS=("22:00", "07:00"))
    with quiet_hours, time_machine.travel(night, tick=False):
        out = run("retry_failed_notifications").splitlines()
    assert out[1] == "  taken by a worker meanwhile, or held: created"
    quiet.refresh_from_db()
    assert quiet.status == S.CREATED and quiet.reason.startswith("quiet-hours: ")
    assert messages.sent == []


def test_retry_with_queue_puts_them_back_for_the_workers():
    user = make_user()
    recent, old = DefaultMessage.trigger(user), DefaultMessage.trigger(user)
    fail(recent, days_ago=1)
    fail(old, days_ago=10)
    assert "Queued 1 failed notification(s) again; skipped 0." in run(
        "retry_failed_notifications", "--days", "2", "--queue"
    )
    recent.refresh_from_db()
    assert recent.status == S.CREATED and recent.datetime_processed is None and recent.attempts == 0
    assert Notification.objects.get(pk=old.pk).status == S.FAILED
    assert messages.sent == []
    run("process_notifications")
    assert [pk for _, pk in messages.sent] == [recent.pk]


def test_retry_respects_send_once():
    user = make_user()
    failed = SendOnceMessage.trigger(user)
    fail(failed)
    newer = SendOnceMessage.trigger(user)  # a FAILED row does not block
    assert newer is not None
    out = run("retry_failed_notifications", "--days", "1", "--queue")
    assert "Queued 0" in out and "skipped 1" in out
    out = run("retry_failed_notifications", "--days", "1")
    assert "  skipped: another notification of its message blocks it" in out
    assert Notification.objects.get(pk=failed.pk).status == S.FAILED
    assert messages.sent == []


def test_retry_trigger_filter_and_bad_days():
    user = make_user()
    n = DefaultMessage.trigger(user)
    fail(n)
    assert "Sent 0" in run("retry_failed_notifications", "--trigger", "other")
    assert "Queued 0" in run("retry_failed_notifications", "--trigger", "other", "--queue")
    with pytest.raises(CommandError, match="--days"):
        run("retry_failed_notifications", "--days", "0")


def test_task_is_registered_under_the_readme_name():
    from celery import current_app

    from transmissions.tasks import process_all_notifications

    assert process_all_notifications.name == "transmissions.tasks.process_all_notifications"
    assert "transmissions.tasks.process_all_notifications" in current_app.tasks
    DefaultMessage.trigger(make_user())
    with time_machine.travel(timezone.now() + datetime.timedelta(seconds=1)):
        assert process_all_notifications.apply().get() == 1


def test_process_notifications_loop_sweeps_until_its_duration():
    user = make_user()
    now = DefaultMessage.trigger(user)
    soon = DefaultMessage.trigger(user, datetime_scheduled=timezone.now() + datetime.timedelta(seconds=0.4))
    started = time.monotonic()
    out = run("process_notifications", "--loop", "--interval", "0.05", "--duration", "1")
    assert 1 <= time.monotonic() - started < 5
    lines = out.splitlines()
    # Each run that took something reports; the notification due later was found by a later run.
    assert lines[:2] == ["Processed 1 notification.", "  sent             1"]
    assert lines[2:4] == ["Processed 1 notification.", "  sent             1"]
    runs = int(lines[4].split()[2])
    assert lines[4] == f"Stopped after {runs} runs: 2 notifications processed." and runs > 3
    assert messages.sent == [("default", now.pk), ("default", soon.pk)]


def test_process_notifications_loop_stops_on_sigterm_after_its_run():
    previous = signal.getsignal(signal.SIGTERM)
    DefaultMessage.trigger(make_user())
    # A real SIGTERM to this process while the loop sleeps (the handler runs in the main thread).
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.monotonic()
    try:
        out = run("process_notifications", "--loop", "--interval", "30")
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10  # not the 30 s interval
    # A run that took something is followed by another at once; the second found nothing and slept.
    assert out.splitlines()[-2:] == [
        "Stopped after 2 runs: 1 notification processed.",
        "  sent             1",
    ]
    assert signal.getsignal(signal.SIGTERM) is previous  # put back


@pytest.mark.parametrize("option", ["--interval", "--duration"])
def test_process_notifications_loop_refuses_a_non_positive_time(option):
    DefaultMessage.trigger(make_user())
    with pytest.raises(CommandError, match=f"{option} must be a positive number of seconds"):
        run("process_notifications", "--loop", option, "0")
    assert messages.sent == []  # refused before any run


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_sweeper_process_sends_what_is_triggered_and_stops_on_sigterm(tmp_path):
    log = tmp_path / "sends.log"
    env = child_env(connection.settings_dict["NAME"], **{SEND_LOG_ENV: str(log), "PYTHONUNBUFFERED": "1"})
    cmd = [
        sys.executable,
        "-m",
        "tests.child",
        "manage",
        "process_notifications",
        "--loop",
        "--interval",
        "0.1",
    ]
    sweeper = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        user = make_user()
        due = DurableMessage.trigger(user)
        soon = DurableMessage.trigger(user, datetime_scheduled=timezone.now() + datetime.timedelta(seconds=1))
        deadline = time.monotonic() + 30
        while sorted(read_send_log(log)) != sorted([due.pk, soon.pk]):
            assert sweeper.poll() is None and time.monotonic() < deadline, "the sweeper did not send both"
            time.sleep(0.05)
        sweeper.send_signal(signal.SIGTERM)
        out, _ = sweeper.communicate(timeout=30)
    finally:
        if sweeper.poll() is None:
            sweeper.kill()
            sweeper.wait(timeout=10)
    assert sweeper.returncode == 0, out
    assert "2 notifications processed." in out.splitlines()[-2]
    assert Notification.objects.filter(status=S.SUCCESSFULLY_SENT).count() == 2
