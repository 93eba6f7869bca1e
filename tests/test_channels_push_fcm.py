"""FCM through django-push-notifications and firebase-admin, against an FCM stand-in on 127.0.0.1.

firebase-admin has no setting for FCM's address: the one thing changed is the class
constant ``_MessagingService.FCM_URL`` (where the HTTP v1 ``messages:send`` requests
go). Everything else is the real code path: django-push-notifications' ``send_message``
and its deactivation, firebase-admin's HTTP client and its parsing of FCM's documented
error bodies into ``UnregisteredError``, ``QuotaExceededError``...
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import firebase_admin
import google.auth.credentials
import pytest
from firebase_admin import credentials, messaging
from push_notifications.models import GCMDevice

from tests.push_messages import due_comment
from tests.utils import make_user, processed
from transmissions.models import Notification

pytestmark = pytest.mark.django_db

# FCM HTTP v1 error bodies, by the token's prefix: (HTTP status, status, FcmError errorCode).
ERRORS = {
    "unregistered": (404, "NOT_FOUND", "UNREGISTERED"),
    "quota": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
    "invalid": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    # The service account may not send for this project (no FcmError detail).
    "denied": (403, "PERMISSION_DENIED", None),
    # The access token was refused: google-auth refreshes it and tries again.
    "expired": (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
}


class FCM:
    def __init__(self):
        self.received = []
        fcm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fcm.received.append((self.path, body["message"]))
                kind = body["message"]["token"].split("-")[0]
                if kind == "ok":
                    status, answer = 200, {"name": f"projects/tests/messages/{len(fcm.received)}"}
                else:
                    status, state, code = ERRORS[kind]
                    fcm_error = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
                    details = [{"@type": fcm_error, "errorCode": code}] if code else []
                    answer = {
                        "error": {"code": status, "message": state, "status": state, "details": details}
                    }
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"


class AnonymousCredential(credentials.Base):
    # No token to fetch: the stand-in does not check one, and Google is not reachable from here.
    def get_credential(self):
        return google.auth.credentials.AnonymousCredentials()


@pytest.fixture
def fcm(monkeypatch):
    service = FCM()
    thread = threading.Thread(target=service.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setattr(
        messaging._MessagingService, "FCM_URL", service.origin + "/v1/projects/{0}/messages:send"
    )
    app = firebase_admin.initialize_app(AnonymousCredential(), {"projectId": "tests"})
    try:
        yield service
    finally:
        firebase_admin.delete_app(app)
        service.server.shutdown()
    service.server.server_close()


def android(user, token, **kwargs):
    kwargs.setdefault("cloud_message_type", "FCM")
    return GCMDevice.objects.create(user=user, registration_id=token, **kwargs)


def test_title_body_and_data_reach_fcm(fcm):
    user = make_user()
    android(user, "ok-1")
    n = due_comment(user)

    processed(n)
    assert n.status == Notification.Status.SUCCESSFULLY_SENT
    [(path, sent)] = fcm.received
    assert path == "/v1/projects/tests/messages:send"
    assert sent["token"] == "ok-1"
    assert sent["notification"] == {"title": "New comment", "body": "Grace commented on your post"}
    # FCM data values are strings: the int comment id is sent JSON-encoded.
    assert sent["data"] == {"notification_uuid": n.uuid, "trigger_name": "push-comment", "comment_id": "42"}
    assert sent["android"] == {"ttl": "86400s"}


def test_legacy_gcm_and_inactive_devices_are_not_sent_to(fcm):
    user = make_user()
    android(user, "ok-legacy", cloud_message_type="GCM")
    android(user, "ok-off", active=False)
    n = due_comment(user)

    processed(n)
    assert n.status == Notification.Status.CANCELLED
    assert fcm.received == []


def test_unregistered_token_is_deactivated_and_the_push_failed(fcm, caplog):
    user = make_user()
    device = android(user, "unregistered-1")
    n = due_comment(user)

    processed(n, device)
    assert f"GCMDevice #{device.pk}: deactivated: NOT_FOUND" in caplog.text
    assert n.status == Notification.Status.FAILED
    assert device.active is False


def test_one_unregistered_one_ok_is_sent(fcm):
    user = make_user()
    gone, ok = android(user, "unregistered-1"), android(user, "ok-1")
    n = due_comment(user)

    processed(n, gone, ok)
    assert n.status == Notification.Status.SUCCESSFULLY_SENT
    assert (gone.active, ok.active) == (False, True)


def test_quota_exceeded_is_retried(fcm, caplog):
    user = make_user()
    device = android(user, "quota-1")
    n = due_comment(user)

    processed(n, device)
    assert f"GCMDevice #{device.pk}: transient: RESOURCE_EXHAUSTED" in caplog.text
    assert len(fcm.received) == 1
    assert (n.status, n.attempts) == (Notification.Status.CREATED, 1)
    assert device.active is True


def test_a_permission_refusal_fails_and_keeps_the_device(fcm, caplog):
    user = make_user()
    device = android(user, "denied-1")
    n = due_comment(user)

    processed(n, device)
    assert f"GCMDevice #{device.pk}: refused: PERMISSION_DENIED" in caplog.text
    assert n.status == Notification.Status.FAILED
    assert device.active is True


def test_an_unreachable_fcm_is_transient(fcm):
    # Nobody listens any more: firebase-admin reports UNAVAILABLE.
    fcm.server.shutdown()
    fcm.server.server_close()
    user = make_user()
    android(user, "ok-1")
    n = due_comment(user)

    processed(n)
    assert (n.status, n.attempts) == (Notification.Status.CREATED, 1)


def test_a_failure_of_the_whole_call_fails_every_device(fcm, caplog):
    # The anonymous test credential cannot be refreshed after the 401: firebase-admin
    # fails the whole send_each() call, not one response.
    user = make_user()
    devices = [android(user, "expired-1"), android(user, "expired-2")]
    n = due_comment(user)

    processed(n)
    assert n.status == Notification.Status.FAILED
    for device in devices:
        assert f"GCMDevice #{device.pk}: refused: UNKNOWN" in caplog.text
        device.refresh_from_db()
        assert device.active is True
