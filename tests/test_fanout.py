import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import signals
from django.test.utils import CaptureQueriesContext

from tests.messages import (
    DefaultMessage,
    DeleteAfterMessage,
    LastOnlyMessage,
    NoValidityMessage,
    SendOnceMessage,
    SendOncePerContentMessage,
    TriggerOnceMessage,
    TriggerOncePerContentMessage,
)
from tests.models import Article, User
from tests.utils import later, make_user, statements
from transmissions import db
from transmissions import trigger as triggering
from transmissions.behaviors import TriggerBehavior
from transmissions.exceptions import DataSerializationError, InvalidTrigger, MessageRegistrationError
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


@pytest.fixture
def users():
    return [make_user(f"u{i}") for i in range(5)]


def rows(name):
    return list(Notification.objects.filter(trigger_name=name).order_by("pk"))


@pytest.mark.parametrize("cls", [DefaultMessage, DeleteAfterMessage])
def test_creates_one_row_per_user(users, cls):
    boss = make_user("boss")
    when = later()
    created = cls.trigger_many(users, trigger_user=boss, datetime_scheduled=when, data={"n": 1})
    assert [n.target_user for n in created] == users
    saved = rows(cls.trigger_name)
    assert [n.pk for n in saved] == [n.pk for n in created]
    for n in saved:
        assert (n.status, n.trigger_user, n.datetime_scheduled, n.data) == (S.CREATED, boss, when, {"n": 1})
        assert n.dedup_key is None and len(n.uuid) == 22
    assert len({n.uuid for n in saved}) == len(users)
    # What is returned reads like a saved row.
    assert created[0].data == {"n": 1} and created[0].status == S.CREATED and not created[0]._state.adding


def test_default_twice_notifies_twice(users):
    DefaultMessage.trigger_many(users)
    assert len(DefaultMessage.trigger_many(users)) == len(users)
    assert len(rows("default")) == 2 * len(users)


def test_trigger_once_skips_users_with_a_pending_row(users):
    TriggerOnceMessage.trigger(users[1])
    created = TriggerOnceMessage.trigger_many(users)
    assert [n.target_user for n in created] == [users[0], *users[2:]]
    assert len(rows("trigger-once")) == len(users)
    assert TriggerOnceMessage.trigger_many(users) == []


def test_user_listed_twice_is_notified_once_when_deduplicated(users):
    created = SendOnceMessage.trigger_many([users[0], users[1], users[0]])
    assert [n.target_user for n in created] == users[:2]
    assert len(rows("send-once")) == 2


def test_send_once_skips_sent_but_not_failed(users):
    SendOnceMessage.trigger(users[0])
    process_all_notifications()
    SendOnceMessage.trigger(users[1], data={"cancel": True})
    process_all_notifications()  # cancelled: does not block
    created = SendOnceMessage.trigger_many(users)
    assert [n.target_user for n in created] == users[1:]


@pytest.mark.parametrize("cls", [TriggerOncePerContentMessage, SendOncePerContentMessage])
def test_per_content(users, cls):
    a, b = Article.objects.create(title="a"), Article.objects.create(title="b")
    cls.trigger(users[0], content=a)
    assert [n.target_user for n in cls.trigger_many(users, content=a)] == users[1:]
    assert len(cls.trigger_many(users, content=b)) == len(users)
    with pytest.raises(InvalidTrigger, match="give it a saved content"):
        cls.trigger_many(users)


def test_last_only_cancels_each_users_waiting_rows(users):
    old = LastOnlyMessage.trigger(users[0], datetime_scheduled=later())  # not due
    sent = LastOnlyMessage.trigger(users[1])
    process_all_notifications()
    other = DefaultMessage.trigger(users[0])
    created = LastOnlyMessage.trigger_many(users, data={"v": 2})
    assert [n.target_user for n in created] == users
    old.refresh_from_db()
    assert old.status == S.CANCELLED and old.datetime_processed is not None and old.dedup_key is None
    sent.refresh_from_db()
    assert sent.status == S.SUCCESSFULLY_SENT
    other.refresh_from_db()
    assert other.status == S.CREATED
    waiting = Notification.objects.filter(trigger_name="last-only", status=S.CREATED)
    assert sorted(n.pk for n in waiting) == sorted(n.pk for n in created)
    # Again: the rows just made are replaced, one waiting row per user remains.
    again = LastOnlyMessage.trigger_many(users)
    assert waiting.count() == len(users)
    assert sorted(waiting.values_list("pk", flat=True)) == sorted(n.pk for n in again)


def test_plain_class_gets_trigger_many(users):
    assert len(NoValidityMessage.trigger_many(users)) == len(users)


def test_empty_list():
    assert DefaultMessage.trigger_many([]) == []
    assert DefaultMessage.trigger_many(iter(())) == []


def test_accepts_a_queryset(users):
    assert len(DefaultMessage.trigger_many(User.objects.all())) == len(users)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("users", "iterable of users"),
        (42, "iterable of users"),
        (None, "iterable of users"),
        ("a user", "iterable of users"),
        ([AnonymousUser()], "each of users must be a saved"),
        (["ada"], "each of users must be a saved"),
        ("unsaved", "must be saved"),
    ],
)
def test_bad_users_write_nothing(users, bad, match):
    if bad == "a user":
        bad = users[0]
    elif bad == "unsaved":
        bad = [users[0], User(username="ghost")]
    with pytest.raises(InvalidTrigger, match=match):
        DefaultMessage.trigger_many(bad)
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"datetime_scheduled": "tomorrow"}, InvalidTrigger),
        ({"content": "not a model"}, InvalidTrigger),
        ({"trigger_user": AnonymousUser()}, InvalidTrigger),
        ({"data": {"f": lambda: 1}}, DataSerializationError),
    ],
)
def test_bad_arguments_write_nothing(users, kwargs, error):
    with pytest.raises(error):
        DefaultMessage.trigger_many(users, **kwargs)
    assert not Notification.objects.exists()


def test_unregistered_class(users):
    with pytest.raises(MessageRegistrationError):
        triggering.trigger_many(object, users)


def test_failure_half_way_writes_nothing(users, monkeypatch):
    monkeypatch.setattr(triggering, "CHUNK_SIZE", 2)
    dialect = db.dialect("default", Notification)
    real = dialect.insert
    calls = []

    def fail_on_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(dialect, "insert", fail_on_third_chunk)
    with pytest.raises(RuntimeError):
        DefaultMessage.trigger_many(users)
    assert not Notification.objects.exists()


def test_with_signal_listeners_goes_through_trigger(users):
    seen = []

    def listener(sender, instance, created, **kwargs):
        seen.append(instance.target_user_id)

    signals.post_save.connect(listener, sender=Notification)
    try:
        created = TriggerOnceMessage.trigger_many([*users, users[0]])
    finally:
        signals.post_save.disconnect(listener, sender=Notification)
    assert [n.target_user for n in created] == users
    assert seen == [u.pk for u in users]


# Query counts: O(1) per chunk of CHUNK_SIZE users, whatever the number of users.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("cls", "per_chunk"),
    [
        (DefaultMessage, 1),
        (DeleteAfterMessage, 1),
        (TriggerOnceMessage, 1),
        (SendOnceMessage, 1),
        (TriggerOncePerContentMessage, 1),
        (SendOncePerContentMessage, 1),
        (LastOnlyMessage, 2),
    ],
)
@pytest.mark.parametrize("size", [3, 7])
@pytest.mark.not_on("mysql")  # MySQL/MariaDB go through trigger(), one user at a time
def test_query_count_per_chunk(monkeypatch, cls, per_chunk, size):
    monkeypatch.setattr(triggering, "CHUNK_SIZE", 3)
    users = User.objects.bulk_create([User(username=f"q{i}") for i in range(size)])
    users = list(User.objects.order_by("pk"))
    article = Article.objects.create(title="a")
    kwargs = {"content": article} if cls.behavior.per_content else {}
    cls.trigger(users[0], **kwargs)  # warm the content type cache; a user already blocked
    with CaptureQueriesContext(connection) as ctx:
        cls.trigger_many(users, **kwargs)
    chunks = -(-size // 3)
    # LAST_ONLY first locks every user's row, in one statement, where the database can.
    lock = cls.behavior is TriggerBehavior.LAST_ONLY and connection.features.has_select_for_update
    assert len(statements(ctx)) == per_chunk * chunks + lock, statements(ctx)
