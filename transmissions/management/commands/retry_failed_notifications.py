import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from transmissions.models import Notification


class Command(BaseCommand):
    help = "Queue again the FAILED notifications processed in the last N days."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=1, help="How far back to look (default 1).")
        parser.add_argument("--trigger", default=None, help="Only this trigger name.")

    def handle(self, *args: Any, days: int, trigger: str | None, **options: Any) -> None:
        if days <= 0:
            raise CommandError("--days must be a positive number of days.")
        since = timezone.now() - datetime.timedelta(days=days)
        failed = Notification.objects.failed().filter(datetime_processed__gte=since)
        if trigger:
            failed = failed.filter(trigger_name=trigger)
        queued, skipped = failed.requeue()
        self.stdout.write(f"Queued {queued} failed notification(s) again; skipped {skipped}.")
