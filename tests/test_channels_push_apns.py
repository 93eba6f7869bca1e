"""APNs through django-push-notifications' aioapns sender, with aioapns' client replaced.

Apple's service speaks HTTP/2 over TLS at fixed hosts that aioapns has no setting to
change, and it cannot be reached from here. So the one thing replaced is the client
that ``push_notifications.apns_async._create_client`` builds: everything above it is
the real code path (the notification request django-push-notifications builds, its
per-token results, its deactivation of Unregistered tokens, its APNSError).
"""

import pytest
from aioapns import ConnectionError as APNsConnectionError
from aioapns.common import NotificationResult
from push_notifications import apns_async
from push_notifications.models import APNSDevice

from tests.push_messages import due_comment
from tests.utils import make_user, processed
from transmissions.models import Notification

pytestmark = pytest.mark.django_db

# APNs answers by the token's prefix: (HTTP status, reason) or an exception.
ANSWERS = {
    "ok": ("200", None),
    "unregistered": ("410", "Unregistered"),
    "badtoken": ("400", "BadDeviceToken"),
    "busy": ("429", "TooManyRequests"),
    "down": ("503", "ServiceUnavailable"),
    "toolarge": ("413", "PayloadTooLarge"),
    "broken": APNsConnectionError(),
}


class APNsClient:
    """Stands in for ``aioapns.APNs``: answers each request as its token says, keeps it."""

    def __init__(self):
        self.requests = []
        self.topics = []

    async def send_notification(self, request):
        self.requests.append(request)
        answer = ANSWERS[request.device_token.split("-")[0]]
        if isinstance(answer, Exception):
            raise answer
        return NotificationResult(request.notification_id, *answer)


@pytest.fixture
def apns(monkeypatch):
    client = APNsClient()

    def create_client(creds=None, application_id=None, topic=None, err_func=None):
        client.topics.append(topic)
        return client

    monkeypatch.setattr(apns_async, "_create_client", create_client)
    return client


def iphone(user, token):
    return APNSDevice.objects.create(user=user, registration_id=token)


def test_alert_data_and_expiry_reach_apns(apns):
    user = make_user()
    iphone(user, "ok-1")
    n = due_comment(user)

    processed(n)
    assert n.status == Notification.Status.SUCCESSFULLY_SENT
    [request] = apns.requests
    assert apns.topics == ["invalid.transmissions.tests"]
    assert request.device_token == "ok-1"
    assert request.message["aps"]["alert"] == {"title": "New comment", "body": "Grace commented on your post"}
    assert {k: request.message[k] for k in ("notification_uuid", "trigger_name", "comment_id")} == {
        "notification_uuid": n.uuid,
        "trigger_name": "push-comment",
        "comment_id": 42,
    }
    assert 86400 - 5 <= request.time_to_live <= 86400


@pytest.mark.parametrize("kind", ["unregistered", "badtoken"])
def test_a_gone_token_is_deactivated_and_the_push_failed(apns, kind, caplog):
    user = make_user()
    device = iphone(user, f"{kind}-1")
    n = due_comment(user)

    processed(n, device)
    assert n.status == Notification.Status.FAILED
    assert device.active is False
    assert f"APNSDevice #{device.pk}: deactivated: {ANSWERS[kind][1]}" in caplog.text


@pytest.mark.parametrize("kind", ["busy", "down", "broken"])
def test_transient_answers_are_retried(apns, kind):
    user = make_user()
    device = iphone(user, f"{kind}-1")
    n = due_comment(user)

    processed(n, device)
    assert (n.status, n.attempts) == (Notification.Status.CREATED, 1)
    assert device.active is True


def test_a_refused_payload_fails_and_keeps_the_device(apns, caplog):
    user = make_user()
    device = iphone(user, "toolarge-1")
    n = due_comment(user)

    processed(n, device)
    assert n.status == Notification.Status.FAILED
    assert device.active is True
    assert f"APNSDevice #{device.pk}: refused: PayloadTooLarge" in caplog.text


def test_one_gone_one_ok_is_sent(apns):
    user = make_user()
    gone = iphone(user, "unregistered-1")
    iphone(user, "ok-1")
    n = due_comment(user)

    processed(n, gone)
    assert n.status == Notification.Status.SUCCESSFULLY_SENT
    assert gone.active is False
    assert [r.device_token for r in apns.requests] == ["unregistered-1", "ok-1"]


def test_no_connection_to_apns_is_transient(monkeypatch):
    def create_client(**kwargs):
        raise APNsConnectionError()

    monkeypatch.setattr(apns_async, "_create_client", create_client)
    user = make_user()
    iphone(user, "ok-1")
    n = due_comment(user)

    processed(n)
    assert (n.status, n.attempts) == (Notification.Status.CREATED, 1)
