"""``process_notifications``: one run (for cron), or ``--loop``, a sweeper that keeps running.

``--loop`` is for projects with no periodic scheduler (no Celery beat, no cron): it runs,
sleeps ``--interval`` seconds whenever a run found nothing due, and runs again, until
SIGTERM or SIGINT (the run in progress finishes first: nothing is left claimed) or
``--duration`` seconds have passed. A run that took notifications is followed by another
at once: a backlog is worked off at full speed. Several sweepers, or a sweeper beside
Celery or a task worker, never send a notification twice (the claim).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections, connections
from django.utils.translation import ngettext

from transmissions.worker import Summary, run

OUTCOMES = ("sent", "cancelled", "failed", "broken", "retried", "deferred", "released", "deleted")


class Command(BaseCommand):
    help = (
        "Process the due notifications once (for cron), or with --loop keep processing them "
        "until stopped (for projects with neither Celery beat nor cron)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=None, help="Notifications per claim.")
        parser.add_argument(
            "--time-limit", type=float, default=None, help="Seconds to keep claiming batches."
        )
        parser.add_argument(
            "--loop",
            action="store_true",
            help="Keep running: run again every --interval seconds until SIGTERM/SIGINT.",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=5.0,
            help="With --loop: seconds to wait after a run that found nothing due (default 5).",
        )
        parser.add_argument(
            "--duration",
            type=float,
            default=None,
            help="With --loop: stop after this many seconds (e.g. under a supervisor that restarts it).",
        )

    def handle(
        self,
        *args: Any,
        batch_size: int | None,
        time_limit: float | None,
        loop: bool,
        interval: float,
        duration: float | None,
        **options: Any,
    ) -> None:
        verbose = options["verbosity"] >= 2
        if not loop:
            self._report(run(batch_size=batch_size, time_limit=time_limit, detail=verbose), verbose)
            return
        if interval <= 0:
            raise CommandError(f"--interval must be a positive number of seconds, not {interval}.")
        if duration is not None and duration <= 0:
            raise CommandError(f"--duration must be a positive number of seconds, not {duration}.")
        stop = threading.Event()
        restore = _on_stop_signals(stop)
        deadline = None if duration is None else time.monotonic() + duration
        runs, total = 0, Summary()
        try:
            while not stop.is_set():
                _close_old_connections()
                summary = run(batch_size=batch_size, time_limit=time_limit, detail=verbose)
                runs += 1
                total.taken += summary.taken
                total.counts.update(summary.counts)
                if summary.taken:
                    self._report(summary, verbose)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                if not summary.taken:
                    stop.wait(interval if left is None else min(interval, left))
        finally:
            restore()
        runs_text = ngettext("%d run", "%d runs", runs) % runs
        taken_text = ngettext("%d notification", "%d notifications", total.taken) % total.taken
        self.stdout.write(f"Stopped after {runs_text}: {taken_text} processed.")
        self._counts(total.counts)

    def _report(self, summary: Summary, verbose: bool) -> None:
        if verbose:
            for pk, trigger_name, outcome, reason in summary.rows:
                self.stdout.write(f"{pk:>10}  {trigger_name:<30} {outcome:<18} {reason}".rstrip())
        taken = summary.taken
        self.stdout.write(
            ngettext("Processed %d notification.", "Processed %d notifications.", taken) % taken
        )
        self._counts(summary.counts)

    def _counts(self, counts: Counter[str]) -> None:
        if not counts:
            return
        width = max(len(name) for name in OUTCOMES)
        for name in OUTCOMES:
            count = counts.get(name, 0)
            if count:
                self.stdout.write(f"  {name:<{width}}  {count:>7}")


def _close_old_connections() -> None:
    """Close connections that errored or outlived ``CONN_MAX_AGE``, as a request cycle does
    (a long-running process); not when called inside a caller's ``atomic()``, which closing
    would break."""
    if not any(c.in_atomic_block for c in connections.all(initialized_only=True)):
        close_old_connections()


def _on_stop_signals(stop: threading.Event) -> Any:
    """Set ``stop`` on SIGTERM and SIGINT; return what puts the previous handlers back.
    Outside the main thread (where Python allows no handler) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
