""" "Processed" has one meaning, transmissions 0.2's: ``datetime_processed`` is set.

The database holds it: ``Notification.active_key`` (models.py, migration 0008) is computed
from ``dedup_key`` and ``datetime_processed``, so a row marked processed however it got
there (``save()`` of a hand-set value, a queryset UPDATE, raw SQL) stops blocking
TRIGGER_ONCE, TRIGGER_ONCE_PER_CONTENT and LAST_ONLY, and is never due, pending or sent.
The SEND_ONCE family's sent rows still block: their key outlives processing.
"""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tests import messages
from tests.messages import (
    DefaultMessage,
    LastOnlyMessage,
    SendOnceMessage,
    SendOncePerContentMessage,
    TriggerOnceMessage,
    TriggerOncePerContentMessage,
)
from tests.models import Article
from tests.utils import make_user
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


def by_save(n):
    n.datetime_processed = timezone.now()
    n.save()


def by_update(n):
    Notification.objects.filter(pk=n.pk).update(datetime_processed=timezone.now())


def by_sql(n):
    table = connection.ops.quote_name(Notification._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET datetime_processed = %s WHERE id = %s",
            [connection.ops.adapt_datetimefield_value(timezone.now()), n.pk],
        )


MARKS = [by_save, by_update, by_sql]


@pytest.mark.parametrize("mark", MARKS)
def test_a_trigger_once_row_marked_processed_stops_blocking_and_is_never_sent(mark):
    user = make_user()
    first = TriggerOnceMessage.trigger(user)
    assert TriggerOnceMessage.trigger(user) is None
    mark(first)
    second = TriggerOnceMessage.trigger(user)
    assert second is not None and second.pk != first.pk
    assert TriggerOnceMessage.trigger(user) is None  # the new one blocks in turn
    first.refresh_from_db()
    assert first.status == S.CREATED and first.active_key is None
    assert first.dedup_key == f"t:trigger-once:{user.pk}"  # kept, no longer active
    rows = Notification.objects.filter(trigger_name="trigger-once")
    assert list(rows.processed()) == [first]
    assert list(rows.pending()) == [second] and list(rows.due()) == [second]
    assert not first.is_pending
    assert process_all_notifications() == 1
    assert messages.sent == [("trigger-once", second.pk)]
    assert first.send() is False
    first.refresh_from_db()
    assert first.status == S.CREATED and messages.sent == [("trigger-once", second.pk)]


@pytest.mark.parametrize("mark", MARKS)
def test_trigger_once_per_content_the_same(mark):
    user, article = make_user(), Article.objects.create(title="a")
    first = TriggerOncePerContentMessage.trigger(user, content=article)
    assert TriggerOncePerContentMessage.trigger(user, content=article) is None
    mark(first)
    assert TriggerOncePerContentMessage.trigger(user, content=article) is not None


def test_a_last_only_row_marked_processed_is_neither_replaced_nor_sent():
    user = make_user()
    first = LastOnlyMessage.trigger(user)
    by_update(first)
    second = LastOnlyMessage.trigger(user)
    first.refresh_from_db()
    assert first.status == S.CREATED and first.reason == ""  # processed: not cancelled again
    assert process_all_notifications() == 1
    assert messages.sent == [("last-only", second.pk)]


@pytest.mark.parametrize("mark", MARKS)
def test_a_send_once_row_marked_processed_still_blocks(mark):
    user, article = make_user(), Article.objects.create(title="a")
    once = SendOnceMessage.trigger(user)
    per_content = SendOncePerContentMessage.trigger(user, content=article)
    mark(once)
    mark(per_content)
    assert SendOnceMessage.trigger(user) is None
    assert SendOncePerContentMessage.trigger(user, content=article) is None
    once.refresh_from_db()
    assert once.active_key == once.dedup_key == f"s:send-once:{user.pk}"
    assert process_all_notifications() == 0  # processed: not sent either


def test_clearing_datetime_processed_makes_the_key_active_again_or_refuses():
    user = make_user()
    first = TriggerOnceMessage.trigger(user)
    by_update(first)
    second = TriggerOnceMessage.trigger(user)
    # Un-processing the first would make two rows hold one key: the database refuses.
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.filter(pk=first.pk).update(datetime_processed=None)
    second.cancel()
    Notification.objects.filter(pk=first.pk).update(datetime_processed=None)
    assert TriggerOnceMessage.trigger(user) is None


def test_a_row_marked_processed_is_not_cancelled_again():
    n = DefaultMessage.trigger(make_user())
    by_update(n)
    assert Notification.objects.filter(pk=n.pk).cancel() == 0
    n.refresh_from_db()
    assert n.status == S.CREATED and n.reason == ""
