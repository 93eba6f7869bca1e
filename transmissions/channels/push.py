"""Push to a user's devices: Web Push, FCM (Android and iOS through Firebase) and APNs.

Devices are django-push-notifications' models (``WebPushDevice``, ``GCMDevice`` with
``cloud_message_type="FCM"``, ``APNSDevice``), so the project registers devices the
way that library documents (its REST API or its admin). Install with the extra
``transmissions[push]`` and add ``"push_notifications"`` to ``INSTALLED_APPS``.

Nothing here imports django-push-notifications at module level: the core stays
importable without the extra, and a missing piece is reported by the system checks
(``transmissions.E032``-``E036``) rather than by an import error in a worker.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from transmissions.channels import push_services
from transmissions.channels.base import BaseChannel
from transmissions.channels.push_services import SERVICES, DeviceResult, PushPayload, device_model
from transmissions.conf import conf
from transmissions.exceptions import ChannelSendException, TransientChannelError

logger = logging.getLogger("transmissions.channels.push")


class PushMessage(BaseChannel):
    """Send one push notification to every active device of ``target_user``.

    The title and body come from ``title`` and ``body`` (class attributes or
    ``@message(..., title="...")``) or from overriding ``get_title()``/``get_body()``;
    ``get_push_data()`` returns the data dict the app receives. A user with no
    active device cancels the notification. A device the provider reports as gone
    is deactivated; the notification is SENT when at least one device accepted it,
    retried (``TransientChannelError``) when none did and a failure was transient,
    and FAILED otherwise.
    """

    channel = "push"

    title: str = ""
    body: str = ""
    # Device types to send to; None: TRANSMISSIONS_PUSH_SERVICES.
    push_services: ClassVar[tuple[str, ...] | list[str] | None] = None
    # Seconds a provider keeps the message for an offline device; None: TRANSMISSIONS_PUSH_TTL.
    ttl: ClassVar[int | None] = None

    def get_title(self) -> str:
        """Return the notification's title."""
        return str(self.title)

    def get_body(self) -> str:
        """Return the notification's text."""
        return str(self.body)

    def get_push_data(self) -> dict[str, Any]:
        """Return the data the receiving app gets beside title and body.

        By default the notification's uuid and trigger name, so that the app can call
        back to mark it seen. FCM needs string values: others are sent JSON-encoded.
        """
        return {"notification_uuid": str(self.notification.uuid), "trigger_name": self.trigger_name}

    def get_services(self) -> list[str]:
        services = self.push_services
        return list(conf.TRANSMISSIONS_PUSH_SERVICES if services is None else services)

    def get_devices(self) -> dict[str, list[Any]]:
        """Return the user's active devices by service, services without one left out."""
        devices: dict[str, list[Any]] = {}
        for service in self.get_services():
            extra = SERVICES[service][1]
            found = list(
                device_model(service)
                .objects.filter(user=self.target_user, active=True, **extra)
                .order_by("pk")
            )
            if found:
                devices[service] = found
        return devices

    def check_validity(self) -> bool:
        return any(
            device_model(service)
            .objects.filter(user=self.target_user, active=True, **SERVICES[service][1])
            .exists()
            for service in self.get_services()
        )

    def get_cancel_reason(self) -> str:
        return f"the user has no active push device ({', '.join(self.get_services())})"

    def build(self) -> PushPayload:
        ttl = self.ttl if self.ttl is not None else conf.TRANSMISSIONS_PUSH_TTL
        return PushPayload(self.get_title(), self.get_body(), dict(self.get_push_data()), ttl)

    def transmit(self, payload: Any) -> list[DeviceResult]:
        devices = self.get_devices()
        if not devices:
            # Every device was deactivated between check_validity() and now.
            raise ChannelSendException(f"User {self.target_user.pk} has no active push device.")
        results: list[DeviceResult] = []
        for service, service_devices in devices.items():
            results += push_services.SENDERS[service](service_devices, payload)
        failed = [r for r in results if not r.ok]
        for result in failed:
            logger.warning(
                "Push of notification %s (%s) to %s",
                self.notification.pk,
                self.trigger_name,
                result,
            )
        if len(failed) < len(results):
            return results
        reasons = "; ".join(str(r) for r in failed)
        if any(r.transient for r in failed):
            raise TransientChannelError(f"No device accepted the push, will retry: {reasons}")
        raise ChannelSendException(f"No device accepted the push: {reasons}")


__all__ = ["DeviceResult", "PushMessage", "PushPayload"]
