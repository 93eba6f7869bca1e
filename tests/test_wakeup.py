"""TRANSMISSIONS_DISPATCH_ON_COMMIT: one task per committed transaction, none on rollback.

The task runs eagerly in this process (a real Celery app, ``task_always_eager``); every
run is counted by Celery's own ``task_prerun`` signal.
"""

import time

import pytest
from celery import Celery
from celery.signals import task_prerun
from django.db import transaction
from django.test.utils import override_settings

from tests import messages
from tests.celery_app import TASK, app
from tests.messages import DefaultMessage, LastOnlyMessage
from tests.servers import SilentServer
from tests.utils import later, make_user
from transmissions import wakeup
from transmissions.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)
S = Notification.Status


def _wait_for_a_dispatch_in_flight():
    if wakeup._in_flight is not None:
        wakeup._in_flight.join(timeout=30)


@pytest.fixture(autouse=True)
def _no_dispatch_left_in_flight():
    """A test whose broker is down leaves its dispatch thread waiting for a while: the next
    test would see it in flight and skip its own dispatch. Wait for it, before and after."""
    _wait_for_a_dispatch_in_flight()
    yield
    _wait_for_a_dispatch_in_flight()


@pytest.fixture
def eager():
    """The task runs seen while the test runs; the task runs eagerly, here."""
    seen = []

    def count(sender=None, **kwargs):
        if sender is not None and sender.name == TASK:
            seen.append(sender.name)

    app.set_current()
    app.conf.task_always_eager = True
    task_prerun.connect(count)
    try:
        yield seen
    finally:
        task_prerun.disconnect(count)
        app.conf.task_always_eager = False


@pytest.fixture
def runs(eager):
    with override_settings(TRANSMISSIONS_DISPATCH_ON_COMMIT=True):
        yield eager


def test_off_by_default(eager):
    user = make_user()
    with transaction.atomic():
        DefaultMessage.trigger(user)
    DefaultMessage.trigger(user)
    assert eager == [] and messages.sent == []


@pytest.mark.fast_path  # without the shortcuts: one wake-up per trigger
def test_one_dispatch_per_transaction_delivers_after_commit(runs):
    user = make_user()
    with transaction.atomic():
        rows = [DefaultMessage.trigger(user) for _ in range(5)]
        LastOnlyMessage.trigger(user)
        assert runs == []  # nothing before the commit
    assert len(runs) == 1
    assert sorted(pk for _, pk in messages.sent if _ == "default") == sorted(n.pk for n in rows)
    assert not Notification.objects.filter(status=S.CREATED).exists()


def test_autocommit_dispatches_each_commit(runs):
    user = make_user()
    DefaultMessage.trigger(user)
    DefaultMessage.trigger(user)
    assert len(runs) == 2
    assert len(messages.sent) == 2


def test_rolled_back_transaction_dispatches_nothing(runs):
    user = make_user()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            DefaultMessage.trigger(user)
            raise RuntimeError("the view failed")
    assert runs == [] and not Notification.objects.exists()


def test_rolled_back_savepoint_does_not_cost_the_dispatch(runs):
    user = make_user()
    with transaction.atomic():
        try:
            with transaction.atomic():
                DefaultMessage.trigger(user)
                raise RuntimeError("inner part failed")
        except RuntimeError:
            pass
        kept = DefaultMessage.trigger(user)
    assert len(runs) == 1
    assert messages.sent == [("default", kept.pk)]


def test_future_schedule_and_refused_trigger_dispatch_nothing(runs):
    from tests.messages import TriggerOnceMessage

    user = make_user()
    DefaultMessage.trigger(user, datetime_scheduled=later(minutes=5))
    with transaction.atomic():
        TriggerOnceMessage.trigger(user, datetime_scheduled=later(minutes=5))
        assert TriggerOnceMessage.trigger(user) is None
    assert runs == []


def test_unreachable_broker_is_logged_not_raised(caplog):
    user = make_user()
    # A real broker URL on a closed loopback port, without publish retries.
    down = Celery("down", broker="redis://127.0.0.1:1/0", set_as_current=False)
    down.conf.update(task_publish_retry=False, broker_connection_timeout=1, broker_connection_retry=False)
    down.set_current()
    try:
        with override_settings(TRANSMISSIONS_DISPATCH_ON_COMMIT=True), transaction.atomic():
            n = DefaultMessage.trigger(user)
    finally:
        app.set_current()
    assert Notification.objects.get(pk=n.pk).status == S.CREATED  # committed; beat will send it
    assert "Could not queue process_all_notifications" in caplog.text


def test_a_silent_broker_holds_the_commit_no_longer_than_the_dispatch_timeout(caplog):
    """A broker that accepts the connection and never answers (127.0.0.1): the commit waits
    TRANSMISSIONS_DISPATCH_TIMEOUT, not the outage; while that dispatch is stuck, the next
    commit does not wait at all. (Before: trigger() blocked for as long as the socket did.)"""
    user = make_user()
    with SilentServer() as broker:
        silent = Celery("silent", broker=f"redis://127.0.0.1:{broker.port}/0", set_as_current=False)
        silent.set_current()
        try:
            with override_settings(TRANSMISSIONS_DISPATCH_ON_COMMIT=True, TRANSMISSIONS_DISPATCH_TIMEOUT=0.5):
                started = time.monotonic()
                with transaction.atomic():
                    first = DefaultMessage.trigger(user)
                waited = time.monotonic() - started
                started = time.monotonic()
                second = DefaultMessage.trigger(user)
                waited_again = time.monotonic() - started
        finally:
            app.set_current()
        stuck = wakeup._in_flight
        assert stuck is not None and stuck.is_alive()
    stuck.join(timeout=30)  # the server closed: the publish fails and the thread ends
    assert not stuck.is_alive()
    assert 0.5 <= waited < 1.5 and waited_again < 0.3
    assert set(
        Notification.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)
    ) == {S.CREATED}
    assert (
        "Could not queue process_all_notifications within 0.5 s (TRANSMISSIONS_DISPATCH_TIMEOUT)"
        in caplog.text
    )
    assert "an earlier dispatch is still waiting for the broker" in caplog.text


def test_trigger_many_dispatches_once_after_commit(runs):
    users = [make_user(f"fan{i}") for i in range(3)]
    with transaction.atomic():
        made = DefaultMessage.trigger_many(users)
        assert runs == []
    assert len(runs) == 1
    assert sorted(pk for name, pk in messages.sent if name == "default") == sorted(n.pk for n in made)


def test_trigger_many_outside_a_transaction_dispatches_at_its_commit(runs):
    DefaultMessage.trigger_many([make_user("a1"), make_user("a2")])
    assert len(runs) == 1
    assert not Notification.objects.filter(status=S.CREATED).exists()
