"""Real OS processes for the multi-process tests: each one a fresh Django on the test database.

A child runs ``python -m tests.child ROLE [options]``, or ``python -m tests.child manage
COMMAND ...`` for a management command (a task worker). The parent passes the name of
the database pytest-django created in ``TRANSMISSIONS_CHILD_DB_NAME`` and extra settings
(lease, policy...) as JSON in ``TRANSMISSIONS_CHILD_SETTINGS``. Children that must start
together wait on a file barrier: each touches ``ready-<pid>`` in the barrier directory,
then waits for ``go``, which the parent writes once all are ready.
The child prints one JSON line with its result on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME_ENV = "TRANSMISSIONS_CHILD_DB_NAME"
SETTINGS_ENV = "TRANSMISSIONS_CHILD_SETTINGS"
BARRIER_TIMEOUT = 60


def configure_django() -> None:
    """Set up Django on the database the parent names, with the parent's extra settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.conf import settings

    name = os.environ.get(DB_NAME_ENV)
    if name:
        # Before django.setup(): connections are built lazily from this dict.
        settings.DATABASES["default"]["NAME"] = name
    for key, value in json.loads(os.environ.get(SETTINGS_ENV) or "{}").items():
        setattr(settings, key, value)
    django.setup()


def _wait_for_go(barrier: str | None) -> None:
    if not barrier:
        return
    from django.db import connection

    connection.ensure_connection()  # connect before the start, so all start on equal terms
    Path(barrier, f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + BARRIER_TIMEOUT
    while not Path(barrier, "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("barrier: no go within the timeout")
        time.sleep(0.001)


def _trigger(args: argparse.Namespace) -> dict:
    from tests.models import User
    from transmissions.registry import registry

    classes = [registry.get(name) for name in args.names.split(",")]
    if args.key is not None:
        return _trigger_keyed(args, classes[0])
    user = User.objects.get(pk=args.user)
    _wait_for_go(args.barrier)
    created = {cls.trigger_name: 0 for cls in classes}
    for _ in range(args.rounds):
        for cls in classes:
            if cls.trigger(user) is not None:
                created[cls.trigger_name] += 1
    return {"created": created}


def _trigger_keyed(args: argparse.Namespace, cls: type) -> dict:
    """Trigger ``cls`` with idempotency key ``args.key`` for ``args.user`` (or, with
    ``args.users``, trigger_many with the key per user "<key>-<pk>"); return the ids the
    calls returned."""
    from tests.models import User

    many = list(User.objects.filter(pk__in=[int(pk) for pk in args.users.split(",")])) if args.users else []
    user = None if many else User.objects.get(pk=args.user)
    _wait_for_go(args.barrier)
    returned = []
    for _ in range(args.rounds):
        if many:
            made = cls.trigger_many(many, idempotency_key=lambda u: f"{args.key}-{u.pk}")
            returned.append({n.target_user_id: n.pk for n in made})
        else:
            returned.append(cls.trigger(user, idempotency_key=args.key).pk)
    return {"returned": returned}


def _event(args: argparse.Namespace) -> dict:
    """Trigger the escalation ``args.names`` for ``args.user``, ``args.rounds`` times (with the
    idempotency key ``args.key``, if given); return the steps' ids each call returned."""
    from tests.models import User
    from transmissions.registry import escalations

    [event] = [e for e in escalations.all() if getattr(e, "name", None) == args.names]
    user = User.objects.get(pk=args.user)
    _wait_for_go(args.barrier)
    returned = []
    for _ in range(args.rounds):
        steps = event.trigger(user, idempotency_key=args.key)  # type: ignore[attr-defined]
        returned.append([n.pk for n in steps])
    return {"returned": returned}


def _process(args: argparse.Namespace) -> dict:
    from transmissions import tasks, worker

    _wait_for_go(args.barrier)
    start = time.time()
    taken = runs = 0
    while True:
        # --task runs the Celery task's body, as a worker does when beat fires.
        if args.task:
            got = tasks.process_all_notifications()
        else:
            got = worker.process_all_notifications(batch_size=args.batch_size)
        taken += got
        runs += 1
        if not args.loop or (got == 0 and (not args.stop or Path(args.stop).exists())):
            break
        if got == 0:
            time.sleep(0.05)
    return {"taken": taken, "runs": runs, "start": start, "end": time.time()}


def _send(args: argparse.Namespace) -> dict:
    """Send each notification of the JSON file ``args.ids`` one by one, in an order of this
    child's: through ``Notification.send()``, or 0.2's task ``process_notification`` (--task)."""
    import logging
    import random

    from transmissions import tasks
    from transmissions.models import Notification

    logging.disable(logging.WARNING)  # "not processed: it is ..." for every row another child took
    ids = json.loads(Path(args.ids).read_text())
    random.Random(args.seed).shuffle(ids)
    _wait_for_go(args.barrier)
    processed = 0
    for pk in ids:
        if args.task:
            tasks.process_notification(pk)
        else:
            processed += Notification.objects.get(pk=pk).send()
    return {"processed": processed}


def _events(args: argparse.Namespace) -> dict:
    """Record the delivery events of the JSON file ``args.events``, in an order of this child's."""
    import datetime
    import random

    from transmissions.tracking import Event, record

    rows = json.loads(Path(args.events).read_text())
    random.Random(args.seed).shuffle(rows)
    _wait_for_go(args.barrier)
    stored = 0
    for message_id, event_id, state, minute in rows:
        at = datetime.datetime(2026, 5, 4, 12, minute, tzinfo=datetime.UTC)
        hard, address = state in ("bounced", "complained"), f"{message_id}@example.com"
        event = Event("acme", event_id, state, state, message_id, at, address, suppress=hard)
        stored += record(event).event is not None
    return {"stored": stored}


def _optout(args: argparse.Namespace, enabled: bool = False) -> dict:
    """Turn "comments" off (``optin``: on) on "memo" for each user of ``args.users``, one commit
    each; return the time each commit had returned by, and the time each call began."""
    from tests.models import User
    from transmissions.preferences import set_preference

    users = list(User.objects.filter(pk__in=[int(pk) for pk in args.users.split(",")]).order_by("?"))
    _wait_for_go(args.barrier)
    off, began = {}, {}
    for user in users:
        began[user.pk] = time.time()
        set_preference(user, "comments", "memo", enabled)  # autocommit: committed on return
        off[user.pk] = time.time()
        time.sleep(0.002)
    return {"off": off, "began": began}


def _optin(args: argparse.Namespace) -> dict:
    return _optout(args, enabled=True)


def _seen(args: argparse.Namespace) -> dict:
    """Mark the entry of each user of ``args.users`` seen (``mark_seen()``, autocommit); return, per
    user, how many waiting steps that cancelled and the time it had returned by."""
    from transmissions.models import Notification

    entries = list(
        Notification.objects.filter(
            target_user_id__in=[int(pk) for pk in args.users.split(",")], trigger_name=args.names
        ).order_by("?")
    )
    _wait_for_go(args.barrier)
    seen = {}
    for entry in entries:
        cancelled = entry.mark_seen()  # autocommit: committed on return
        seen[entry.target_user_id] = (cancelled, time.time())
        time.sleep(0.002)
    return {"seen": seen}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["manage"]:
        # ``manage COMMAND ...``: a management command (a task worker) on the parent's database.
        configure_django()
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", *argv[1:]])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "role", choices=["trigger", "event", "process", "events", "optout", "optin", "seen", "send"]
    )
    parser.add_argument("--barrier")
    parser.add_argument("--user", type=int)
    parser.add_argument("--names", default="")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--task", action="store_true")
    parser.add_argument("--loop", action="store_true", help="run until a run finds nothing due")
    parser.add_argument("--stop", help="with --loop: keep polling until this file exists")
    parser.add_argument("--events", help="events: a JSON file of [message id, event id, state, minute]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ids", help="send: a JSON file of notification ids")
    parser.add_argument("--key", help="trigger: the idempotency key of every call")
    parser.add_argument("--users", help="optout, optin, seen, trigger --key: comma-separated user ids")
    args = parser.parse_args(argv)
    configure_django()
    roles = {
        "trigger": _trigger,
        "event": _event,
        "process": _process,
        "events": _events,
        "optout": _optout,
        "optin": _optin,
        "seen": _seen,
        "send": _send,
    }
    result = roles[args.role](args)
    print(json.dumps(result), flush=True)


# --- parent side ----------------------------------------------------------------------


def child_env(db_name: str, settings: dict | None = None, **extra: str) -> dict[str, str]:
    """Return the environment for a child on ``db_name`` with extra ``settings``."""
    env = dict(os.environ, **extra)
    env[DB_NAME_ENV] = db_name
    env[SETTINGS_ENV] = json.dumps(settings or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def spawn(env: dict[str, str], *args: str) -> subprocess.Popen:
    """Start ``python -m tests.child *args`` as a new process."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.child", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def release(barrier: Path, procs: list[subprocess.Popen], timeout: float = BARRIER_TIMEOUT) -> None:
    """Wait until every child is at the barrier, then let them all go at once."""
    deadline = time.monotonic() + timeout
    while len(list(barrier.glob("ready-*"))) < len(procs):
        dead = [p for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            stop(procs)
            errors = "\n".join(p.stderr.read() for p in dead if p.stderr)
            raise AssertionError(f"children did not reach the barrier:\n{errors}")
        time.sleep(0.01)
    (barrier / "go").touch()


def results(procs: list[subprocess.Popen], timeout: float = 120) -> list[dict]:
    """Wait for every child (bounded); return their JSON results; fail on any error."""
    deadline = time.monotonic() + timeout
    out = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=max(deadline - time.monotonic(), 0.1))
            if p.returncode != 0:
                raise AssertionError(f"child {p.args[3:]} exited {p.returncode}:\n{stderr}")
            out.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        stop(procs)
    return out


def stop(procs: list[subprocess.Popen]) -> None:
    """Kill the children that are still running (only these processes, by their id)."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


if __name__ == "__main__":
    main()
