"""Play the browsers' and their push service's part: real Web Push, over loopback HTTPS.

A browser that allows notifications subscribes with its vendor's push service and gives the
site an endpoint URL and two keys (``pushManager.subscribe()``); the site stores them as a
django-push-notifications ``WebPushDevice``. This module does both sides on 127.0.0.1: it
subscribes "browsers" for the demo's users (each with its own P-256 key pair and auth
secret), and serves their endpoints over HTTPS with a certificate made for the run, as a
vendor's push service would: it checks the VAPID signature (the site's key,
``PUSH_NOTIFICATIONS_SETTINGS["WP_PRIVATE_KEY"]``), decrypts the aes128gcm body with the
browser's private key and keeps the notification it finds. From the site's side it is
production's path: transmissions' ``PushMessage`` through pywebpush, nothing stubbed.
"""

import datetime
import ipaddress
import json
import os
import ssl
import tempfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings
from push_notifications.models import WebPushDevice
from py_vapid import Vapid
from py_vapid.utils import b64urlencode

# Which demo users have a browser subscribed: most, not all (the others' push step is skipped).
SUBSCRIBED = 0.8
BROWSERS = ["CHROME", "FIREFOX", "EDGE"]
HOST = "127.0.0.1"  # loopback only


def _certificate(directory):
    """A self-signed certificate for 127.0.0.1, valid for the day; return (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(paths[0], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))  # fmt: skip
    return paths


class PushService:
    """``with PushService() as service:`` serves on https://127.0.0.1:<port> and makes
    ``requests`` (pywebpush's client, here and in a worker started meanwhile) trust it."""

    def __init__(self):
        self.keys = {}  # endpoint path -> (browser's private key, auth secret)
        self.received = Counter()  # endpoint path -> notifications decrypted
        self.refused = []  # what failed a check (should stay empty)
        self.lock = threading.Lock()
        self._dir = tempfile.TemporaryDirectory()
        self.ca_file, key_file = _certificate(self._dir.name)
        self._server = ThreadingHTTPServer((HOST, 0), self._handler())
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.origin = f"https://{HOST}:{self._server.server_address[1]}"
        private = settings.PUSH_NOTIFICATIONS_SETTINGS["WP_PRIVATE_KEY"]
        point = Vapid.from_string(private).public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.application_server_key = b64urlencode(point)

    def __enter__(self):
        self._ca_before = os.environ.get("REQUESTS_CA_BUNDLE")
        os.environ["REQUESTS_CA_BUNDLE"] = self.ca_file
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        if self._ca_before is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = self._ca_before
        self._dir.cleanup()

    def subscribe(self, users, rng):
        """Give most of ``users`` a browser subscribed to this service (the demo user always),
        replacing their earlier runs' devices; return how many are subscribed."""
        WebPushDevice.objects.filter(user__in=users).delete()  # an earlier run's service is gone
        devices = []
        for user in users:
            if user.username != "demo" and rng.random() >= SUBSCRIBED:
                continue
            private, auth = ec.generate_private_key(ec.SECP256R1()), os.urandom(16)
            path = f"/push/{user.pk}-{os.urandom(6).hex()}"
            self.keys[path] = (private, auth)
            point = private.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            devices.append(
                WebPushDevice(
                    user=user, name="demo browser", browser=rng.choice(BROWSERS),
                    registration_id=self.origin + path, p256dh=b64urlencode(point), auth=b64urlencode(auth),
                )
            )  # fmt: skip
        WebPushDevice.objects.bulk_create(devices, batch_size=500)
        return len(devices)

    def _receive(self, path, headers, body):
        """Check and decrypt one push as the browser would; return the HTTP status."""
        keys = self.keys.get(path)
        if keys is None:
            return 404
        authorization = headers.get("Authorization", "")
        try:
            parts = dict(p.strip().split("=", 1) for p in authorization.removeprefix("vapid ").split(","))
            if parts.get("k") != self.application_server_key or not Vapid.verify(authorization):
                raise ValueError("the VAPID signature is not the site's")
            plain = http_ece.decrypt(body, private_key=keys[0], auth_secret=keys[1], version="aes128gcm")
            shown = json.loads(plain)
            if not shown.get("title") or not shown.get("body"):
                raise ValueError(f"nothing to show: {shown}")
        except Exception as exc:
            with self.lock:
                self.refused.append(f"{path}: {type(exc).__name__}: {exc}")
            return 400
        with self.lock:
            self.received[path] += 1
        return 201

    def _handler(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = service._receive(self.path, self.headers, body)
                self.send_response(status)
                if status == 201:  # RFC 8030: the push message's URL
                    self.send_header("Location", f"{service.origin}/message/{os.urandom(8).hex()}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        return Handler
