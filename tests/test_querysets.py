"""querysets.py: the intention-named filters and bulk helpers of Notification.objects."""

import datetime

import pytest
from django.utils import timezone

from tests.messages import DefaultMessage
from tests.utils import later, make_user
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


def test_queryset_helpers(user, django_assert_num_queries):
    bob = make_user("bob")
    for _ in range(3):
        DefaultMessage.trigger(user)
    DefaultMessage.trigger(bob)
    DefaultMessage.trigger(user, datetime_scheduled=later())
    process_all_notifications()
    assert user.notifications.unseen_count() == 3
    assert Notification.objects.for_user(bob).unseen_count() == 1
    assert user.notifications.pending().count() == 1
    # One UPDATE, and one more that ends the escalations of these rows (tests/messages.py
    # declares escalations; a project without any pays nothing).
    with django_assert_num_queries(2):
        assert user.notifications.sent().mark_seen() == 3
    assert user.notifications.unseen_count() == 0
    assert bob.notifications.unseen_count() == 1
    with django_assert_num_queries(2):
        assert user.notifications.sent().mark_consumed() == 3
    assert user.notifications.unconsumed().count() == 0
    assert Notification.objects.processed().count() == 4
    assert Notification.objects.sent().count() == 4


def test_mark_consumed_queryset_sets_seen_only_where_missing(user):
    a, b = DefaultMessage.trigger(user), DefaultMessage.trigger(user)
    process_all_notifications()
    first = timezone.now() - datetime.timedelta(days=1)
    Notification.objects.filter(pk=a.pk).update(datetime_seen=first)
    Notification.objects.all().mark_consumed()
    assert Notification.objects.get(pk=a.pk).datetime_seen == first
    b = Notification.objects.get(pk=b.pk)
    assert b.datetime_seen == b.datetime_consumed
