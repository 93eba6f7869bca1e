"""docs/reference.md's OrderShipped example against a real SMTP server on loopback.

A 4xx answer is retried with backoff, a 5xx answer fails, a server that is down is
retried, a 250 sends.
"""

import datetime
import socket
import socketserver
import threading

import pytest
import time_machine
from django.test.utils import override_settings
from django.utils import timezone

from tests.notifications import OrderShipped
from tests.utils import email_settings, make_user
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


class SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP; RCPT TO answers what the test sets in ``server.rcpt``."""

    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 test ESMTP")
        data = False
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            if data:
                if line == ".":
                    data = False
                    self.server.received += 1
                    self.reply("250 queued")
                continue
            verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb == "RCPT":
                self.reply(self.server.rcpt)
            elif verb == "DATA":
                data = True
                self.reply("354 go on")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


@pytest.fixture
def smtp():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SMTPHandler)
    server.daemon_threads = True
    server.rcpt, server.received = "250 ok", 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    with override_settings(**email_settings(host="127.0.0.1", port=port, timeout=5)):
        yield server
    server.shutdown()
    server.server_close()


def run_at(hours):
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=hours)):
        return process_all_notifications()


def test_transient_then_sent(smtp):
    n = OrderShipped.trigger(make_user())
    smtp.rcpt = "451 4.3.0 try again later"
    assert process_all_notifications() == 1
    n.refresh_from_db()
    assert (n.status, n.attempts, n.datetime_processed) == (S.CREATED, 1, None)
    assert n.datetime_scheduled > timezone.now()  # backoff
    smtp.rcpt = "250 ok"
    assert run_at(1) == 1
    n.refresh_from_db()
    assert n.status == S.SUCCESSFULLY_SENT and smtp.received == 1


def test_permanent_refusal_fails(smtp):
    n = OrderShipped.trigger(make_user())
    smtp.rcpt = "550 5.1.1 no such user"
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.FAILED and n.attempts == 1 and smtp.received == 0


def test_server_down_is_retried(smtp):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nothing listens once this socket closes
    n = OrderShipped.trigger(make_user())
    with override_settings(**email_settings(host="127.0.0.1", port=closed_port, timeout=5)):
        process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.CREATED and n.attempts == 1
    assert run_at(1) == 1
    n.refresh_from_db()
    assert n.status == S.SUCCESSFULLY_SENT
