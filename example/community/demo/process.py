"""Process the demo's notifications the way production does: through the Celery task.

With CELERY_BROKER_URL set, a real worker (started here) runs the task; without one,
Celery runs it in-process (CELERY_TASK_ALWAYS_EAGER): the same task, the same code.
Either way this module plays celery beat's part, sending the task every second
rather than every minute, until nothing of this run is waiting.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Min
from django.utils import timezone

from transmissions.models import Notification
from transmissions.tasks import process_all_notifications

EXAMPLE_DIR = Path(__file__).resolve().parents[2]
CREATED = Notification.Status.CREATED
TICK = 1.0  # seconds between two "beats"


def check_broker(url):
    """Raise CommandError unless the broker at ``url`` answers."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except ImportError as exc:
        raise CommandError(f"CELERY_BROKER_URL={url}: {exc}. Run: pip install -e '.[example]'.") from exc
    except Exception as exc:
        raise CommandError(
            f"CELERY_BROKER_URL={url} is not reachable ({type(exc).__name__}: {exc}). "
            "Start the broker, or unset CELERY_BROKER_URL to process in-process."
        ) from exc


def start_worker(queue):
    """Start a Celery worker for the example project, consuming ``queue``; return the process."""
    cmd = [
        sys.executable, "-m", "celery", "-A", "example_project", "worker",
        "--loglevel=WARNING", "--concurrency=2", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "--queues", queue,
        "--hostname", f"demo-{os.getpid()}@%h",
    ]  # fmt: skip
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "")}
    env["DJANGO_SETTINGS_MODULE"] = env["DJANGO_SETTINGS_MODULE"] or "example_project.settings"
    return subprocess.Popen(cmd, cwd=EXAMPLE_DIR, env=env, stdout=subprocess.DEVNULL)


def stop_worker(worker, queue):
    worker.terminate()  # SIGTERM: Celery's warm shutdown finishes the running task
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    # Drop the beats nobody needs any more, and the queue with them.
    from kombu import Exchange, Queue

    with process_all_notifications.app.connection_for_write() as conn:
        bound = Queue(queue, Exchange(queue), routing_key=queue)(conn.default_channel)
        bound.declare()  # so that the channel knows the bindings it must remove
        bound.delete()


class Reporter(threading.Thread):
    """Show the progress from a second database connection while the task runs."""

    def __init__(self, progress, waiting, created):
        super().__init__(daemon=True)
        self.progress, self.waiting, self.created = progress, waiting, created
        self.stopped = threading.Event()

    def run(self):
        try:
            while not self.stopped.wait(0.3):
                self.report()
        finally:
            connection.close()  # this thread's own connection

    def report(self):
        left = self.waiting.count()
        due_later = self.waiting.filter(datetime_scheduled__gt=timezone.now()).count()
        note = f"processed, {due_later} scheduled for the next seconds" if due_later else "processed"
        self.progress.update(self.created - left, note)


def waiting_since(since):
    """This run's notifications still to be processed, but those quiet hours hold (due at
    07:00 their recipients' time: the demo does not wait for them)."""
    mine = Notification.objects.filter(datetime_created__gte=since)
    return mine.pending().exclude(pk__in=mine.filter(status=CREATED).held("quiet-hours").values("pk"))


def process(since, created, progress, timeout):
    """Send the task until no notification created since ``since`` is waiting (those quiet
    hours hold aside)."""
    waiting = waiting_since(since)
    # A queue of this run's own: another demo's worker on the same broker must not
    # take our task (it would process its own database, not ours).
    queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-{os.getpid()}"
    worker = start_worker(queue) if settings.CELERY_BROKER_URL else None
    reporter = Reporter(progress, waiting, created)
    reporter.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            next_due = waiting.filter(status=CREATED).aggregate(t=Min("datetime_scheduled"))["t"]
            if next_due is None and not waiting.exists():
                break
            if time.monotonic() > deadline:
                raise CommandError(f"{waiting.count()} notifications still waiting after {timeout}s.")
            if worker is not None and worker.poll() is not None:
                raise CommandError(f"The Celery worker exited with code {worker.returncode}.")
            if next_due is not None and next_due <= timezone.now():
                # Eager (no broker): the task runs here and now.
                process_all_notifications.apply_async(queue=queue)
            time.sleep(TICK)
    finally:
        reporter.stopped.set()
        reporter.join()
        if worker is not None:
            stop_worker(worker, queue)
    reporter.report()
