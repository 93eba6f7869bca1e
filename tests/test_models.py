import datetime
import decimal
import uuid

import pytest
from django.test.utils import override_settings
from django.utils import timezone

from tests.messages import DefaultMessage, TriggerOnceMessage
from tests.models import User
from tests.utils import later, make_user
from transmissions.exceptions import DataDecodeError
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


@pytest.fixture
def user():
    return make_user()


def test_status_values_match_the_original():
    assert (S.CREATED, S.SUCCESSFULLY_SENT, S.FAILED, S.CANCELLED, S.BROKEN) == (0, 1, -1, -2, -3)
    assert S.PROCESSING == 2


def test_user_notifications_and_notifications_sent(user):
    bob = make_user("bob")
    n = DefaultMessage.trigger(user, trigger_user=bob)
    assert list(user.notifications.all()) == [n]
    assert list(bob.notifications_sent.all()) == [n]


def test_deleting_trigger_user_keeps_the_notification(user):
    bob = make_user("bob")
    n = DefaultMessage.trigger(user, trigger_user=bob)
    bob.delete()
    n.refresh_from_db()
    assert n.trigger_user is None


def test_deleting_target_user_deletes_their_notifications(user):
    DefaultMessage.trigger(user)
    user.delete()
    assert not Notification.objects.exists()


def test_data_round_trip_and_in_place_change(user):
    when = timezone.now()
    n = DefaultMessage.trigger(user, data={"when": when, "n": decimal.Decimal("1.5")})
    n = Notification.objects.get(pk=n.pk)
    assert n.data == {"when": when, "n": decimal.Decimal("1.5")}
    n.data["extra"] = 1
    n.save()
    assert Notification.objects.get(pk=n.pk).data["extra"] == 1


def test_data_defaults_to_empty_dict(user):
    n = Notification.objects.get(pk=DefaultMessage.trigger(user).pk)
    assert n.data == {} and n.data_bytes is None


def test_unreadable_data_does_not_break_saving_other_fields(user):
    n = DefaultMessage.trigger(user, data={"x": 1})
    Notification.objects.filter(pk=n.pk).update(data_bytes=b"\x00garbage")
    n = Notification.objects.get(pk=n.pk)
    with pytest.raises(DataDecodeError, match=f"Notification {n.pk}"):
        n.data  # noqa: B018
    n.mark_seen()
    n.datetime_scheduled = later()
    n.save()
    assert bytes(Notification.objects.get(pk=n.pk).data_bytes) == b"\x00garbage"


@override_settings(TRANSMISSIONS_SERIALIZER="transmissions.serializers.JSONSerializer")
def test_json_serializer_setting(user):
    value = {"d": datetime.date(2030, 1, 2), "u": uuid.UUID(int=5), "t": [1, "a"]}
    n = DefaultMessage.trigger(user, data=value)
    raw = bytes(Notification.objects.get(pk=n.pk).data_bytes)
    assert raw.startswith(b"{")
    assert Notification.objects.get(pk=n.pk).data == value


@override_settings(TRANSMISSION_SERIALIZER="transmissions.serializers.JSONSerializer")
def test_legacy_serializer_setting_spelling(user):
    n = DefaultMessage.trigger(user, data={"a": 1})
    assert bytes(Notification.objects.get(pk=n.pk).data_bytes) == b'{"a":1}'


def test_cancel(user):
    n = TriggerOnceMessage.trigger(user, datetime_scheduled=later())
    assert n.cancel() is True
    assert n.status == S.CANCELLED and n.datetime_processed is not None
    fresh = Notification.objects.get(pk=n.pk)
    assert fresh.status == S.CANCELLED and fresh.dedup_key is None
    processed_at = fresh.datetime_processed
    assert fresh.cancel() is False
    assert Notification.objects.get(pk=n.pk).datetime_processed == processed_at


def test_cancel_does_not_touch_a_sent_or_held_notification(user):
    sent = DefaultMessage.trigger(user)
    process_all_notifications()
    sent.refresh_from_db()
    assert sent.cancel() is False
    assert Notification.objects.get(pk=sent.pk).status == S.SUCCESSFULLY_SENT
    held = DefaultMessage.trigger(user)
    Notification.objects.claim(10)
    assert held.cancel() is False
    assert Notification.objects.get(pk=held.pk).status == S.PROCESSING


def test_mark_seen_and_consumed_on_one(user):
    n = DefaultMessage.trigger(user)
    n.mark_seen()
    seen = Notification.objects.get(pk=n.pk).datetime_seen
    assert seen is not None
    n.mark_seen()  # idempotent
    assert Notification.objects.get(pk=n.pk).datetime_seen == seen
    n.mark_consumed()
    fresh = Notification.objects.get(pk=n.pk)
    assert fresh.datetime_consumed is not None and fresh.datetime_seen == seen


def test_mark_consumed_sets_seen_too(user):
    n = DefaultMessage.trigger(user)
    n.mark_consumed()
    fresh = Notification.objects.get(pk=n.pk)
    assert fresh.datetime_seen == fresh.datetime_consumed is not None


def test_due_and_str(user):
    n = DefaultMessage.trigger(user)
    assert list(Notification.objects.due()) == [n]
    assert "default" in str(n) and "created" in str(n)
    assert n.is_pending and n.message_class is DefaultMessage


def test_custom_user_model_is_used():
    assert Notification._meta.get_field("target_user").related_model is User


def test_user_notifications_in_templates(user):
    from django.template import Context, Template

    DefaultMessage.trigger(user)
    DefaultMessage.trigger(user)
    process_all_notifications()
    template = Template(
        "{{ user.notifications.unseen_count }}|"
        "{% for n in user.notifications.sent %}{{ n.trigger_name }},{% endfor %}"
    )
    assert template.render(Context({"user": user})) == "2|default,default,"


# -- send() and get_admin_url(): transmissions 0.2's API ----------------------------------


def test_send_processes_the_row_now_even_before_its_schedule(user):
    from tests import messages

    notification = DefaultMessage.trigger(user, datetime_scheduled=later())
    assert notification.send() is True
    assert notification.status == Notification.Status.SUCCESSFULLY_SENT
    assert notification.datetime_processed is not None and notification.attempts == 1
    assert messages.sent == [("default", notification.pk)]
    fresh = Notification.objects.get(pk=notification.pk)
    assert (fresh.status, fresh.datetime_processed) == (notification.status, notification.datetime_processed)


def test_send_twice_sends_once_and_says_why_the_second_did_nothing(user, caplog):
    from tests import messages

    notification = DefaultMessage.trigger(user)
    assert notification.send() is True
    stale = Notification.objects.get(pk=notification.pk)
    Notification.objects.filter(pk=notification.pk).update(status=Notification.Status.SUCCESSFULLY_SENT)
    with caplog.at_level("WARNING", logger="transmissions"):
        assert notification.send() is False
        assert stale.send() is False
    assert len(messages.sent) == 1
    assert f"Notification {notification.pk} not processed: it is successfully sent." in caplog.messages


@pytest.mark.parametrize(
    ("trigger_name", "status", "reason"),
    [
        ("invalid", Notification.Status.CANCELLED, "check_validity() returned false"),
        ("always-fails", Notification.Status.FAILED, "ChannelSendException: provider said no"),
        ("crashes", Notification.Status.FAILED, "RuntimeError: bug in the channel"),
    ],
)
def test_send_outcomes_are_the_batchs(user, trigger_name, status, reason):
    from tests.utils import trigger_named

    notification = trigger_named(trigger_name, user)
    assert notification.send() is True
    assert (notification.status, notification.reason) == (status, reason)
    assert Notification.objects.get(pk=notification.pk).status == status


@pytest.mark.parametrize("trigger_name", ["init-raises", "validity-raises"])
def test_send_of_a_message_that_breaks_marks_it_broken_and_raises(user, trigger_name):
    from tests.utils import trigger_named

    notification = trigger_named(trigger_name, user)
    with pytest.raises(ValueError, match="cannot"):
        notification.send()
    assert notification.status == Notification.Status.BROKEN
    assert Notification.objects.get(pk=notification.pk).status == Notification.Status.BROKEN
    assert notification.send() is False  # processed: not again


def test_send_of_an_unknown_trigger_name_raises_and_marks_it_broken(user):
    from transmissions.exceptions import UnknownTriggerException

    notification = DefaultMessage.trigger(user)
    Notification.objects.filter(pk=notification.pk).update(trigger_name="gone")
    notification.refresh_from_db()
    with pytest.raises(UnknownTriggerException):
        notification.send()
    assert Notification.objects.get(pk=notification.pk).status == Notification.Status.BROKEN


def test_send_deletes_a_delete_after_processing_row(user):
    from tests.messages import DeleteAfterMessage

    notification = DeleteAfterMessage.trigger(user)
    pk = notification.pk
    assert notification.send() is True
    assert notification.pk is None and notification.status == Notification.Status.SUCCESSFULLY_SENT
    assert not Notification.objects.filter(pk=pk).exists()


def test_send_needs_a_saved_notification(user):
    with pytest.raises(ValueError, match="not saved"):
        Notification(target_user=user, trigger_name="default").send()


def test_send_goes_through_the_policies():
    carol = make_user("carol")
    notification = DefaultMessage.trigger(carol)
    with override_settings(TRANSMISSIONS_POLICIES=["tests.policies.NothingForCarol"]):
        assert notification.send() is True
    assert notification.status == Notification.Status.CANCELLED
    assert notification.reason == "opted-out: carol opted out of default"


def test_get_admin_url(user):
    notification = DefaultMessage.trigger(user)
    assert notification.get_admin_url() == f"/admin/transmissions/notification/{notification.pk}/change/"
