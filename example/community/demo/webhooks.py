"""Play the email provider's part after sending: post its delivery webhooks, over loopback HTTP.

The demo's emails are files (Django's file backend), so no real ESP will ever call back.
This module stands in for Postmark: for each email this run sent it decides what became of
it (delivered, opened, clicked, a hard bounce, a complaint, a delay), and POSTs Postmark's
webhook JSON, as Postmark would, to django-anymail's own Postmark tracking view
(``/anymail/postmark/tracking/``), served on 127.0.0.1 by a WSGI server in a thread. From there
it is the production path: anymail checks the basic auth, parses the event and sends its
``tracking`` signal, and transmissions records it. A few webhooks are posted twice, and some
arrive out of order, as real ones do.
"""

import base64
import json
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from transmissions.models import Notification

PATH = "/anymail/postmark/tracking/"


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def postmark_events(notification, rng):
    """Return the Postmark webhooks for one sent email, in the order they are posted."""
    email, sent = notification.target_user.email, notification.datetime_processed
    base = {"MessageID": notification.provider_message_id, "ServerID": 1, "MessageStream": "outbound"}

    def at(seconds):
        return (sent + timedelta(seconds=seconds)).isoformat()

    roll = rng.random()
    if roll < 0.03:
        return [
            {
                **base, "RecordType": "Bounce", "Type": "HardBounce", "ID": rng.randrange(10**12),
                "Email": email, "BouncedAt": at(4), "Description": "Unknown user",
                "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            }
        ]  # fmt: skip
    events = []
    if roll < 0.08:  # delayed by the receiving server, then delivered
        events.append(
            {
                **base, "RecordType": "Bounce", "Type": "Transient", "ID": rng.randrange(10**12),
                "Email": email, "BouncedAt": at(2), "Details": "smtp;451 4.7.1 Greylisted, try again",
            }
        )  # fmt: skip
    delivered = {**base, "RecordType": "Delivery", "Recipient": email, "DeliveredAt": at(5)}
    events.append(delivered)
    if rng.random() < 0.45:
        events.append({**base, "RecordType": "Open", "Recipient": email, "ReceivedAt": at(600)})
        if rng.random() < 0.35:
            click = {"RecordType": "Click", "Recipient": email, "ReceivedAt": at(640)}
            events.append({**base, **click, "OriginalLink": "http://127.0.0.1:8000/"})
    if rng.random() < 0.01:
        events.append(
            {
                **base, "RecordType": "SpamComplaint", "Type": "SpamComplaint", "ID": rng.randrange(10**12),
                "Email": email, "BouncedAt": at(900),
            }
        )  # fmt: skip
    if len(events) > 1 and rng.random() < 0.15:
        events[-1], events[-2] = events[-2], events[-1]  # arrives out of order
    if rng.random() < 0.05:
        events.append(dict(rng.choice(events)))  # Postmark retries one it thinks was lost
    return events


def sent_emails(since):
    """The emails this run sent (since ``since``) with the provider's id the worker kept."""
    return (
        Notification.objects.filter(
            channel="email", status=Notification.Status.SUCCESSFULLY_SENT, datetime_processed__gte=since
        )
        .exclude(provider_message_id="")
        .select_related("target_user")
        .order_by("pk")
    )


def post_webhooks(emails, rng, progress=None, clients=4):
    """POST the webhooks of ``emails``; return how many were posted."""
    # One list per email, posted in order; different emails' webhooks go in parallel.
    plans = [postmark_events(n, rng) for n in emails]
    server = make_server("127.0.0.1", 0, get_wsgi_application(), _Server, _QuietHandler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}{PATH}"
    auth = "Basic " + base64.b64encode(settings.ANYMAIL["WEBHOOK_SECRET"].encode()).decode()

    lock, done = threading.Lock(), [0]

    def post(events):
        for event in events:
            request = urllib.request.Request(
                url,
                data=json.dumps(event).encode(),
                headers={"Content-Type": "application/json", "Authorization": auth},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                if response.status != 200:
                    raise RuntimeError(f"{PATH} answered {response.status}")
        with lock:
            done[0] += 1
            if progress is not None:
                progress.update(done[0])
        return len(events)

    try:
        with ThreadPoolExecutor(clients) as pool:
            return sum(pool.map(post, plans))
    finally:
        server.shutdown()
        server.server_close()
