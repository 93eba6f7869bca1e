from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import ngettext

from transmissions.worker import run

OUTCOMES = ("sent", "cancelled", "failed", "broken", "retried", "deferred", "released", "deleted")


class Command(BaseCommand):
    help = "Process the due notifications once (for projects that use cron instead of Celery beat)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=None, help="Notifications per claim.")
        parser.add_argument(
            "--time-limit", type=float, default=None, help="Seconds to keep claiming batches."
        )

    def handle(self, *args: Any, batch_size: int | None, time_limit: float | None, **options: Any) -> None:
        verbose = options["verbosity"] >= 2
        summary = run(batch_size=batch_size, time_limit=time_limit, detail=verbose)
        if verbose:
            for pk, trigger_name, outcome, reason in summary.rows:
                self.stdout.write(f"{pk:>10}  {trigger_name:<30} {outcome:<18} {reason}".rstrip())
        taken = summary.taken
        self.stdout.write(
            ngettext("Processed %d notification.", "Processed %d notifications.", taken) % taken
        )
        if summary.taken:
            width = max(len(name) for name in OUTCOMES)
            for name in OUTCOMES:
                count = summary.counts.get(name, 0)
                if count:
                    self.stdout.write(f"  {name:<{width}}  {count:>7}")
