"""A Web Push service on 127.0.0.1 for the tests, over HTTPS like the real ones.

It does what a browser vendor's push service and the browser do together: checks
the VAPID ``Authorization`` header (signature, key, audience, contact), decrypts the
aes128gcm body with the subscription's private key (http_ece) and keeps the JSON it
finds. Paths choose the answer: ``/ok/<name>`` 201, ``/gone/<name>`` 410,
``/missing/<name>`` 404, ``/error/<name>`` 500, ``/busy/<name>`` 429, ``/refuse/<name>`` 400.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from py_vapid import Vapid
from py_vapid.utils import b64urldecode, b64urlencode

STATUS = {"ok": 201, "gone": 410, "missing": 404, "error": 500, "busy": 429, "refuse": 400}


@dataclass
class Subscription:
    """What a browser's ``pushManager.subscribe()`` returns, with its private half."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64urlencode(point)

    @property
    def auth_b64(self) -> str:
        return b64urlencode(self.auth)


@dataclass
class Received:
    path: str
    status: int
    headers: dict[str, str]  # names in lower case
    payload: dict | None = None
    vapid_claims: dict = field(default_factory=dict)
    problem: str | None = None


def _certificate(directory: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_path, key_path


class PushService:
    """Start with ``with PushService(vapid_public_key) as service:``; ``service.ca_file`` is its CA."""

    def __init__(self, vapid_public_key: str) -> None:
        self.vapid_public_key = vapid_public_key
        self.subscriptions: dict[str, Subscription] = {}
        self.received: list[Received] = []
        self._dir = tempfile.TemporaryDirectory()
        self.ca_file, key_file = _certificate(self._dir.name)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.origin = f"https://127.0.0.1:{self._server.server_address[1]}"

    def subscribe(self, kind: str, name: str) -> Subscription:
        """Return a new browser subscription whose endpoint answers as ``kind`` says."""
        sub = Subscription(
            f"{self.origin}/{kind}/{name}", ec.generate_private_key(ec.SECP256R1()), os.urandom(16)
        )
        self.subscriptions[f"/{kind}/{name}"] = sub
        return sub

    def __enter__(self) -> PushService:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._dir.cleanup()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got = Received(self.path, 0, {k.lower(): v for k, v in self.headers.items()})
                got.status = service._answer(self.path, got, body)
                service.received.append(got)
                self.send_response(got.status)
                if got.status == 429:
                    self.send_header("Retry-After", "120")
                if got.status == 201:
                    # RFC 8030 section 5: the push message's URL.
                    self.send_header("Location", f"{service.origin}/m/{len(service.received)}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def _answer(self, path: str, got: Received, body: bytes) -> int:
        sub = self.subscriptions.get(path)
        if sub is None:
            got.problem = "unknown subscription"
            return 404
        try:
            got.vapid_claims = self._check_vapid(got.headers.get("authorization", ""))
            if got.headers.get("content-encoding") != "aes128gcm":
                raise ValueError(f"Content-Encoding {got.headers.get('content-encoding')!r}")
            plain = http_ece.decrypt(
                body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
            )
            got.payload = json.loads(plain)
        except Exception as exc:
            got.problem = f"{type(exc).__name__}: {exc}"
            return 400
        return STATUS[path.split("/")[1]]

    def _check_vapid(self, authorization: str) -> dict:
        # RFC 8292: "vapid t=<JWT signed with the key k>, k=<the public key>".
        if not authorization.startswith("vapid "):
            raise ValueError(f"no VAPID Authorization header: {authorization!r}")
        parts = dict(p.strip().split("=", 1) for p in authorization[6:].split(","))
        if parts.get("k") != self.vapid_public_key:
            raise ValueError("VAPID key is not the application server's")
        if not Vapid.verify(authorization):
            raise ValueError("VAPID signature does not verify")
        claims = json.loads(b64urldecode(parts["t"].split(".")[1].encode()))
        if claims.get("aud") != self.origin or claims.get("exp", 0) <= time.time():
            raise ValueError(f"VAPID claims wrong: {claims}")
        return claims


def vapid_public_key(private_key: str) -> str:
    """Return the application server key (what ``pushManager.subscribe()`` is given)."""
    point = Vapid.from_string(private_key).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).decode().rstrip("=")
