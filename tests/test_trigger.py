"""trigger.py: trigger() and trigger_many(), their validation, the behaviours, the statements they cost."""

import contextlib
import datetime
import threading
import time

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import signals
from django.test.utils import CaptureQueriesContext, override_settings

from tests.messages import (
    DefaultMessage,
    DeleteAfterMessage,
    LastOnlyMessage,
    NoValidityMessage,
    SendOnceMessage,
    SendOncePerContentMessage,
    ThrottledMessage,
    TriggerOnceMessage,
    TriggerOncePerContentMessage,
    WelcomeSMS,
)
from tests.models import Article, Document, User
from tests.utils import later, make_user, statements
from transmissions import db
from transmissions import trigger as triggering
from transmissions.behaviors import TriggerBehavior
from transmissions.exceptions import (
    DataSerializationError,
    DuplicateNotification,
    InvalidTrigger,
    MessageRegistrationError,
)
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


@pytest.fixture
def users():
    return [make_user(f"u{i}") for i in range(5)]


def rows(name):
    return list(Notification.objects.filter(trigger_name=name).order_by("pk"))


@pytest.fixture
def user():
    return make_user()


def test_trigger_creates_one_created_row(user):
    before = datetime.datetime.now(datetime.UTC)
    n = DefaultMessage.trigger(user)
    assert isinstance(n, Notification)
    n.refresh_from_db()
    assert n.status == S.CREATED
    assert n.trigger_name == "default"
    assert n.target_user == user
    assert n.trigger_user is None
    assert n.datetime_scheduled >= before
    assert n.datetime_processed is None
    assert len(n.uuid) == 22
    assert n.data == {}


def test_readme_example_welcome_sms_is_scheduled_later(user):
    later_ = later(days=2)
    n = WelcomeSMS.trigger(user, datetime_scheduled=later_)
    assert n.datetime_scheduled == later_
    assert Notification.objects.due().count() == 0


def test_trigger_keeps_trigger_user_content_and_data(user):
    other = make_user("bob")
    article = Article.objects.create(title="t")
    n = DefaultMessage.trigger(user, trigger_user=other, content=article, data={"k": [1, 2]})
    n = Notification.objects.get(pk=n.pk)
    assert n.trigger_user == other
    assert n.content == article
    assert n.data == {"k": [1, 2]}


def test_uuid_primary_key_content(user):
    doc = Document.objects.create(title="d")
    n = DefaultMessage.trigger(user, content=doc)
    assert Notification.objects.get(pk=n.pk).content == doc


@pytest.mark.parametrize("cls", [DefaultMessage, DeleteAfterMessage])
def test_never_refused(user, cls):
    assert cls.trigger(user) and cls.trigger(user)
    assert Notification.objects.filter(trigger_name=cls.trigger_name).count() == 2


def test_trigger_once_refused_while_pending_any_schedule(user):
    first = TriggerOnceMessage.trigger(user, datetime_scheduled=later(days=30))
    assert TriggerOnceMessage.trigger(user) is None
    with pytest.raises(DuplicateNotification):
        TriggerOnceMessage.trigger(user, silent=False)
    assert Notification.objects.filter(trigger_name="trigger-once").count() == 1
    # Another user is not blocked.
    assert TriggerOnceMessage.trigger(make_user("bob"))
    first.cancel()
    assert TriggerOnceMessage.trigger(user)


def test_trigger_once_allowed_again_after_processing(user):
    TriggerOnceMessage.trigger(user)
    process_all_notifications()
    assert TriggerOnceMessage.trigger(user) is not None


def test_trigger_once_per_content(user):
    a, b = Article.objects.create(title="a"), Article.objects.create(title="b")
    assert TriggerOncePerContentMessage.trigger(user, content=a)
    assert TriggerOncePerContentMessage.trigger(user, content=a) is None
    assert TriggerOncePerContentMessage.trigger(user, content=b)
    doc = Document.objects.create(title="d")
    assert TriggerOncePerContentMessage.trigger(user, content=doc)
    assert TriggerOncePerContentMessage.trigger(user, content=doc) is None
    process_all_notifications()
    assert TriggerOncePerContentMessage.trigger(user, content=a)


def test_send_once_blocks_when_pending_or_sent(user):
    assert SendOnceMessage.trigger(user)
    assert SendOnceMessage.trigger(user) is None
    process_all_notifications()
    assert Notification.objects.get(trigger_name="send-once").status == S.SUCCESSFULLY_SENT
    with pytest.raises(DuplicateNotification):
        SendOnceMessage.trigger(user, silent=False)


@pytest.mark.parametrize("final", ["cancelled", "failed", "broken"])
def test_send_once_not_blocked_by_cancelled_failed_or_broken(user, final):
    if final == "cancelled":
        SendOnceMessage.trigger(user).cancel()
    elif final == "failed":
        SendOnceMessage.trigger(user)
        Notification.objects.update(trigger_name="always-fails")
        process_all_notifications()
        Notification.objects.update(trigger_name="send-once")
    else:
        SendOnceMessage.trigger(user, data={"cancel": True})
        process_all_notifications()  # check_validity false: CANCELLED
        assert Notification.objects.get().status == S.CANCELLED
    assert SendOnceMessage.trigger(user) is not None


def test_send_once_failed_row_does_not_block(user):
    # A SEND_ONCE message whose send failed, recorded as such by processing.
    n = SendOnceMessage.trigger(user)
    Notification.objects.filter(pk=n.pk).update(status=S.FAILED, dedup_key=None)
    assert SendOnceMessage.trigger(user) is not None


def test_send_once_per_content(user):
    a, b = Article.objects.create(title="a"), Article.objects.create(title="b")
    assert SendOncePerContentMessage.trigger(user, content=a)
    process_all_notifications()
    assert SendOncePerContentMessage.trigger(user, content=a) is None
    assert SendOncePerContentMessage.trigger(user, content=b)


def test_last_only_cancels_waiting_rows(user):
    first = LastOnlyMessage.trigger(user, datetime_scheduled=later())
    second = LastOnlyMessage.trigger(user)
    first.refresh_from_db()
    assert first.status == S.CANCELLED and first.datetime_processed is not None
    third = LastOnlyMessage.trigger(user)
    second.refresh_from_db()
    assert second.status == S.CANCELLED
    assert list(Notification.objects.pending().values_list("pk", flat=True)) == [third.pk]
    # Other users' rows are untouched.
    other = LastOnlyMessage.trigger(make_user("bob"))
    third.refresh_from_db()
    assert third.status == S.CREATED and other.status == S.CREATED


def test_last_only_leaves_processed_rows_alone(user):
    LastOnlyMessage.trigger(user)
    process_all_notifications()
    LastOnlyMessage.trigger(user)
    assert sorted(Notification.objects.values_list("status", flat=True)) == [S.CREATED, S.SUCCESSFULLY_SENT]


@pytest.mark.parametrize("cls", [TriggerOncePerContentMessage, SendOncePerContentMessage])
def test_per_content_needs_content(user, cls):
    with pytest.raises(InvalidTrigger, match="saved content"):
        cls.trigger(user)
    with pytest.raises(InvalidTrigger, match="saved"):
        cls.trigger(user, content=Article(title="unsaved"))
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    "bad_user", [None, AnonymousUser(), "ada", 1], ids=["none", "anonymous", "str", "int"]
)
def test_bad_target_user(bad_user):
    with pytest.raises(InvalidTrigger, match="target_user"):
        DefaultMessage.trigger(bad_user)
    assert not Notification.objects.exists()


def test_unsaved_users(user):
    from tests.models import User

    with pytest.raises(InvalidTrigger, match="saved"):
        DefaultMessage.trigger(User(username="ghost"))
    with pytest.raises(InvalidTrigger, match="trigger_user"):
        DefaultMessage.trigger(user, trigger_user=AnonymousUser())
    assert not Notification.objects.exists()


def test_unserializable_data(user):
    with pytest.raises(DataSerializationError, match="serializer cannot store"):
        DefaultMessage.trigger(user, data={"f": lambda: 1})
    assert not Notification.objects.exists()


@override_settings(TRANSMISSIONS_MAX_DATA_BYTES=1000)
def test_data_over_the_size_limit_is_refused_and_nothing_written(user):
    bob = make_user("bob")
    big = {"blob": "x" * 1000}
    with pytest.raises(
        InvalidTrigger, match=r"data takes 10\d\d bytes serialized, more than TRANSMISSIONS_MAX"
    ):
        DefaultMessage.trigger(user, data=big)
    with transaction.atomic():
        DefaultMessage.trigger(bob)  # the caller's other work survives the refusal
        with pytest.raises(InvalidTrigger, match="TRANSMISSIONS_MAX_DATA_BYTES"):
            DefaultMessage.trigger_many([user, bob], data=big)
    assert list(Notification.objects.values_list("target_user", flat=True)) == [bob.pk]
    assert DefaultMessage.trigger(user, data={"blob": "x" * 900}) is not None  # under the limit


@pytest.mark.parametrize("value", ["2030-01-01", 5, datetime.date(2030, 1, 1)])
def test_datetime_scheduled_must_be_a_datetime(user, value):
    with pytest.raises(InvalidTrigger, match="datetime_scheduled must be a datetime"):
        DefaultMessage.trigger(user, datetime_scheduled=value)
    assert not Notification.objects.exists()


def test_naive_datetime_refused(user):
    with pytest.raises(InvalidTrigger, match="naive"):
        DefaultMessage.trigger(user, datetime_scheduled=datetime.datetime(2030, 1, 1))
    assert not Notification.objects.exists()


def test_content_must_be_a_model(user):
    with pytest.raises(InvalidTrigger, match="model instance"):
        DefaultMessage.trigger(user, content="article-1")


def test_refused_trigger_does_not_break_callers_transaction(user):
    TriggerOnceMessage.trigger(user)
    with transaction.atomic():
        assert TriggerOnceMessage.trigger(user) is None
        # The transaction is still usable.
        assert DefaultMessage.trigger(user)
    assert Notification.objects.count() == 2


def test_rolled_back_trigger_leaves_nothing(user):
    with pytest.raises(RuntimeError), transaction.atomic():
        DefaultMessage.trigger(user)
        raise RuntimeError
    assert not Notification.objects.exists()


# Query counts, outside any transaction (what a view in autocommit mode pays).
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("cls", "queries"),
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
def test_trigger_query_count(cls, queries):
    user = make_user()
    article = Article.objects.create(title="a")
    kwargs = {"content": article} if cls.behavior.per_content else {}
    cls.trigger(user, **kwargs)  # warm the content type cache
    Notification.objects.all().delete()
    if cls is LastOnlyMessage and connection.features.has_select_for_update:
        queries += 1  # the lock on the user's row that serialises LAST_ONLY triggers
    with CaptureQueriesContext(connection) as ctx:
        cls.trigger(user, **kwargs)
    assert len(statements(ctx)) == queries, statements(ctx)


@pytest.mark.django_db(transaction=True)
def test_refused_trigger_query_count():
    user = make_user()
    TriggerOnceMessage.trigger(user)
    with CaptureQueriesContext(connection) as ctx:
        assert TriggerOnceMessage.trigger(user) is None
    if connection.vendor in ("postgresql", "sqlite"):
        # INSERT ... ON CONFLICT (dedup_key) DO NOTHING RETURNING: nothing returned.
        assert len(statements(ctx)) == 1, statements(ctx)
        assert "ON CONFLICT" in statements(ctx)[0]
    else:
        # The failed INSERT, then the check that it failed on the dedup key.
        assert len(statements(ctx)) == 2


# With pre_save/post_save listeners, trigger() goes through Model.save() so they run.
@pytest.fixture
def save_listener():
    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.trigger_name)

    from django.db.models.signals import post_save

    post_save.connect(listener, sender=Notification)
    yield seen
    post_save.disconnect(listener, sender=Notification)


def test_signal_listeners_see_every_trigger(user, save_listener):
    assert DefaultMessage.trigger(user)
    assert TriggerOnceMessage.trigger(user)
    assert TriggerOnceMessage.trigger(user) is None
    with pytest.raises(DuplicateNotification):
        TriggerOnceMessage.trigger(user, silent=False)
    first = LastOnlyMessage.trigger(user)
    second = LastOnlyMessage.trigger(user)
    first.refresh_from_db()
    assert first.status == S.CANCELLED and second.status == S.CREATED
    assert save_listener == ["default", "trigger-once", "last-only", "last-only"]
    with transaction.atomic():
        assert TriggerOnceMessage.trigger(user) is None
        assert DefaultMessage.trigger(user)
    assert Notification.objects.count() == 5


def test_init_listeners_see_triggered_notifications(user):
    from django.db.models.signals import post_init

    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.trigger_name)

    post_init.connect(listener, sender=Notification)
    try:
        n = DefaultMessage.trigger(user, data={"a": 1})
    finally:
        post_init.disconnect(listener, sender=Notification)
    assert seen == ["default"]
    assert n.pk and n.data == {"a": 1} and n.status == S.CREATED and n.target_user == user


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
    # trigger_many's own transaction: the INSERTs do not check the users (its COMMIT does).
    assert len(statements(ctx)) == per_chunk * chunks + lock, statements(ctx)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("many", [False, True], ids=["trigger", "trigger_many"])
@pytest.mark.parametrize("who", ["target", "trigger_user"])
def test_a_user_deleted_meanwhile_is_invalid_trigger_with_nothing_written(many, who):
    """The user object is loaded, then its row is deleted (by another request, say), then it
    is notified outside a transaction: InvalidTrigger, nothing written. (Before:
    IntegrityError.) Inside a caller's transaction: the tests below."""
    ada, bob, gone = make_user("ada"), make_user("bob"), make_user("gone")
    User.objects.filter(pk=gone.pk).delete()  # ``gone`` is still in memory
    target, trigger_user = (gone, None) if who == "target" else (ada, gone)
    with pytest.raises(InvalidTrigger, match="do not exist: deleted since they were loaded"):
        if many:
            DefaultMessage.trigger_many([bob, target], trigger_user=trigger_user)
        else:
            DefaultMessage.trigger(target, trigger_user=trigger_user)
    assert not Notification.objects.exists()
    assert DefaultMessage.trigger(bob) is not None


def _trigger_for(path, target, trigger_user, others):
    """Notify ``target`` (beside ``others`` with trigger_many) through one write path."""
    cls = {"keyed": DefaultMessage, "throttled": ThrottledMessage}.get(path, path)
    kwargs = {"trigger_user": trigger_user}
    if others is None:
        if path == "keyed":
            kwargs["idempotency_key"] = "key"
        return cls.trigger(target, **kwargs)
    if path == "keyed":
        kwargs["idempotency_key"] = lambda user: f"key-{user.pk}"
    return cls.trigger_many([*others, target], **kwargs)


PATHS = [DefaultMessage, SendOnceMessage, LastOnlyMessage, "keyed", "throttled"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("many", [False, True], ids=["trigger", "trigger_many"])
@pytest.mark.parametrize("who", ["target", "trigger_user"])
@pytest.mark.parametrize("path", PATHS, ids=lambda p: getattr(p, "trigger_name", p))
def test_a_user_deleted_in_the_callers_transaction_is_invalid_trigger_there(many, who, path):
    """The caller deletes a user and then notifies it, in one transaction: InvalidTrigger at the
    call, nothing of the trigger written, and the caller's other work commits. (Before, on
    PostgreSQL and SQLite: the foreign key, checked at COMMIT, failed the caller's whole
    transaction with IntegrityError.)"""
    ada, bob, gone = make_user("ada"), make_user("bob"), make_user("gone")
    target, trigger_user = (gone, None) if who == "target" else (ada, gone)
    with transaction.atomic():
        Article.objects.create(title="the caller's other work")
        User.objects.filter(pk=gone.pk).delete()  # ``gone`` is still in memory
        with pytest.raises(InvalidTrigger, match=rf"user\(s\) \[{gone.pk}\] do not exist: deleted since"):
            _trigger_for(path, target, trigger_user, [bob] if many else None)
        assert not Notification.objects.exists()
        assert DefaultMessage.trigger(bob) is not None
    assert Article.objects.filter(title="the caller's other work").exists()
    assert list(Notification.objects.values_list("target_user", flat=True)) == [bob.pk]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("many", [False, True], ids=["trigger", "trigger_many"])
@pytest.mark.parametrize("path", PATHS, ids=lambda p: getattr(p, "trigger_name", p))
@pytest.mark.not_on("mysql")  # it checks foreign keys at the INSERT: the other tests cover it
def test_a_user_deleted_by_another_connection_before_the_insert_is_invalid_trigger(many, path):
    """Another connection deletes the user and commits while the caller's transaction is open,
    before the trigger's INSERT: InvalidTrigger at the call, the caller's work commits."""
    ada, bob = make_user("ada"), make_user("bob")
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with transaction.atomic():
            if connection.vendor != "sqlite":  # SQLite: one writer, so the caller writes after
                Article.objects.create(title="the caller's other work")
            with other.cursor() as cursor:  # autocommit: committed on return
                table, key = User._meta.db_table, User._meta.pk.column
                cursor.execute(f"DELETE FROM {table} WHERE {key} = %s", [ada.pk])
            with pytest.raises(InvalidTrigger, match=rf"user\(s\) \[{ada.pk}\] do not exist"):
                _trigger_for(path, ada, None, [bob] if many else None)
            if connection.vendor == "sqlite":
                Article.objects.create(title="the caller's other work")
            assert DefaultMessage.trigger(bob) is not None
    finally:
        other.close()
    assert Article.objects.filter(title="the caller's other work").exists()
    assert list(Notification.objects.values_list("target_user", flat=True)) == [bob.pk]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("many", [False, True], ids=["trigger", "trigger_many"])
@pytest.mark.parametrize("who", ["target", "trigger_user"])
@pytest.mark.parametrize("path", PATHS, ids=lambda p: getattr(p, "trigger_name", p))
def test_a_user_deleted_meanwhile_fails_transmissions_own_commit_as_invalid_trigger(many, who, path):
    """Called outside a transaction, the transactions trigger_many() and LAST_ONLY (and the
    idempotency key's, the throttle's) open are their own: the INSERTs take their rows as
    given (no check of the users) and the foreign key, checked at that COMMIT (PostgreSQL,
    SQLite) or at the INSERT (MariaDB), fails inside the call, which turns it into
    InvalidTrigger: nothing written, the next trigger works."""
    ada, bob, gone = make_user("ada"), make_user("bob"), make_user("gone")
    User.objects.filter(pk=gone.pk).delete()  # ``gone`` is still in memory
    target, trigger_user = (gone, None) if who == "target" else (ada, gone)
    with CaptureQueriesContext(connection) as ctx:
        with pytest.raises(InvalidTrigger, match=rf"user\(s\) \[{gone.pk}\] do not exist: deleted since"):
            _trigger_for(path, target, trigger_user, [bob] if many else None)
    assert not [q["sql"] for q in ctx.captured_queries if "EXISTS" in q["sql"].upper()]
    assert not Notification.objects.exists()
    assert DefaultMessage.trigger(bob) is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("many", [False, True], ids=["trigger", "trigger_many"])
@pytest.mark.parametrize("callers", [False, True], ids=["own", "callers"])
def test_a_user_deleted_meanwhile_on_the_portable_path(save_listener, many, callers):
    """With save() listeners (the portable path): InvalidTrigger, nothing of it written, in
    transmissions' own transaction (its COMMIT fails inside the call) and in the caller's
    (one query after the INSERTs, as the COMMIT would be too late)."""
    bob, gone = make_user("bob"), make_user("gone")
    User.objects.filter(pk=gone.pk).delete()
    with transaction.atomic() if callers else contextlib.nullcontext():
        # Which check refused it: the query after the INSERTs (in the caller's transaction,
        # where the foreign keys wait for its COMMIT), or the foreign key inside the call.
        deferred = callers and connection.features.can_defer_constraint_checks
        said = rf"user\(s\) \[{gone.pk}\] do not exist"
        if deferred:
            said = "the user to notify .* does not exist"
        with pytest.raises(InvalidTrigger, match=said):
            _trigger_for(LastOnlyMessage, gone, None, [bob] if many else None)
        assert not Notification.objects.exists()
        assert DefaultMessage.trigger(bob) is not None
    assert list(Notification.objects.values_list("target_user", flat=True)) == [bob.pk]


@pytest.mark.django_db(transaction=True)
@pytest.mark.only_on("postgresql")
@pytest.mark.parametrize("many", [False, True], ids=["trigger", "trigger_many"])
@pytest.mark.parametrize("path", [DefaultMessage, LastOnlyMessage], ids=lambda p: p.trigger_name)
def test_a_delete_uncommitted_at_the_insert_then_committed_never_fails_the_callers_commit(many, path):
    """Another connection has deleted the user, not committed, when the trigger's INSERT runs
    in the caller's transaction; it commits while the INSERT waits. The trigger raises
    InvalidTrigger or leaves a row whose user exists; the caller's COMMIT never fails. (The
    INSERT waits on the deleting transaction: its ``FOR KEY SHARE`` of the user, which the
    delete's row lock holds back, until that commits; then the user is gone.)"""
    ada, bob = make_user("ada"), make_user("bob")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        ours = cursor.fetchone()[0]
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    other.set_autocommit(False)
    with other.cursor() as cursor:
        cursor.execute(f"DELETE FROM {User._meta.db_table} WHERE {User._meta.pk.column} = %s", [ada.pk])
    raw = other.connection  # the driver's connection: the thread below uses it alone
    waited = []

    def commit_once_the_insert_waits() -> None:
        deadline = time.monotonic() + 10
        with raw.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute("SELECT pg_blocking_pids(%s)", [ours])
                if cursor.fetchone()[0]:
                    waited.append(True)
                    break
                time.sleep(0.01)
        raw.commit()

    thread = threading.Thread(target=commit_once_the_insert_waits)
    outcome = "written"
    try:
        with transaction.atomic():
            Article.objects.create(title="the caller's other work")
            thread.start()
            try:
                _trigger_for(path, ada, None, [bob] if many else None)
            except InvalidTrigger:
                outcome = "refused"
        # The caller's COMMIT passed: no IntegrityError.
    finally:
        thread.join()
        other.close()
    assert waited == [True]  # the INSERT ran while the delete was not committed
    assert Article.objects.filter(title="the caller's other work").exists()
    if outcome == "refused":
        assert not Notification.objects.exists()
    else:
        written = set(Notification.objects.values_list("target_user", flat=True))
        assert written and written <= set(User.objects.values_list("pk", flat=True))
    assert outcome == "refused"  # what this implementation does (the user is gone by then)


@pytest.mark.parametrize("cls", [DefaultMessage, SendOnceMessage])
def test_the_returned_notification_reads_like_the_orms(user, cls):
    """Built from the row trigger() wrote (its defaults, its datetimes, the id the INSERT gave),
    it holds every column as a fresh read does."""
    at = later(hours=1)
    n = cls.trigger(user, trigger_user=user, datetime_scheduled=at, data={"k": 1})
    fresh = Notification.objects.get(pk=n.pk)
    names = [f.attname for f in Notification._meta.concrete_fields if f.attname != "active_key"]
    assert {name: getattr(n, name) for name in names} == {name: getattr(fresh, name) for name in names}
    assert n.datetime_scheduled == at and n.reason == "" and n.provider_message_id == ""


def test_pre_save_listeners_connected_between_triggers_switch_the_path(user):
    """The dialect follows pre_save/post_save receivers as they come and go: triggers while
    one is connected go through save() (it sees them), the others do not."""
    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.uuid)

    first = DefaultMessage.trigger(user)
    signals.pre_save.connect(listener, sender=Notification)
    try:
        second = DefaultMessage.trigger(user)
    finally:
        signals.pre_save.disconnect(listener, sender=Notification)
    third = DefaultMessage.trigger(user)
    assert seen == [second.uuid]
    assert Notification.objects.filter(pk__in=[first.pk, second.pk, third.pk]).count() == 3


@pytest.mark.django_db(transaction=True)
def test_trigger_after_the_connection_was_closed(user):
    """What trigger() keeps per connection (its dialect, its datetime adapter) outlives a closed
    connection: the next trigger opens a new one and writes its row, in one query."""
    DefaultMessage.trigger(user)
    connection.close()
    with CaptureQueriesContext(connection) as ctx:
        n = DefaultMessage.trigger(user, datetime_scheduled=later(minutes=5))
    assert len(statements(ctx)) == 1
    assert Notification.objects.get(pk=n.pk).datetime_scheduled == n.datetime_scheduled
    assert Notification.objects.count() == 2


@override_settings(USE_TZ=False)
def test_trigger_under_override_settings_use_tz_false(user):
    """Settings read on the hot path follow override_settings: without USE_TZ the row's
    datetimes are naive and stored as the ORM stores them."""
    n = DefaultMessage.trigger(user, datetime_scheduled=datetime.datetime(2030, 1, 2, 3, 4, 5))
    fresh = Notification.objects.get(pk=n.pk)
    assert fresh.datetime_scheduled == datetime.datetime(2030, 1, 2, 3, 4, 5) == n.datetime_scheduled
    assert fresh.datetime_created.tzinfo is None


@pytest.mark.not_on("mysql")  # the portable path: Model.save() names every column
def test_a_trigger_leaves_out_the_columns_the_database_fills_the_same_way(user):
    """trigger()'s one-row INSERT names only the columns whose value is not what the database
    writes by itself (NULL, or the column's db_default): the row reads the same either way."""
    with CaptureQueriesContext(connection) as ctx:
        plain = DefaultMessage.trigger(user)
    with CaptureQueriesContext(connection) as ctx_full:
        full = DefaultMessage.trigger(user, trigger_user=user, data={"a": 1})
    (insert,) = statements(ctx)
    (insert_full,) = statements(ctx_full)
    for column in ("trigger_user_id", "data", "reason", "provider_message_id", "dedup_key"):
        assert column not in insert
    assert "trigger_user_id" in insert_full and '"data"' in insert_full.replace("`", '"')
    for n in (plain, full):
        fresh = Notification.objects.get(pk=n.pk)
        assert (fresh.reason, fresh.provider_message_id, fresh.channel, fresh.dedup_key) == ("", "", "", None)
    assert Notification.objects.get(pk=plain.pk).trigger_user_id is None
    assert Notification.objects.get(pk=full.pk).data == {"a": 1}
