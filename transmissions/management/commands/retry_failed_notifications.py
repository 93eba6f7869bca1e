import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from transmissions.models import Notification
from transmissions.status import Status
from transmissions.worker import process_one


class Command(BaseCommand):
    help = (
        "Send again, now, the FAILED notifications scheduled in the last N days (default 7), "
        "oldest first; with --queue, put them back in the queue for the workers instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=7, help="How far back to look (default 7).")
        parser.add_argument("--trigger", default=None, help="Only this trigger name.")
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Make them waiting again, due now, for the workers to send (sends nothing here).",
        )

    def handle(self, *args: Any, days: int, trigger: str | None, queue: bool, **options: Any) -> None:
        if days <= 0:
            raise CommandError("--days must be a positive number of days.")
        now = timezone.now()
        failed = Notification.objects.failed().filter(
            datetime_scheduled__gte=now - datetime.timedelta(days=days), datetime_scheduled__lte=now
        )
        if trigger:
            failed = failed.filter(trigger_name=trigger)
        if queue:
            queued, skipped = failed.requeue()
            self.stdout.write(f"Queued {queued} failed notification(s) again; skipped {skipped}.")
            return
        sent = not_sent = 0
        for notification in failed.select_related("target_user").order_by("datetime_scheduled", "pk"):
            self.stdout.write(f"Sending {notification}")
            ok, outcome = self._send(notification)
            sent, not_sent = sent + ok, not_sent + (not ok)
            self.stdout.write(f"  {outcome}")
        self.stdout.write(f"Sent {sent} failed notification(s) again; {not_sent} not sent.")

    def _send(self, notification: Notification) -> tuple[bool, str]:
        """Send one FAILED ``notification`` through the claim; return whether it was sent, and
        what became of it in words."""
        queued, _ = Notification.objects.filter(pk=notification.pk).requeue(reschedule=False)
        if not queued:
            return (
                False,
                "skipped: another notification of its message blocks it (its behaviour refuses a second)",
            )
        delivery = process_one(notification.pk, raise_broken=False)
        if delivery is None:
            notification.refresh_from_db(fields=["status", "reason"])
            return False, f"taken by a worker meanwhile, or held: {notification.get_status_display()}"
        if delivery.status is None:
            return False, f"to be retried: {delivery.reason}"
        label = str(Status(delivery.status).label)
        ok = delivery.status == Status.SUCCESSFULLY_SENT
        return ok, f"{label}: {delivery.reason}" if delivery.reason else label
