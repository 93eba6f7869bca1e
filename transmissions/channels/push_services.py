"""One sender per device type: hand a PushPayload to the provider, classify each answer.

Each sender takes a list of devices of its type and returns one ``DeviceResult`` per
device, in order. A provider's "this device is gone" deactivates the device
(``active=False``, django-push-notifications' flag, which its own senders and its REST
API honour); 429, 5xx and network errors are transient; anything else is a refusal.
django-push-notifications and the providers' libraries are imported only when a push
is sent, so that the core, and the system checks, import without the ``push`` extra.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Device type name -> (model's dotted path in push_notifications.models, extra filter).
SERVICES: dict[str, tuple[str, dict[str, Any]]] = {
    "webpush": ("WebPushDevice", {}),
    # GCMDevice rows with cloud_message_type "GCM" use Google's retired legacy API.
    "fcm": ("GCMDevice", {"cloud_message_type": "FCM"}),
    "apns": ("APNSDevice", {}),
}


@dataclass(frozen=True)
class PushPayload:
    """What every device of the user receives, whatever its type."""

    title: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)
    # Seconds the provider keeps the message for a device that is offline.
    ttl: int = 86400


@dataclass
class DeviceResult:
    """The outcome of sending to one device."""

    device: Any
    error: str | None = None
    # A failure worth retrying (429, 5xx, timeout); False for a permanent refusal.
    transient: bool = False
    # The provider said the device is gone; its ``active`` flag was set to False.
    deactivated: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        what = f"{type(self.device).__name__} #{self.device.pk}"
        if self.ok:
            return f"{what}: sent"
        state = "deactivated" if self.deactivated else ("transient" if self.transient else "refused")
        return f"{what}: {state}: {self.error}"


def device_model(service: str) -> Any:
    """Return django-push-notifications' device model for ``service``."""
    from push_notifications import models

    return getattr(models, SERVICES[service][0])


# --- Web Push --------------------------------------------------------------------------
# pywebpush is called directly, not through WebPushDevice.send_message(): that turns
# every error but 404/410 into a WebPushError with the HTTP status only in its text, and
# lets network errors through unclassified. The endpoint, the VAPID key, claims and
# timeout still come from django-push-notifications (get_subscription_info, its config
# manager), so PUSH_NOTIFICATIONS_SETTINGS means what its docs say.

# RFC 8030 section 7.3 / 8292: the subscription expired or was removed.
WEBPUSH_GONE = frozenset({404, 410})


def webpush_body(payload: PushPayload) -> str:
    """Return the JSON the service worker's ``push`` event receives (``event.data.json()``)."""
    return json.dumps({"title": payload.title, "body": payload.body, "data": payload.data})


def send_webpush(devices: list[Any], payload: PushPayload) -> list[DeviceResult]:
    import requests
    from push_notifications.webpush import get_subscription_info
    from pywebpush import WebPushException, webpush

    body = webpush_body(payload)
    results = []
    for device in devices:
        app_id = device.application_id
        claims = _wp_setting("claims", app_id)
        try:
            webpush(
                subscription_info=get_subscription_info(
                    app_id, device.registration_id, device.browser, device.auth, device.p256dh
                ),
                data=body,
                vapid_private_key=_wp_setting("private_key", app_id),
                # A copy: pywebpush writes "aud" and "exp" into the dict it is given.
                vapid_claims=dict(claims) if claims else None,
                timeout=_wp_setting("error_timeout", app_id),
                ttl=payload.ttl,
            )
        except WebPushException as exc:
            response = exc.response
            status = response.status_code if response is not None else None
            error = (
                f"HTTP {status} {response.reason} {response.text[:200]}".strip() if status else exc.message
            )
            if status in WEBPUSH_GONE:
                results.append(_deactivate(device, error))
            else:
                transient = status is not None and (status == 429 or status >= 500)
                results.append(DeviceResult(device, error, transient=transient))
        except requests.RequestException as exc:
            results.append(DeviceResult(device, f"{type(exc).__name__}: {exc}", transient=True))
        else:
            results.append(DeviceResult(device))
    return results


def _wp_setting(name: str, app_id: str | None) -> Any:
    from push_notifications.conf import get_manager

    # As django-push-notifications does: a config manager may not offer Web Push settings.
    getter = getattr(get_manager(), f"get_wp_{name}", None)
    return getter(app_id) if getter is not None else None


def _deactivate(device: Any, error: str) -> DeviceResult:
    type(device).objects.filter(pk=device.pk).update(active=False)
    return DeviceResult(device, error, deactivated=True)


# --- FCM ---------------------------------------------------------------------------------
# Through django-push-notifications' gcm.send_message(), which calls firebase-admin's
# messaging.send_each() and itself deactivates the tokens FCM refuses
# (UNREGISTERED, SENDER_ID_MISMATCH, INVALID_ARGUMENT).

# firebase_admin.exceptions codes worth a retry (FCM's 429, 500, 503 and timeouts).
FCM_TRANSIENT = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED"})


def fcm_message(payload: PushPayload) -> Any:
    """Return the firebase ``messaging.Message`` (without token) for ``payload``."""
    from firebase_admin import messaging

    # FCM data values must be strings.
    data = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in payload.data.items()}
    return messaging.Message(
        notification=messaging.Notification(title=payload.title, body=payload.body),
        data=data,
        android=messaging.AndroidConfig(ttl=payload.ttl),
        apns=messaging.APNSConfig(headers={"apns-expiration": str(int(time.time()) + payload.ttl)}),
    )


def send_fcm(devices: list[Any], payload: PushPayload) -> list[DeviceResult]:
    from firebase_admin.exceptions import FirebaseError
    from push_notifications.gcm import send_message as fcm_send_message
    from push_notifications.models import GCMDevice

    results = []
    by_app: dict[str | None, list[Any]] = {}
    for device in devices:
        by_app.setdefault(device.application_id, []).append(device)
    for app_id, app_devices in by_app.items():
        tokens = [d.registration_id for d in app_devices]
        try:
            batch = fcm_send_message(tokens, fcm_message(payload), application_id=app_id)
        except FirebaseError as exc:
            # The whole call failed (credentials, network): the same answer for every device.
            results += [_fcm_result(d, exc, False) for d in app_devices]
            continue
        assert batch is not None  # None only when there is no token
        # Which tokens django-push-notifications deactivated is read back, not guessed.
        gone = set(
            GCMDevice.objects.filter(pk__in=[d.pk for d in app_devices], active=False).values_list(
                "pk", flat=True
            )
        )
        for device, response in zip(app_devices, batch.responses, strict=True):
            results.append(_fcm_result(device, response.exception, device.pk in gone))
    return results


def _fcm_result(device: Any, exc: Any, gone: bool) -> DeviceResult:
    if exc is None:
        return DeviceResult(device)
    error = f"{exc.code}: {exc}"
    return DeviceResult(device, error, transient=exc.code in FCM_TRANSIENT, deactivated=gone)


# --- APNs --------------------------------------------------------------------------------
# Through django-push-notifications' apns_async (aioapns), one device per call: its bulk
# sender reports every failure as one APNSError. It deactivates Unregistered,
# BadDeviceToken and DeviceTokenNotForTopic tokens itself.

APNS_GONE = frozenset({"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"})
APNS_TRANSIENT = frozenset(
    {"TooManyRequests", "InternalServerError", "ServiceUnavailable", "Shutdown", "TimeoutError"}
)
_APNS_ERRORS_PREFIX = "One or more errors failed with errors: "


def apns_kwargs(payload: PushPayload) -> dict[str, Any]:
    """Return the keyword arguments for django-push-notifications' ``apns_send_message``."""
    from push_notifications.apns_async import Alert

    return {
        "alert": Alert(title=payload.title, body=payload.body),
        "extra": dict(payload.data),
        "expiration": int(time.time()) + payload.ttl,
    }


def apns_reason(exc: Exception) -> str:
    """Return APNs' reason (``Unregistered``...) from django-push-notifications' APNSError."""
    message = str(getattr(exc, "message", exc))
    return message.removeprefix(_APNS_ERRORS_PREFIX)


def send_apns(devices: list[Any], payload: PushPayload) -> list[DeviceResult]:
    from push_notifications import apns_async
    from push_notifications.exceptions import APNSError, APNSServerError

    results = []
    for device in devices:
        try:
            apns_async.apns_send_message(
                device.registration_id, application_id=device.application_id, **apns_kwargs(payload)
            )
        except APNSServerError as exc:
            # Raised for aioapns' ConnectionError.
            results.append(DeviceResult(device, f"connection: {exc.status}", transient=True))
        except APNSError as exc:
            reason = apns_reason(exc)
            transient = reason in APNS_TRANSIENT or reason.startswith("CommunicationError")
            results.append(DeviceResult(device, reason, transient=transient, deactivated=reason in APNS_GONE))
        else:
            results.append(DeviceResult(device))
    return results


SENDERS: dict[str, Callable[[list[Any], PushPayload], list[DeviceResult]]] = {
    "webpush": send_webpush,
    "fcm": send_fcm,
    "apns": send_apns,
}
