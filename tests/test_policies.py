"""policies.py: holding notifications back before they are sent (cancel or defer, with a reason)."""

import datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from tests import messages, policies
from tests.messages import DefaultMessage, SendOnceMessage
from tests.utils import make_user, statements
from transmissions import internals
from transmissions.checks import check_settings
from transmissions.models import Notification
from transmissions.worker import process_all_notifications, run

pytestmark = pytest.mark.django_db
S = Notification.Status
BOTH = ["tests.policies.QuietForBob", "tests.policies.NothingForCarol"]


@pytest.fixture(autouse=True)
def _clear():
    policies.prepared.clear()


@override_settings(TRANSMISSIONS_POLICIES=BOTH)
def test_first_policy_to_hold_decides_and_the_others_are_sent():
    ada, bob, carol = make_user(), make_user("bob"), make_user("carol")
    a, b, c = DefaultMessage.trigger(ada), DefaultMessage.trigger(bob), DefaultMessage.trigger(carol)
    summary = run()
    assert messages.sent == [("default", a.pk)]
    a, b, c = (Notification.objects.get(pk=n.pk) for n in (a, b, c))
    # bob: deferred by the first policy (the second would have cancelled him).
    assert (b.status, b.attempts, b.reason) == (S.CREATED, 0, "quiet-hours: bob's quiet hours")
    assert b.datetime_scheduled > timezone.now() + datetime.timedelta(minutes=59)
    assert (c.status, c.reason) == (S.CANCELLED, "opted-out: carol opted out of default")
    assert set(Notification.objects.held()) == {b, c}
    assert list(Notification.objects.held("opted-out")) == [c]
    assert c.datetime_processed is not None
    assert (a.status, a.reason) == (S.SUCCESSFULLY_SENT, "")
    assert dict(summary.counts) == {
        "sent": 1,
        "cancelled": 1,
        "deferred": 1,
        "failed": 0,
        "broken": 0,
        "retried": 0,
        "released": 0,
        "deleted": 0,
    }
    # The second policy saw only what the first let through.
    assert policies.prepared == [("quiet", sorted([a.pk, b.pk, c.pk])), ("carol", sorted([a.pk, c.pk]))]


@override_settings(TRANSMISSIONS_POLICIES=BOTH)
def test_a_deferred_notification_is_sent_when_due_with_its_key_intact():
    bob = make_user("bob")
    n = SendOnceMessage.trigger(bob)
    process_all_notifications()
    assert SendOnceMessage.trigger(bob) is None  # still pending: still blocks
    with (
        override_settings(TRANSMISSIONS_POLICIES=[]),
        time_machine.travel(timezone.now() + datetime.timedelta(hours=2)),
    ):
        process_all_notifications()
    n.refresh_from_db()
    assert (n.status, n.attempts, n.reason) == (S.SUCCESSFULLY_SENT, 1, "")


@override_settings(TRANSMISSIONS_POLICIES=BOTH)
@pytest.mark.parametrize("size", [3, 12])
def test_policies_cost_a_constant_number_of_queries_per_batch(size):
    users = [make_user(f"u{i}") for i in range(size)] + [make_user("bob")]
    for user in users:
        DefaultMessage.trigger(user)
    with CaptureQueriesContext(connection) as ctx:
        process_all_notifications()
    # recover, claim, users, the quiet-hours query; one UPDATE each for sent and deferred
    # (and the fetch after the claim where the shortcuts are off or on MySQL).
    extra = 2 if connection.vendor == "mysql" else (0 if internals.enabled() else 1)
    assert len(statements(ctx)) == 6 + extra, statements(ctx)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("tests.policies.QuietForBob", ["transmissions.E011"]),
        # W073: tests/messages.py has messages of categories, and no policy applies preferences.
        (["tests.policies.Nope"], ["transmissions.E012", "transmissions.W073"]),
        (["tests.policies.NotAPolicy"], ["transmissions.E012", "transmissions.W073"]),
        (BOTH, ["transmissions.W073"]),
        ([*BOTH, "transmissions.preferences.PreferencePolicy"], []),
    ],
)
def test_the_setting_is_checked(value, expected):
    with override_settings(TRANSMISSIONS_POLICIES=value):
        assert [m.id for m in check_settings()] == expected


def test_the_built_in_policies_let_a_plain_batch_through_without_asking_row_by_row():
    """Nothing suppressed, no category, no escalation step, no quiet hours: each built-in
    policy says so after prepare(), so holds() asks none of them about each row."""
    from transmissions import policies as policies_module

    DefaultMessage.trigger(make_user())
    batch = Notification.objects.claim(10)
    for policy in policies_module.active():
        policy.prepare(batch)
        assert policy.lets_all_through(), type(policy).__name__
    assert policies_module.holds(batch) == {}


@override_settings(TRANSMISSIONS_POLICIES=["tests.policies.EverythingSuppressed"])
def test_a_subclass_with_its_own_check_is_asked_even_when_its_base_has_nothing_to_hold():
    n = DefaultMessage.trigger(make_user())
    run()
    n.refresh_from_db()
    assert (n.status, n.reason) == (S.CANCELLED, "suppressed: everything is suppressed here")
    assert messages.sent == []
