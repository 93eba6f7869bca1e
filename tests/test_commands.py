import datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests import messages
from tests.messages import DefaultMessage, SendOnceMessage
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
    assert run("process_notifications", "--batch-size", "1") == "Processed 2 notification(s).\n"
    assert len(messages.sent) == 2


def fail(n, days_ago=0):
    Notification.objects.filter(pk=n.pk).update(
        status=S.FAILED,
        dedup_key=None,
        attempts=3,
        datetime_processed=timezone.now() - datetime.timedelta(days=days_ago),
    )


def test_retry_failed_notifications():
    user = make_user()
    recent, old = DefaultMessage.trigger(user), DefaultMessage.trigger(user)
    fail(recent, days_ago=1)
    fail(old, days_ago=10)
    assert "Queued 1 failed notification(s) again; skipped 0." in run(
        "retry_failed_notifications", "--days", "2"
    )
    recent.refresh_from_db()
    assert recent.status == S.CREATED and recent.datetime_processed is None and recent.attempts == 0
    assert Notification.objects.get(pk=old.pk).status == S.FAILED
    run("process_notifications")
    assert [pk for _, pk in messages.sent] == [recent.pk]


def test_retry_respects_send_once():
    user = make_user()
    failed = SendOnceMessage.trigger(user)
    fail(failed)
    newer = SendOnceMessage.trigger(user)  # a FAILED row does not block
    assert newer is not None
    out = run("retry_failed_notifications", "--days", "1")
    assert "Queued 0" in out and "skipped 1" in out
    assert Notification.objects.get(pk=failed.pk).status == S.FAILED


def test_retry_trigger_filter_and_bad_days():
    user = make_user()
    n = DefaultMessage.trigger(user)
    fail(n)
    assert "Queued 0" in run("retry_failed_notifications", "--trigger", "other")
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
