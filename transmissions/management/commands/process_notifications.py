from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from transmissions.worker import process_all_notifications


class Command(BaseCommand):
    help = "Process the due notifications once (for projects that use cron instead of Celery beat)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=None, help="Notifications per claim.")
        parser.add_argument(
            "--time-limit", type=float, default=None, help="Seconds to keep claiming batches."
        )

    def handle(self, *args: Any, batch_size: int | None, time_limit: float | None, **options: Any) -> None:
        count = process_all_notifications(batch_size=batch_size, time_limit=time_limit)
        self.stdout.write(f"Processed {count} notification(s).")
