"""idempotency.py: callers' keys on trigger() and trigger_many(), their window, cancel_key()."""

import datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from tests.messages import DefaultMessage, LastOnlyMessage, SendOnceMessage, TriggerOnceMessage
from tests.models import Article
from tests.utils import make_user, statements
from transmissions.exceptions import DuplicateNotification, InvalidTrigger
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


@pytest.fixture
def user():
    return make_user()


def test_same_key_returns_the_existing_notification(user):
    first = DefaultMessage.trigger(user, idempotency_key="order-42:shipped", data={"n": 1})
    again = DefaultMessage.trigger(user, idempotency_key="order-42:shipped", data={"n": 2})
    assert first is not None and again is not None
    assert again.pk == first.pk
    assert again.data == {"n": 1}  # the first trigger's row, untouched
    assert Notification.objects.count() == 1
    assert first.idempotency_key == "order-42:shipped"


def test_different_keys_make_different_rows(user):
    a = DefaultMessage.trigger(user, idempotency_key="a")
    b = DefaultMessage.trigger(user, idempotency_key="b")
    c = DefaultMessage.trigger(user)
    assert len({a.pk, b.pk, c.pk}) == 3


def test_the_key_holds_after_the_row_is_sent(user):
    first = DefaultMessage.trigger(user, idempotency_key="k")
    process_all_notifications()
    again = DefaultMessage.trigger(user, idempotency_key="k")
    assert again.pk == first.pk and again.status == S.SUCCESSFULLY_SENT
    assert Notification.objects.count() == 1


def test_after_the_window_a_new_row_takes_the_key(user):
    with override_settings(TRANSMISSIONS_IDEMPOTENCY_WINDOW=datetime.timedelta(hours=1)):
        first = DefaultMessage.trigger(user, idempotency_key="k")
        with time_machine.travel(timezone.now() + datetime.timedelta(minutes=59)):
            assert DefaultMessage.trigger(user, idempotency_key="k").pk == first.pk
        with time_machine.travel(timezone.now() + datetime.timedelta(minutes=61)):
            second = DefaultMessage.trigger(user, idempotency_key="k")
            assert second.pk != first.pk
            assert DefaultMessage.trigger(user, idempotency_key="k").pk == second.pk
    first.refresh_from_db()
    assert first.idempotency_key is None  # gave the key up; still waiting to be sent
    assert first.status == S.CREATED
    assert Notification.objects.get(idempotency_key="k").pk == second.pk


def test_window_in_seconds(user):
    with override_settings(TRANSMISSIONS_IDEMPOTENCY_WINDOW=10):
        first = DefaultMessage.trigger(user, idempotency_key="k")
        with time_machine.travel(timezone.now() + datetime.timedelta(seconds=11)):
            assert DefaultMessage.trigger(user, idempotency_key="k").pk != first.pk


def test_independent_of_the_behaviour_key(user):
    first = TriggerOnceMessage.trigger(user, idempotency_key="one")
    # The behaviour refuses a second pending row whatever the key...
    assert TriggerOnceMessage.trigger(user, idempotency_key="two") is None
    with pytest.raises(DuplicateNotification):
        TriggerOnceMessage.trigger(user, idempotency_key="two", silent=False)
    # ...the first key still names the first row...
    assert TriggerOnceMessage.trigger(user, idempotency_key="one").pk == first.pk
    assert Notification.objects.count() == 1
    assert not Notification.objects.filter(idempotency_key="two").exists()
    # ...and a key that names a sent SEND_ONCE row returns it rather than None.
    sent = SendOnceMessage.trigger(user, idempotency_key="s")
    process_all_notifications()
    assert SendOnceMessage.trigger(user) is None
    assert SendOnceMessage.trigger(user, idempotency_key="s").pk == sent.pk


def test_last_only_with_a_repeated_key_does_not_cancel_its_row(user):
    first = LastOnlyMessage.trigger(user, idempotency_key="k")
    assert LastOnlyMessage.trigger(user, idempotency_key="k").pk == first.pk
    first.refresh_from_db()
    assert first.status == S.CREATED
    newer = LastOnlyMessage.trigger(user, idempotency_key="other")
    first.refresh_from_db()
    assert first.status == S.CANCELLED and newer.status == S.CREATED


def test_last_only_takes_an_expired_key_over(user):
    with override_settings(TRANSMISSIONS_IDEMPOTENCY_WINDOW=60):
        first = LastOnlyMessage.trigger(user, idempotency_key="k")
        with time_machine.travel(timezone.now() + datetime.timedelta(seconds=61)):
            second = LastOnlyMessage.trigger(user, idempotency_key="k")
    assert second.pk != first.pk
    first.refresh_from_db()
    assert (first.status, first.idempotency_key) == (S.CANCELLED, None)


@pytest.mark.parametrize("bad", ["", 42, "x" * 256, b"key"])
def test_bad_key_writes_nothing(user, bad):
    with pytest.raises(InvalidTrigger, match="idempotency_key"):
        DefaultMessage.trigger(user, idempotency_key=bad)
    assert not Notification.objects.exists()


def test_trigger_with_a_new_key_costs_one_statement(user):
    DefaultMessage.trigger(user, idempotency_key="warm")
    with CaptureQueriesContext(connection) as ctx:
        DefaultMessage.trigger(user, idempotency_key="k")
    assert len(statements(ctx)) == 1, statements(ctx)


def test_repeated_key_costs_three_statements_in_a_transaction(user):
    DefaultMessage.trigger(user, idempotency_key="k")
    with CaptureQueriesContext(connection) as ctx:
        DefaultMessage.trigger(user, idempotency_key="k")
    # The refused INSERT, the check of what refused it (on PostgreSQL and SQLite, in a
    # transaction: whether its user still exists), then the SELECT of the holder.
    assert len(statements(ctx)) == 3, statements(ctx)


@pytest.mark.django_db(transaction=True)
def test_repeated_key_costs_two_statements_outside_a_transaction():
    user = make_user("ada")
    DefaultMessage.trigger(user, idempotency_key="k")
    with CaptureQueriesContext(connection) as ctx:
        DefaultMessage.trigger(user, idempotency_key="k")
    # The refused INSERT (and on the portable path the check of what refused it), then
    # the SELECT of the holder.
    expected = 2 if connection.vendor in ("postgresql", "sqlite") else 3
    assert len(statements(ctx)) == expected, statements(ctx)


# -- trigger_many ----------------------------------------------------------------------


@pytest.fixture
def users():
    return [make_user(f"u{i}") for i in range(5)]


def test_trigger_many_with_a_key_per_user(users):
    key = lambda user: f"digest-{user.pk}"  # noqa: E731
    first = DefaultMessage.trigger_many(users[:3], idempotency_key=key)
    assert [n.idempotency_key for n in first] == [key(u) for u in users[:3]]
    again = DefaultMessage.trigger_many(users, idempotency_key=key)
    # Each user once, in order: the three existing rows and two new ones.
    assert [n.target_user_id for n in again] == [u.pk for u in users]
    assert [n.pk for n in again[:3]] == [n.pk for n in first]
    assert Notification.objects.count() == 5


def test_trigger_many_with_a_mapping(users):
    keys = {users[0]: "a", users[1].pk: "b"}  # by user or by primary key; the others get none
    made = DefaultMessage.trigger_many(users, idempotency_key=keys)
    assert [n.idempotency_key for n in made] == ["a", "b", None, None, None]
    again = DefaultMessage.trigger_many(users, idempotency_key=keys)
    assert [n.pk for n in again[:2]] == [n.pk for n in made[:2]]
    assert Notification.objects.count() == 8  # three users had no key: notified again


def test_trigger_many_leaves_out_users_the_behaviour_refuses(users):
    TriggerOnceMessage.trigger(users[0])
    made = TriggerOnceMessage.trigger_many(users[:2], idempotency_key=lambda u: f"k{u.pk}")
    assert [n.target_user_id for n in made] == [users[1].pk]


@pytest.mark.parametrize(
    "keys", [lambda u: "same", {"not": "users"}.values(), "one-key-for-all", lambda u: 7], ids=str
)
def test_trigger_many_bad_keys_write_nothing(users, keys):
    with pytest.raises(InvalidTrigger, match="idempotency_key"):
        DefaultMessage.trigger_many(users, idempotency_key=keys)
    assert not Notification.objects.exists()


def test_trigger_many_last_only_with_keys(users):
    first = LastOnlyMessage.trigger_many(users, idempotency_key=lambda u: f"k{u.pk}")
    again = LastOnlyMessage.trigger_many(users, idempotency_key=lambda u: f"k{u.pk}")
    assert [n.pk for n in again] == [n.pk for n in first]
    assert Notification.objects.filter(status=S.CREATED).count() == 5


# -- cancel_key ------------------------------------------------------------------------


def test_cancel_key_cancels_waiting_rows_and_leaves_processed_ones(user):
    article = Article.objects.create(title="a")
    waiting = DefaultMessage.trigger(user, idempotency_key="w", content=article)
    sent = DefaultMessage.trigger(user, idempotency_key="s")
    other = DefaultMessage.trigger(user, idempotency_key="o")
    Notification.objects.filter(pk=sent.pk).update(status=S.SUCCESSFULLY_SENT)
    with CaptureQueriesContext(connection) as ctx:
        assert Notification.objects.cancel_key("w", "s", "missing") == 1
    assert len(statements(ctx)) == 1 and statements(ctx)[0].startswith("UPDATE")
    rows = dict(Notification.objects.values_list("pk", "status"))
    assert rows == {waiting.pk: S.CANCELLED, sent.pk: S.SUCCESSFULLY_SENT, other.pk: S.CREATED}
    waiting.refresh_from_db()
    assert waiting.reason == "cancelled by its idempotency key"
    # The key stays with the cancelled row: a retried trigger does not bring it back.
    assert DefaultMessage.trigger(user, idempotency_key="w").pk == waiting.pk
    assert Notification.objects.cancel_key() == 0
