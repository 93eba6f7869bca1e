"""Real protocol peers on loopback for the channel tests: an SMTP server and a Twilio stand-in.

Both listen on 127.0.0.1 on a port the kernel picks, in a thread of the test process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
import uuid
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from aiosmtpd.smtp import SMTP
from django.core.mail.backends import locmem


class SMTPRecorder:
    """An aiosmtpd handler that keeps what arrived, or answers with the given replies."""

    def __init__(self):
        self.messages = []  # (envelope, parsed email.message.EmailMessage)
        self.rcpt_reply = None  # e.g. "550 5.1.1 no such user"
        self.data_reply = None  # e.g. "451 4.3.0 try again later"
        self.refuse = {}  # one recipient's RCPT reply, by address
        self.sessions = 0  # connections accepted

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.refuse.get(address) or self.rcpt_reply
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.messages.append((envelope, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"


class _CountingSMTP(SMTP):
    def connection_made(self, transport):
        self.event_handler.sessions += 1
        super().connection_made(transport)


class SMTPServer:
    """``with SMTPServer() as server:`` -- a real SMTP server on 127.0.0.1:``server.port``."""

    def __init__(self):
        self.handler = SMTPRecorder()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self):
        self.thread.start()

        async def start():
            return await self.loop.create_server(
                lambda: _CountingSMTP(self.handler, hostname="transmissions.test", loop=self.loop),
                host="127.0.0.1",
                port=0,
            )

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=10)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc_info):
        async def stop():
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (a hung SMTP or HTTP peer)."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        return self

    def __exit__(self, *exc_info):
        self.sock.close()


def closed_port():
    """Return a loopback port where nothing listens (a refused connection)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Twilio's answers, in the shape its Messages API uses (docs: /docs/messaging/api/message-resource).
def _twilio_error(status, code, message):
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class TwilioStandIn:
    """An HTTP server on 127.0.0.1 answering as Twilio's Messages API does.

    ``mode``: "ok" (201 with the message), "error" (500), "rate" (429), "slow" (answers
    after ``delay`` seconds). A "To" number of "+15005550001" gets Twilio's 400 error
    21211 (not a valid phone number), whatever the mode. Requests are kept in ``requests``.
    """

    INVALID_NUMBER = "+15005550001"

    def __init__(self, account_sid, auth_token):
        self.account_sid, self.auth_token = account_sid, auth_token
        self.mode, self.delay = "ok", 0.0
        self.requests = []  # (path, form fields, headers)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, path, fields, headers):
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if headers.get("Authorization") != expected:
            return _twilio_error(401, 20003, "Authenticate")
        if path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return _twilio_error(404, 20404, f"The requested resource {path} was not found")
        to = fields.get("To")
        if to == self.INVALID_NUMBER:
            return _twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if self.mode == "error":
            return _twilio_error(500, 20500, "An internal server error has occurred")
        if self.mode == "rate":
            return _twilio_error(429, 20429, "Too Many Requests")
        if self.mode == "slow":
            time.sleep(self.delay)
        sid = "SM" + uuid.uuid4().hex
        return 201, {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": fields.get("Body"),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": fields.get("From"),
            "messaging_service_sid": fields.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "sid": sid,
            "status": "queued" if "From" in fields else "accepted",
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }

    def _handler_class(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                fields = {key: values[0] for key, values in form.items()}
                stand_in.requests.append((self.path, fields, dict(self.headers)))
                status, body = stand_in.answer(self.path, fields, self.headers)
                raw = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the timeout test)

            def log_message(self, format, *args):
                pass

        return Handler


class CloseFailsBackend(locmem.EmailBackend):
    """A project's mail backend whose close() raises (locmem's otherwise); counts its closes."""

    closed = 0

    def close(self):
        type(self).closed += 1
        raise OSError("the provider hung up first")
