"""throttle.py: @message(throttle=...): at most N per key in any period, held by the database."""

import datetime
import logging

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.messages import ThrottledDeferMessage, ThrottledMessage, ThrottledPerContentMessage
from tests.models import Article
from tests.utils import make_user, statements
from transmissions import message
from transmissions.behaviors import TriggerBehavior
from transmissions.channels.base import BaseChannel
from transmissions.exceptions import InvalidTrigger, MessageRegistrationError
from transmissions.models import Notification
from transmissions.registry import registry
from transmissions.throttle import Throttle
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status
HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def user():
    return make_user()


def test_the_excess_is_dropped_with_a_visible_reason(user, caplog):
    with caplog.at_level(logging.WARNING, logger="transmissions"):
        made = [ThrottledMessage.trigger(user) for _ in range(5)]
    assert [n.status for n in made] == [S.CREATED] * 3 + [S.CANCELLED] * 2
    dropped = Notification.objects.filter(status=S.CANCELLED)
    assert dropped.count() == 2
    assert set(dropped.values_list("reason", flat=True)) == {
        "throttled: more than 3 per 1:00:00 for this user; dropped"
    }
    assert Notification.objects.held("throttled").count() == 2
    assert all(n.datetime_processed is not None and n.throttle_slot is None for n in dropped)
    assert sum("Throttled throttled" in r.getMessage() for r in caplog.records) == 2
    assert process_all_notifications() == 3
    assert Notification.objects.filter(status=S.SUCCESSFULLY_SENT).count() == 3


def test_each_user_has_its_own_slots(user):
    other = make_user("bob")
    for _ in range(3):
        ThrottledMessage.trigger(user)
    assert ThrottledMessage.trigger(other).status == S.CREATED
    assert ThrottledMessage.trigger(user).status == S.CANCELLED


def test_the_window_slides(user):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        ThrottledMessage.trigger(user)
    with time_machine.travel(start + datetime.timedelta(minutes=30), tick=False):
        ThrottledMessage.trigger(user)
        ThrottledMessage.trigger(user)
        assert ThrottledMessage.trigger(user).status == S.CANCELLED
    # An hour after the first: one slot is free again, not three.
    with time_machine.travel(start + HOUR, tick=False):
        assert ThrottledMessage.trigger(user).status == S.CREATED
        assert ThrottledMessage.trigger(user).status == S.CANCELLED
    with time_machine.travel(start + HOUR + datetime.timedelta(minutes=30), tick=False):
        assert [ThrottledMessage.trigger(user).status for _ in range(3)] == [S.CREATED] * 2 + [S.CANCELLED]
    # Never more than 3 waiting rows in any hour of schedules.
    times = sorted(Notification.objects.filter(status=S.CREATED).values_list("datetime_scheduled", flat=True))
    assert all(later - earlier >= HOUR for earlier, later in zip(times, times[3:], strict=False))


def test_the_excess_is_deferred_to_the_window_end(user, caplog):
    start = timezone.now()
    with time_machine.travel(start, tick=False), caplog.at_level(logging.WARNING, logger="transmissions"):
        made = [ThrottledDeferMessage.trigger(user) for _ in range(5)]
    assert [n.status for n in made] == [S.CREATED] * 5
    assert [n.datetime_scheduled for n in made] == [
        start,
        start,
        start + HOUR,
        start + HOUR,
        start + 2 * HOUR,
    ]
    assert made[2].reason.startswith("throttled: more than 2 per 1:00:00 for this user; deferred to ")
    assert made[0].reason == ""
    assert Notification.objects.held("throttled").count() == 3
    assert sum("deferred" in r.getMessage() for r in caplog.records) == 3
    assert process_all_notifications() == 2
    with time_machine.travel(start + HOUR, tick=False):
        assert process_all_notifications() == 2


def test_per_content(user):
    a, b = Article.objects.create(title="a"), Article.objects.create(title="b")
    assert ThrottledPerContentMessage.trigger(user, content=a).status == S.CREATED
    assert ThrottledPerContentMessage.trigger(user, content=b).status == S.CREATED
    # The throttle answers first: the second for a within the hour is dropped (written
    # CANCELLED, without the behaviour's key)...
    assert ThrottledPerContentMessage.trigger(user, content=a).status == S.CANCELLED
    process_all_notifications()
    # ...and once sent, the hour still holds.
    assert ThrottledPerContentMessage.trigger(user, content=a).status == S.CANCELLED
    with pytest.raises(InvalidTrigger, match="give it a saved content"):
        ThrottledPerContentMessage.trigger(user)


def test_per_content_needs_a_content(user):
    @message("throttled-default-content", throttle=Throttle(1, HOUR, per="content"))
    class PerContent(BaseChannel):
        def send(self):
            pass

    try:
        with pytest.raises(InvalidTrigger, match="throttled per content"):
            PerContent.trigger(user)
        assert not Notification.objects.exists()
    finally:
        registry.unregister("throttled-default-content")


def test_a_refused_trigger_keeps_its_slot_free(user):
    """A behaviour that refuses the row leaves the slots as they were (nothing is written)."""
    a = Article.objects.create(title="a")
    first = ThrottledPerContentMessage.trigger(user, content=a)
    with time_machine.travel(timezone.now() + 2 * HOUR):
        # The slot is ready but TRIGGER_ONCE_PER_CONTENT refuses: None, and the first row
        # still holds its slot.
        assert ThrottledPerContentMessage.trigger(user, content=a) is None
    first.refresh_from_db()
    assert first.throttle_slot is not None
    assert Notification.objects.count() == 1


def test_with_an_idempotency_key(user):
    first = ThrottledMessage.trigger(user, idempotency_key="k")
    assert ThrottledMessage.trigger(user, idempotency_key="k").pk == first.pk
    assert Notification.objects.count() == 1
    for i in range(2):
        ThrottledMessage.trigger(user, idempotency_key=f"k{i}")
    dropped = ThrottledMessage.trigger(user, idempotency_key="late")
    assert dropped.status == S.CANCELLED
    assert ThrottledMessage.trigger(user, idempotency_key="late").pk == dropped.pk


def test_trigger_many(user):
    users = [user, make_user("bob"), make_user("cy")]
    ThrottledMessage.trigger(user)
    ThrottledMessage.trigger(user)
    first = ThrottledMessage.trigger_many(users)
    assert [n.status for n in first] == [S.CREATED] * 3
    second = ThrottledMessage.trigger_many(users)
    assert [n.status for n in second] == [S.CANCELLED, S.CREATED, S.CREATED]


def test_a_throttled_trigger_costs_a_read_and_an_insert(user):
    ThrottledMessage.trigger(user)
    with CaptureQueriesContext(connection) as ctx:
        ThrottledMessage.trigger(user)
    assert len(statements(ctx)) == 2, statements(ctx)


@pytest.mark.parametrize(
    "throttle",
    [
        3,
        (0, HOUR),
        (3, 3600),
        (3, datetime.timedelta(0)),
        Throttle(3, HOUR, per="site"),
        Throttle(3, HOUR, excess="queue"),
        (True, HOUR),
    ],
    ids=str,
)
def test_bad_throttle_is_refused_at_registration(throttle):
    with pytest.raises(MessageRegistrationError, match="throttle"):

        @message("bad-throttle", throttle=throttle)
        class Bad(BaseChannel):
            def send(self):
                pass


@pytest.mark.parametrize("behavior", [TriggerBehavior.LAST_ONLY, TriggerBehavior.DELETE_AFTER_PROCESSING])
def test_throttle_refuses_behaviours_that_give_slots_up_early(behavior):
    with pytest.raises(MessageRegistrationError, match="does not combine"):

        @message("bad-throttle", behavior=behavior, throttle=(3, HOUR))
        class Bad(BaseChannel):
            def send(self):
                pass


@pytest.mark.only_on("mysql")
@pytest.mark.django_db(transaction=True)
def test_an_innodb_deadlock_in_our_own_transaction_is_a_lost_race_in_the_callers_it_is_not():
    """A real deadlock on MariaDB: this connection locks user a then wants b, another holds b
    (with an UPDATE, so InnoDB rolls this one back) and wants a. Raised from transmissions'
    own transaction, the dialect calls it a lost race (throttle.write goes round again);
    raised inside a caller's transaction, which InnoDB has rolled back whole, it does not."""
    import threading

    from django.db import OperationalError, connections, transaction

    from transmissions import db
    from transmissions.models import Notification

    dialect = db.dialect("default", Notification)
    a, b = make_user("dl-a"), make_user("dl-b")
    # The other transaction changes these too: InnoDB rolls back the lighter of two
    # deadlocked transactions (rows changed and locks held), which must be this one.
    heavy = [make_user(f"dl-h{i}").pk for i in range(20)]
    table = connection.ops.quote_name(type(a)._meta.db_table)

    def deadlock() -> OperationalError:
        holds_b = threading.Event()

        def the_other():
            other = connections.create_connection("default")
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                marks = ", ".join(["%s"] * (len(heavy) + 1))
                cursor.execute(f"UPDATE {table} SET first_name = 'x' WHERE id IN ({marks})", [b.pk, *heavy])
                holds_b.set()
                try:
                    cursor.execute(f"UPDATE {table} SET last_name = 'x' WHERE id = %s", [a.pk])
                finally:
                    cursor.execute("ROLLBACK")
                    other.close()

        thread = threading.Thread(target=the_other)
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [a.pk])
                    thread.start()
                    assert holds_b.wait(10)
                    cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [b.pk])
        except OperationalError as exc:
            return exc
        finally:
            thread.join(10)
        raise AssertionError("no deadlock")

    exc = deadlock()
    assert exc.__cause__.args[0] == 1213, exc
    assert dialect.lost_race(exc)
    assert not dialect.lost_race(OperationalError("another error"))
    with pytest.raises(OperationalError):  # the caller's transaction: InnoDB rolled it back
        with transaction.atomic():
            make_user("dl-c")
            inner = deadlock()
            assert not dialect.lost_race(inner)
            raise inner
