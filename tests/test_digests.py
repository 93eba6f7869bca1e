"""digests.py: @message(digest=...): a user's triggers within a window become one send."""

import datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests import messages
from tests.messages import (
    DigestedByPostMessage,
    DigestedCommentsMessage,
    DigestedLookbackMessage,
    DigestedMessage,
    DigestedPerContentMessage,
)
from tests.models import Article
from tests.utils import make_user, statements
from transmissions import internals, message, preferences
from transmissions.behaviors import TriggerBehavior
from transmissions.channels.base import BaseChannel
from transmissions.digests import Digest
from transmissions.exceptions import InvalidTrigger, MessageRegistrationError
from transmissions.models import DigestFrequency, DigestItem, Notification
from transmissions.registry import registry
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status
HOUR = datetime.timedelta(hours=1)
START = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)


@pytest.fixture
def user():
    return make_user()


@pytest.fixture(autouse=True)
def clear_sent():
    messages.digests_sent.clear()
    yield
    messages.digests_sent.clear()


def sent():
    return [(pk, items) for _, pk, items in messages.digests_sent]


def test_triggers_within_the_window_are_one_send_with_every_item_in_order(user):
    other = make_user("other")
    with time_machine.travel(START, tick=False):
        digests = [DigestedMessage.trigger(user, data={"n": i}) for i in range(5)]
        DigestedMessage.trigger(other, data={"n": "x"})
        assert len({d.pk for d in digests}) == 1
        digest = digests[0]
        assert digest.status == S.CREATED and digest.datetime_scheduled == START + HOUR
        assert digest.digest_key == f"digested:{user.pk}"
        assert process_all_notifications() == 0  # not due before the window's end
    with time_machine.travel(START + HOUR, tick=False):
        assert process_all_notifications() == 2
    assert sorted(sent()) == sorted(
        [(digest.pk, [{"n": i} for i in range(5)]), (digest.pk + 1, [{"n": "x"}])]
    )
    digest.refresh_from_db()
    assert digest.status == S.SUCCESSFULLY_SENT and digest.dedup_key is None
    assert [i.data for i in digest.digest_items] == [{"n": i} for i in range(5)]


def test_a_trigger_after_the_claim_opens_a_new_digest(user):
    with time_machine.travel(START, tick=False):
        first = DigestedMessage.trigger(user, data={"n": 1})
    with time_machine.travel(START + HOUR, tick=False):
        # Claimed and not finished: the open digest's key is released by the claim.
        [claimed] = Notification.objects.claim(10)
        assert claimed.pk == first.pk
        second = DigestedMessage.trigger(user, data={"n": 2})
        assert second.pk != first.pk and second.datetime_scheduled == START + 2 * HOUR
        assert [i.data for i in claimed.digest_items] == [{"n": 1}]
    with time_machine.travel(START + 2 * HOUR, tick=False):
        third = DigestedMessage.trigger(user, data={"n": 3})
        assert third.pk == second.pk  # still waiting: joins it
        assert process_all_notifications() == 1
    assert sent() == [(second.pk, [{"n": 2}, {"n": 3}])]


def test_a_digest_sent_opens_the_next(user):
    with time_machine.travel(START, tick=False):
        first = DigestedMessage.trigger(user)
    with time_machine.travel(START + HOUR, tick=False):
        process_all_notifications()
        second = DigestedMessage.trigger(user)
    assert second.pk != first.pk
    assert Notification.objects.filter(digest_key=f"digested:{user.pk}").count() == 2


def test_the_channel_sees_its_items_and_their_count(user):
    article = Article.objects.create(title="a")
    seen = {}

    @message("digest-seen", digest=HOUR)
    class Seen(BaseChannel):
        def send(self):
            seen["count"] = self.digest_count
            seen["items"] = [(i.trigger_user, i.content, i.data) for i in self.digest_items]

    try:
        with time_machine.travel(START, tick=False):
            Seen.trigger(user, trigger_user=user, content=article, data={"a": 1})
            Seen.trigger(user)
        with time_machine.travel(START + HOUR, tick=False):
            process_all_notifications()
        assert seen == {"count": 2, "items": [(user, article, {"a": 1}), (None, None, {})]}
    finally:
        registry.unregister("digest-seen")


def test_per_content_and_callable_keys(user):
    a, b = Article.objects.create(title="a"), Article.objects.create(title="b")
    with time_machine.travel(START, tick=False):
        assert DigestedPerContentMessage.trigger(user, content=a).pk == (
            DigestedPerContentMessage.trigger(user, content=a).pk
        )
        assert DigestedPerContentMessage.trigger(user, content=b).pk != (
            DigestedPerContentMessage.trigger(user, content=a).pk
        )
        with pytest.raises(InvalidTrigger, match="digested per content"):
            DigestedPerContentMessage.trigger(user)
        one = DigestedByPostMessage.trigger(user, data={"post": 1})
        assert DigestedByPostMessage.trigger(user, data={"post": 1}).pk == one.pk
        assert DigestedByPostMessage.trigger(user, data={"post": 2}).pk != one.pk
        with pytest.raises(InvalidTrigger, match="digest key raised"):
            DigestedByPostMessage.trigger(user, data={})
    assert DigestItem.objects.count() == 7  # nothing written by the refused triggers


def test_lookback_sends_the_first_now_and_batches_the_rest(user):
    with time_machine.travel(START, tick=False):
        first = DigestedLookbackMessage.trigger(user, data=1)
        assert first.datetime_scheduled == START
        assert process_all_notifications() == 1
    with time_machine.travel(START + datetime.timedelta(minutes=10), tick=False):
        second = DigestedLookbackMessage.trigger(user, data=2)
        assert DigestedLookbackMessage.trigger(user, data=3).pk == second.pk
        assert second.datetime_scheduled == START + HOUR  # a window after the last one
        assert process_all_notifications() == 0
    with time_machine.travel(START + HOUR, tick=False):
        assert process_all_notifications() == 1
    with time_machine.travel(START + 3 * HOUR, tick=False):
        # Quiet for more than a window: at once again.
        assert DigestedLookbackMessage.trigger(user, data=4).datetime_scheduled == START + 3 * HOUR
    assert sent() == [(first.pk, [1]), (second.pk, [2, 3])]


def test_trigger_many_adds_an_item_per_user(user):
    users = [user, make_user("b"), make_user("c")]
    with time_machine.travel(START, tick=False):
        first = DigestedMessage.trigger_many(users, data="x")
        second = DigestedMessage.trigger_many(users, data="y")
    assert [d.pk for d in first] == [d.pk for d in second] and len({d.pk for d in first}) == 3
    assert [d.target_user for d in first] == users
    assert DigestItem.objects.count() == 6
    with pytest.raises(InvalidTrigger, match="idempotency key"):
        DigestedMessage.trigger_many(users, idempotency_key=lambda u: str(u.pk))
    assert DigestItem.objects.count() == 6


def test_a_cancelled_digest_cancels_its_items_and_a_new_one_opens(user):
    with time_machine.travel(START, tick=False):
        digest = DigestedMessage.trigger(user)
        assert digest.cancel("not wanted")
        assert DigestedMessage.trigger(user).pk != digest.pk
        with pytest.raises(InvalidTrigger, match="idempotency key"):
            DigestedMessage.trigger(user, idempotency_key="k")


def test_deleting_the_user_deletes_the_items_and_a_hand_deleted_digest_leaves_orphans(user):
    other = make_user("other")
    DigestedMessage.trigger(user, trigger_user=other)
    digest = DigestedMessage.trigger(other)
    assert DigestItem.objects.count() == 2
    user.delete()
    assert DigestItem.objects.count() == 1
    Notification.objects.filter(pk=digest.pk).delete()
    assert list(DigestItem.objects.orphaned().values_list("digest_id", flat=True)) == [digest.pk]


def test_a_joining_trigger_costs_a_locking_read_and_an_insert(user):
    DigestedMessage.trigger(user)
    with CaptureQueriesContext(connection) as ctx:
        DigestedMessage.trigger(user)
    # SELECT ... FOR NO KEY UPDATE of the open digest, INSERT of the item (MySQL/MariaDB: the
    # unlocked look-up of the key first; without the shortcuts of internals.py, the row is
    # read by the ORM after it was locked).
    extra = (1 if connection.vendor == "mysql" else 0) + (0 if internals.enabled() else 1)
    assert len(statements(ctx)) == 2 + extra, statements(ctx)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("size", [3, 30])
def test_a_batch_of_digests_costs_a_constant_number_of_queries(size):
    users = [make_user(f"u{i}") for i in range(size)]
    articles = [Article.objects.create(title=str(i)) for i in range(3)]
    with time_machine.travel(START, tick=False):
        for i, u in enumerate(users):
            for j in range(4):
                DigestedMessage.trigger(u, trigger_user=users[0], content=articles[(i + j) % 3], data=j)
    with time_machine.travel(START + HOUR, tick=False), CaptureQueriesContext(connection) as ctx:
        assert process_all_notifications(batch_size=100) == size
    assert len(messages.digests_sent) == size
    assert all(items == [0, 1, 2, 3] for _, _, items in messages.digests_sent)
    # recover, claim, the items (with their trigger users), their contents (one content type),
    # one UPDATE for the sent; MySQL/MariaDB claim in two statements and fetch the rows
    # (without the shortcuts of internals.py: the claimed rows, and their users at once).
    extra = 2 if connection.vendor == "mysql" else (0 if internals.enabled() else 1)
    users = 0 if internals.enabled() else 1
    assert len(statements(ctx)) == 5 + extra + users, statements(ctx)


def test_a_digest_is_sent_at_most_once_through_send(user):
    digest = DigestedMessage.trigger(user, data=1)
    assert digest.send() is True
    assert digest.send() is False
    assert sent() == [(digest.pk, [1])]


@pytest.mark.parametrize(
    ("attrs", "match"),
    [
        ({"digest": 3600}, "digest must be"),
        ({"digest": datetime.timedelta(0)}, "window must be"),
        ({"digest": HOUR, "digest_key": 7}, "key must be"),
        ({"digest": Digest(HOUR, lookback="yes")}, "lookback must be"),
        ({"digest_key": "content"}, "need a digest"),
        ({"digest": HOUR, "throttle": (3, HOUR)}, "throttle"),
        ({"digest": HOUR, "behavior": TriggerBehavior.TRIGGER_ONCE}, "TRIGGER_ONCE"),
    ],
    ids=str,
)
def test_bad_digest_is_refused_at_registration(attrs, match):
    behavior = attrs.pop("behavior", None)
    with pytest.raises(MessageRegistrationError, match=match):

        @message("bad-digest", behavior=behavior, **attrs)
        class Bad(BaseChannel):
            def send(self):
                pass


def test_a_digest_key_object_with_digest_key_and_lookback_overrides():
    found = Digest.coerce(Digest(HOUR), "content", True, "X")
    assert found == Digest(HOUR, "content", True)


def test_long_keys_are_hashed(user):
    @message("digest-long", digest=HOUR, digest_key=lambda content, data: "k" * 300)
    class Long(BaseChannel):
        def send(self):
            pass

    try:
        digest = Long.trigger(user)
        assert digest.digest_key.startswith("#") and len(digest.dedup_key) <= 255
        assert Long.trigger(user).pk == digest.pk
    finally:
        registry.unregister("digest-long")


def test_digest_items_of_a_plain_notification_are_empty(user):
    n = messages.DefaultMessage.trigger(user)
    assert n.digest_items == []
    fresh = Notification.objects.get(pk=DigestedMessage.trigger(user, data=5).pk)
    assert [i.data for i in fresh.digest_items] == [5]
    assert str(fresh.digest_items[0]) == f"item {fresh.digest_items[0].pk} of digest {fresh.pk}"
    assert timezone.now() >= fresh.digest_items[0].datetime_created


def test_the_admin_shows_a_digests_items(admin_client, user):
    article = Article.objects.create(title="a")
    digest = DigestedMessage.trigger(user, trigger_user=user, content=article, data={"n": 1})
    DigestedMessage.trigger(user, data={"n": 2})
    DigestItem.objects.filter(digest=digest).order_by("pk").update(data_bytes=None)
    DigestItem.objects.filter(pk=DigestItem.objects.latest("pk").pk).update(data_bytes=b"\x00junk")
    html = admin_client.get(
        reverse("admin:transmissions_notification_change", args=[digest.pk])
    ).content.decode()
    assert "Digest items" in html and "2 items" in html and f"digested:{user.pk}" in html
    assert "cannot be read" in html
    plain = messages.DefaultMessage.trigger(user)
    html = admin_client.get(
        reverse("admin:transmissions_notification_change", args=[plain.pk])
    ).content.decode()
    assert "2 items" not in html


@pytest.mark.parametrize(
    ("frequency", "window"),
    [(None, HOUR), ("instant", datetime.timedelta(0)), ("daily", 24 * HOUR), ("weekly", 7 * 24 * HOUR)],
)
def test_the_recipient_chooses_the_frequency(user, frequency, window):
    preferences.set_frequency(user, "comments", "memo", frequency)
    with time_machine.travel(START, tick=False):
        digest = DigestedCommentsMessage.trigger(user, data=1)
        assert DigestedCommentsMessage.trigger(user, data=2).pk == digest.pk
    assert digest.datetime_scheduled == START + window


def test_instant_sends_at_once_and_a_change_applies_to_the_next_digest(user):
    other = make_user("other")
    preferences.set_frequency(user, "comments", "memo", "instant")
    preferences.set_frequency(user, "comments", "memo", "instant")  # the same choice again: one row
    with time_machine.travel(START, tick=False):
        first = DigestedCommentsMessage.trigger(user, data=1)
        assert DigestedCommentsMessage.trigger(other, data=1).datetime_scheduled == START + HOUR
        assert process_all_notifications() == 1
        preferences.set_frequency(user, "comments", "memo", "daily")
        second = DigestedCommentsMessage.trigger(user, data=2)
        assert second.pk != first.pk and second.datetime_scheduled == START + 24 * HOUR
        preferences.set_frequency(user, "comments", "memo", None)  # back to the message's own
        assert DigestFrequency.objects.count() == 0
    assert sent() == [(first.pk, [1])]


def test_a_frequency_no_longer_offered_falls_back_to_the_window(user, settings):
    preferences.set_frequency(user, "comments", "memo", "weekly")
    settings.TRANSMISSIONS_DIGEST_FREQUENCIES = {"hourly": 3600, "fortnightly": datetime.timedelta(days=14)}
    with time_machine.travel(START, tick=False):
        assert DigestedCommentsMessage.trigger(user).datetime_scheduled == START + HOUR
    preferences.set_frequency(user, "comments", "memo", "fortnightly")
    assert str(DigestFrequency.objects.get()) == f"comments on memo: fortnightly (user {user.pk})"


@pytest.mark.parametrize(
    ("category", "channel", "frequency", "match"),
    [
        ("nope", "memo", "daily", "No category"),
        ("comments", "fax", "daily", "no channel"),
        ("comments", "memo", "monthly", "frequency must be one of"),
    ],
)
def test_bad_frequencies_are_refused(user, category, channel, frequency, match):
    with pytest.raises(preferences.InvalidPreference, match=match):
        preferences.set_frequency(user, category, channel, frequency)
    assert DigestFrequency.objects.count() == 0


def test_a_project_source_keeps_frequencies_its_own_way(user, settings):
    settings.TRANSMISSIONS_PREFERENCE_SOURCE = "tests.test_digests.MemorySource"
    preferences.set_frequency(user, "comments", "memo", "daily")
    assert MemorySource.chosen == {(user.pk, "comments", "memo"): "daily"}
    with time_machine.travel(START, tick=False):
        assert DigestedCommentsMessage.trigger(user).datetime_scheduled == START + 24 * HOUR
    assert DigestFrequency.objects.count() == 0


class MemorySource(preferences.ModelPreferenceSource):
    chosen: dict = {}

    def load_frequency(self, user_id, category, channel):
        return self.chosen.get((user_id, category, channel))

    def save_frequency(self, user, category, channel, frequency):
        self.chosen[(user.pk, category, channel)] = frequency


def test_the_inbox_loads_the_items_of_its_digests_at_once(client, user, django_assert_num_queries):
    from transmissions.views import prefetch_contents

    article = Article.objects.create(title="a")
    with time_machine.travel(START, tick=False):
        for u in (user, make_user("b"), make_user("c")):
            for _ in range(3):
                DigestedMessage.trigger(u, content=article)
    rows = list(Notification.objects.all())
    with django_assert_num_queries(2):  # the items, their contents
        prefetch_contents(rows)
    with django_assert_num_queries(0):
        assert [[i.content for i in n.digest_items] for n in rows] == [[article] * 3] * 3
