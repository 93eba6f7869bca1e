"""Web Push end to end: a real HTTPS push service on 127.0.0.1 decrypts what was sent."""

import logging

import pytest
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from push_notifications.models import WebPushDevice
from py_vapid.utils import b64urlencode

from tests.push_messages import CommentPush, WebOnlyPush
from tests.push_server import PushService, vapid_public_key
from tests.utils import earlier, make_user, processed
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db


@pytest.fixture
def push_service(monkeypatch):
    key = vapid_public_key(settings.PUSH_NOTIFICATIONS_SETTINGS["WP_PRIVATE_KEY"])
    with PushService(key) as service:
        # requests trusts the test service's self-signed certificate, and only for this test.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", service.ca_file)
        yield service


def browser(service, user, kind, name="phone", browser="FIREFOX"):
    sub = service.subscribe(kind, name)
    return WebPushDevice.objects.create(
        user=user, registration_id=sub.endpoint, p256dh=sub.p256dh, auth=sub.auth_b64, browser=browser
    )


def due(cls, user, **data):
    return cls.trigger(user, data=data, datetime_scheduled=earlier())


def test_push_is_encrypted_signed_and_decrypted_by_the_service(push_service):
    user = make_user()
    browser(push_service, user, "ok")
    n = due(CommentPush, user, author="Grace", comment_id="42")

    assert process_all_notifications() == 1

    n.refresh_from_db()
    assert n.status == Notification.Status.SUCCESSFULLY_SENT
    [got] = push_service.received
    assert got.problem is None, got.problem
    assert got.headers["authorization"].startswith("vapid t=")
    assert got.vapid_claims["sub"] == "mailto:push-tests@transmissions.invalid"
    assert got.headers["ttl"] == "86400"
    assert got.payload == {
        "title": "New comment",
        "body": "Grace commented on your post",
        "data": {"notification_uuid": n.uuid, "trigger_name": "push-comment", "comment_id": "42"},
    }


def test_every_active_device_of_the_user_and_only_those(push_service):
    user, other = make_user(), make_user("bob")
    browser(push_service, user, "ok", "laptop", browser="CHROME")
    browser(push_service, user, "ok", "phone")
    off = browser(push_service, user, "ok", "old")
    WebPushDevice.objects.filter(pk=off.pk).update(active=False)
    browser(push_service, other, "ok", "bobs")
    due(WebOnlyPush, user)

    process_all_notifications()

    assert sorted(r.path for r in push_service.received) == ["/ok/laptop", "/ok/phone"]
    assert all(r.payload["body"] == "Only browsers get this" for r in push_service.received)
    assert {r.headers["ttl"] for r in push_service.received} == {"60"}


def test_a_user_without_active_device_is_cancelled(push_service):
    user = make_user()
    WebPushDevice.objects.filter(pk=browser(push_service, user, "ok").pk).update(active=False)
    n = due(CommentPush, user, author="Grace", comment_id="1")

    processed(n)
    assert n.status == Notification.Status.CANCELLED
    assert push_service.received == []


@pytest.mark.parametrize("kind", ["gone", "missing"])
def test_an_unsubscribed_device_is_deactivated_and_the_push_failed(push_service, kind, caplog):
    user = make_user()
    device = browser(push_service, user, kind)
    n = due(CommentPush, user, author="Grace", comment_id="1")

    with caplog.at_level(logging.WARNING):
        processed(n, device)
    assert n.status == Notification.Status.FAILED
    assert device.active is False
    assert (
        f"WebPushDevice #{device.pk}: deactivated: HTTP {'410' if kind == 'gone' else '404'}" in caplog.text
    )
    # The device is gone: the next push to this user is cancelled, not sent to it.
    later = due(CommentPush, user, author="Ada", comment_id="2")
    process_all_notifications()
    later.refresh_from_db()
    assert later.status == Notification.Status.CANCELLED


@pytest.mark.parametrize("kind", ["error", "busy"])
def test_a_transient_refusal_is_retried_and_the_device_kept(push_service, kind):
    user = make_user()
    device = browser(push_service, user, kind)
    n = due(CommentPush, user, author="Grace", comment_id="1")

    processed(n, device)
    assert n.status == Notification.Status.CREATED
    assert n.attempts == 1
    assert n.datetime_scheduled > earlier(seconds=0)
    assert device.active is True
    assert [r.status for r in push_service.received] == [500 if kind == "error" else 429]


def test_a_refused_request_fails_without_deactivating(push_service):
    user = make_user()
    device = browser(push_service, user, "refuse")
    n = due(CommentPush, user, author="Grace", comment_id="1")

    processed(n, device)
    assert n.status == Notification.Status.FAILED
    assert device.active is True


def test_one_device_gone_one_accepting_is_sent(push_service):
    user = make_user()
    gone = browser(push_service, user, "gone", "old")
    ok = browser(push_service, user, "ok", "new")
    n = due(CommentPush, user, author="Grace", comment_id="1")

    processed(n, gone, ok)
    assert n.status == Notification.Status.SUCCESSFULLY_SENT
    assert (gone.active, ok.active) == (False, True)
    assert sorted(r.status for r in push_service.received) == [201, 410]


def test_one_transient_one_gone_is_retried_and_then_only_the_live_device(push_service):
    user = make_user()
    gone = browser(push_service, user, "gone", "old")
    browser(push_service, user, "busy", "new")
    n = due(CommentPush, user, author="Grace", comment_id="1")

    processed(n, gone)
    assert n.status == Notification.Status.CREATED  # rescheduled
    assert gone.active is False


def test_an_unreachable_service_is_transient(push_service):
    user = make_user()
    sub = push_service.subscribe("ok", "phone")
    # A port nobody listens on: the connection is refused.
    WebPushDevice.objects.create(
        user=user,
        registration_id="https://127.0.0.1:9/ok/phone",
        p256dh=sub.p256dh,
        auth=sub.auth_b64,
    )
    n = due(CommentPush, user, author="Grace", comment_id="1")

    processed(n)
    assert n.status == Notification.Status.CREATED
    assert n.attempts == 1


def test_the_service_really_checks_the_vapid_signature(push_service, monkeypatch):
    # Another application server's key: the service refuses it, so its acceptance above means something.
    from push_notifications.settings import PUSH_NOTIFICATIONS_SETTINGS

    from tests.settings import _vapid_private_key

    monkeypatch.setitem(PUSH_NOTIFICATIONS_SETTINGS, "WP_PRIVATE_KEY", _vapid_private_key())
    user = make_user()
    browser(push_service, user, "ok")
    n = due(CommentPush, user, author="Grace", comment_id="1")

    processed(n)
    assert n.status == Notification.Status.FAILED
    [got] = push_service.received
    assert got.problem == "ValueError: VAPID key is not the application server's"


def test_a_subscription_of_other_keys_cannot_be_decrypted(push_service):
    user = make_user()
    device = browser(push_service, user, "ok")
    other = push_service.subscribe("ok", "other")
    WebPushDevice.objects.filter(pk=device.pk).update(p256dh=other.p256dh)
    due(CommentPush, user, author="Grace", comment_id="1")

    process_all_notifications()

    [got] = push_service.received
    assert got.payload is None
    assert got.problem == "ECEException: Decryption error: InvalidTag()"


def test_a_pem_key_file_as_vapid_generates_it(tmp_path, monkeypatch):
    # What `vapid --gen` writes and the docs show: WP_PRIVATE_KEY as a path to a PEM file.
    from push_notifications.settings import PUSH_NOTIFICATIONS_SETTINGS
    from py_vapid import Vapid

    vapid = Vapid()
    vapid.generate_keys()
    vapid.save_key(str(tmp_path / "private_key.pem"))
    monkeypatch.setitem(PUSH_NOTIFICATIONS_SETTINGS, "WP_PRIVATE_KEY", tmp_path / "private_key.pem")
    public = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    with PushService(b64urlencode(public)) as service:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", service.ca_file)
        user = make_user()
        browser(service, user, "ok")
        n = due(WebOnlyPush, user)

        processed(n)
    assert n.status == Notification.Status.SUCCESSFULLY_SENT
    assert service.received[0].payload["title"] == "Web only"
