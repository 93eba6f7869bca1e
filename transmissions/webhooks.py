"""Webhooks providers call with delivery events: Twilio's message status callback.

``path("notifications/", include("transmissions.urls"))`` serves it at
``notifications/twilio/status``; set ``TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL`` to its
public URL and the Twilio backend asks Twilio to call it for every SMS. (Email events
come through django-anymail's own webhook views and its ``tracking`` signal.)
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from transmissions import providers, tracking
from transmissions.conf import conf

logger = logging.getLogger("transmissions")

SIGNATURE_HEADER = "X-Twilio-Signature"


@method_decorator(csrf_exempt, name="dispatch")
class TwilioStatusCallbackView(View):
    """Record a Twilio message status callback as a delivery event.

    The request must carry a valid ``X-Twilio-Signature`` (checked with Twilio's own
    ``RequestValidator`` and ``TRANSMISSIONS_TWILIO_AUTH_TOKEN``, against the URL the
    request came to, or ``TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL`` behind a proxy that
    changes it): otherwise 403 and nothing is written. A callback about a message no
    notification has is answered 200 (Twilio would only retry it) and logged as a warning;
    a signed request that is no status callback, 400.
    """

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not self.signed_by_twilio(request):
            return HttpResponseForbidden("Invalid or missing X-Twilio-Signature.")
        event = providers.twilio_event(request.POST)
        if event is None:
            logger.warning("Twilio status callback without a message sid or known status: %r.", request.POST)
            return HttpResponseBadRequest("Not a message status callback (MessageSid, MessageStatus).")
        done = tracking.record(event)
        if done.notification is None:
            logger.warning(
                "Twilio status callback (%s) about message %s, which no notification has.",
                event.event_type,
                event.message_id,
            )
        return HttpResponse(status=200)

    def signed_by_twilio(self, request: HttpRequest) -> bool:
        """Return whether the request's signature is Twilio's, for this URL and these fields."""
        signature = request.headers.get(SIGNATURE_HEADER, "")
        token = conf.TRANSMISSIONS_TWILIO_AUTH_TOKEN
        if not signature or not token:
            if not token:
                logger.error("Twilio status callback refused: TRANSMISSIONS_TWILIO_AUTH_TOKEN is not set.")
            else:
                logger.warning("Twilio status callback refused: no %s header.", SIGNATURE_HEADER)
            return False
        try:
            from twilio.request_validator import RequestValidator
        except ImportError:
            logger.error("Twilio status callback refused: the twilio package is not installed.")
            return False
        validator = RequestValidator(token)
        urls = [request.build_absolute_uri()]
        configured = conf.TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL
        if configured and configured not in urls:
            urls.append(configured)
        if any(validator.validate(url, request.POST, signature) for url in urls):
            return True
        logger.warning("Twilio status callback refused: the signature does not match (tried %s).", urls)
        return False
