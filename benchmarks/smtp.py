#!/usr/bin/env python
"""Emails through a real SMTP server on loopback: what one session per batch is worth.

    python benchmarks/smtp.py [--db sqlite|postgres] [--n 2000] [--rounds 3]

An aiosmtpd server (``aiosmtpd.handlers.Sink``, which accepts and drops every message) runs
in a process of its own on 127.0.0.1. The same ``--n`` due ``DefaultEmailMessage`` rows are
sent through Django's SMTP backend by ``process_all_notifications(batch_size=100)``, then as
django-post-office's ``send_queued()`` sends them (batch 100, one connection per batch), then
with no database: the same ``EmailMessage``s ``send()``-ing each through a session of its own,
and all through one session. Prints emails per second for each round and the medians.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import setup_db  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"the SMTP server did not start on 127.0.0.1:{port}")


def main() -> None:
    args = setup_db.parse_and_configure(__doc__, n=2000, rounds=3)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"]
    )
    try:
        wait_for(port)
        run(args, port)
    finally:
        server.terminate()
        server.wait(timeout=10)


def run(args: Any, port: int) -> None:
    from django.core import mail
    from django.core.mail import EmailMessage
    from django.test.utils import override_settings

    from benchmarks import bench_messages as m
    from benchmarks import raw
    from benchmarks import workloads as w

    smtp = "django.core.mail.backends.smtp.EmailBackend"
    users = w.make_users(args.n, "s")
    ids = [u.pk for u in users]
    conn = setup_db.raw_connection(args.db)
    sides: dict[str, list[float]] = {
        "transmissions": [],
        "post-office": [],
        "bare, a session each": [],
        "bare, one": [],
    }
    settings = {"EMAIL_BACKEND": smtp, "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port, "EMAIL_TIMEOUT": 10}
    post_office = {"BACKENDS": {"default": smtp}, "LOG_LEVEL": 1, "BATCH_SIZE": 100}

    def each() -> None:
        for i in range(args.n):
            EmailMessage(subject=m.SUBJECT, body=m.BODY, from_email=None, to=[users[i].email]).send()

    def one() -> None:
        connection = mail.get_connection(fail_silently=False)
        connection.open()
        try:
            for i in range(args.n):
                connection.send_messages([EmailMessage(subject=m.SUBJECT, body=m.BODY, to=[users[i].email])])
        finally:
            connection.close()

    def po_send() -> None:
        from post_office.mail import send_queued

        while True:
            sent, failed, _ = send_queued(processes=1)
            assert not failed, failed
            if not sent:
                break

    print("| round | " + " | ".join(sides) + " |")
    print("|---|" + "---:|" * len(sides))
    with override_settings(**settings, POST_OFFICE=post_office):
        for round_ in range(1, args.rounds + 1):
            w.clear(args.db)
            w.seed_due(conn, args.db, "bench-email", ids, args.n)
            raw.analyze(conn, args.db)
            sides["transmissions"].append(args.n / w.process(args.n))
            w.clear(args.db)
            w.seed_post_office(users, args.n)
            sides["post-office"].append(args.n / w.timed(po_send))
            w.clear(args.db)
            sides["bare, a session each"].append(args.n / w.timed(each))
            sides["bare, one"].append(args.n / w.timed(one))
            print(f"| {round_} | " + " | ".join(f"{v[-1]:,.0f}" for v in sides.values()) + " |", flush=True)
    print("| median | " + " | ".join(f"{statistics.median(v):,.0f}" for v in sides.values()) + " |")
    print("\nemails per second")


if __name__ == "__main__":
    main()
