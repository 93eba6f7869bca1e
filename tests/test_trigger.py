import datetime

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.messages import (
    DefaultMessage,
    DeleteAfterMessage,
    LastOnlyMessage,
    SendOnceMessage,
    SendOncePerContentMessage,
    TriggerOnceMessage,
    TriggerOncePerContentMessage,
    WelcomeSMS,
)
from tests.models import Article, Document
from tests.utils import later, make_user, statements
from transmissions.exceptions import (
    DataSerializationError,
    DuplicateNotification,
    InvalidTrigger,
)
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


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
