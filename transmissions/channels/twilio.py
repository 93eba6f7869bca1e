"""SMS through Twilio's Programmable Messaging API, on Twilio's own Python client.

Install with ``pip install "transmissions[twilio]"`` and set::

    TRANSMISSIONS_SMS_BACKEND = "transmissions.channels.twilio.TwilioSMSBackend"
    TRANSMISSIONS_TWILIO_ACCOUNT_SID = "AC..."
    TRANSMISSIONS_TWILIO_AUTH_TOKEN = "..."
    TRANSMISSIONS_TWILIO_FROM_NUMBER = "+14155552671"  # or:
    TRANSMISSIONS_TWILIO_MESSAGING_SERVICE_SID = "MG..."

The ``twilio`` package is imported when the backend is built, not when this module
is, so the system checks can say it is missing (transmissions.E020) instead of an
import error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transmissions.conf import conf
from transmissions.exceptions import ChannelSendException, TransientChannelError

if TYPE_CHECKING:
    from transmissions.channels.sms import SMS

# The origin of the URLs Twilio's client builds for the Messages API.
TWILIO_API_URL = "https://api.twilio.com"


class TwilioSMSBackend:
    """Send each SMS as one Twilio Message; keep its sid on ``sms.provider_message_id``.

    Twilio's answers map to outcomes: 429 (rate limited) and 5xx, a timeout or a
    refused connection raise ``TransientChannelError`` (retried with backoff); any
    other error status (400 with Twilio error 21211 for a number that is not valid,
    21610 for a recipient who replied STOP, 401 for bad credentials...) raises
    ``ChannelSendException`` with Twilio's code and message (FAILED).
    """

    def __init__(self) -> None:
        from twilio.rest import Client

        sid = conf.TRANSMISSIONS_TWILIO_ACCOUNT_SID
        self.client = Client(
            sid,
            conf.TRANSMISSIONS_TWILIO_AUTH_TOKEN,
            account_sid=sid,
            http_client=_http_client(
                timeout=conf.TRANSMISSIONS_TWILIO_TIMEOUT,
                api_url=conf.TRANSMISSIONS_TWILIO_API_URL,
            ),
        )
        self.from_number = conf.TRANSMISSIONS_TWILIO_FROM_NUMBER
        self.messaging_service_sid = conf.TRANSMISSIONS_TWILIO_MESSAGING_SERVICE_SID

    def send_messages(self, messages: list[SMS]) -> int:
        for sms in messages:
            self.send(sms)
        return len(messages)

    def send(self, sms: SMS) -> str:
        """Create the Twilio Message for ``sms``; return its sid."""
        import requests
        from twilio.base.exceptions import TwilioRestException

        params: dict[str, Any] = {"to": sms.to, "body": sms.body}
        sender = sms.sender or self.from_number
        if sender:
            params["from_"] = sender
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        try:
            message = self.client.messages.create(**params)
        except TwilioRestException as exc:
            reason = f"SMS to {sms.to} failed: Twilio answered {exc.status}, error {exc.code}: {exc.msg}"
            if exc.status == 429 or exc.status >= 500:
                raise TransientChannelError(reason) from exc
            raise ChannelSendException(reason) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientChannelError(f"SMS to {sms.to} failed: {type(exc).__name__}: {exc}") from exc
        sms.provider_message_id = message.sid
        return str(message.sid)


def _http_client(timeout: float, api_url: str) -> Any:
    """Return Twilio's HTTP client with a timeout, sending to ``api_url`` (a proxy, a stand-in)."""
    from twilio.http.http_client import TwilioHttpClient

    class HttpClient(TwilioHttpClient):  # type: ignore[misc]
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if api_url != TWILIO_API_URL and url.startswith(TWILIO_API_URL + "/"):
                url = api_url.rstrip("/") + url[len(TWILIO_API_URL) :]
            return super().request(method, url, *args, **kwargs)

    return HttpClient(timeout=timeout)
