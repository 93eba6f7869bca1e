"""PushMessage itself: payload, devices, outcomes; the providers are in test_channels_push_*."""

import pytest
from django.test.utils import override_settings
from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

from tests.push_messages import CommentPush, WebOnlyPush
from tests.utils import make_user
from transmissions.channels.push import DeviceResult, PushPayload
from transmissions.exceptions import ChannelSendException

pytestmark = pytest.mark.django_db


def notification(cls, user, **data):
    return cls.trigger(user, data=data)


def test_build_takes_title_body_data_and_ttl():
    user = make_user()
    n = notification(CommentPush, user, author="Grace", comment_id="7")
    assert CommentPush(n).build() == PushPayload(
        title="New comment",
        body="Grace commented on your post",
        data={"notification_uuid": n.uuid, "trigger_name": "push-comment", "comment_id": "7"},
        ttl=86400,
    )
    with override_settings(TRANSMISSIONS_PUSH_TTL=600):
        assert CommentPush(n).build().ttl == 600
    # A class's own ttl wins over the setting.
    assert WebOnlyPush(notification(WebOnlyPush, user)).build().ttl == 60


def test_devices_of_every_type_and_only_the_services_in_use():
    user = make_user()
    web = WebPushDevice.objects.create(
        user=user, registration_id="https://push.invalid/1", p256dh="k", auth="a"
    )
    fcm = GCMDevice.objects.create(user=user, registration_id="t", cloud_message_type="FCM")
    ios = APNSDevice.objects.create(user=user, registration_id="i")
    n = notification(CommentPush, user, author="Grace", comment_id="7")

    assert CommentPush(n).get_devices() == {"webpush": [web], "fcm": [fcm], "apns": [ios]}
    with override_settings(TRANSMISSIONS_PUSH_SERVICES=["apns"]):
        assert CommentPush(n).get_devices() == {"apns": [ios]}
    assert WebOnlyPush(notification(WebOnlyPush, user)).get_devices() == {"webpush": [web]}
    WebPushDevice.objects.update(active=False)
    assert WebOnlyPush(notification(WebOnlyPush, user)).check_validity() is False


def test_devices_gone_between_check_and_send_fail_clearly():
    user = make_user()
    WebPushDevice.objects.create(user=user, registration_id="https://push.invalid/1", p256dh="k", auth="a")
    channel = WebOnlyPush(notification(WebOnlyPush, user))
    assert channel.check_validity() is True
    WebPushDevice.objects.update(active=False)
    with pytest.raises(ChannelSendException, match=f"User {user.pk} has no active push device"):
        channel.send()


def test_device_results_read_well_in_logs():
    user = make_user()
    device = WebPushDevice.objects.create(
        user=user, registration_id="https://push.invalid/1", p256dh="k", auth="a"
    )
    assert str(DeviceResult(device)) == f"WebPushDevice #{device.pk}: sent"
    assert (
        str(DeviceResult(device, "HTTP 429", transient=True))
        == f"WebPushDevice #{device.pk}: transient: HTTP 429"
    )
    assert (
        str(DeviceResult(device, "HTTP 410", deactivated=True))
        == f"WebPushDevice #{device.pk}: deactivated: HTTP 410"
    )
