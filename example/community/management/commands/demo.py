"""``python example/manage.py demo``: a community's worth of notifications, sent for real."""

import os
import random
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from django.utils import timezone

from community.demo.process import check_broker, process
from community.demo.progress import Progress
from community.demo.report import delivery_rows, digest_line, format_delivery, format_table, summary_rows
from community.demo.simulate import DEMO_PASSWORD, DEMO_USERNAME, ensure_users, simulate
from community.demo.webhooks import post_webhooks, sent_emails
from transmissions.models import Notification, Suppression


class Readers:
    """After each beat: the users read some of the reply entries that reached their inbox (each
    entry once, three in five of them), as if they opened the site."""

    def __init__(self, since, rng):
        self.since, self.rng, self.done = since, rng, set()

    def __call__(self):
        entries = Notification.objects.filter(
            datetime_created__gte=self.since,
            trigger_name="reply-inapp",
            status=Notification.Status.SUCCESSFULLY_SENT,
        ).exclude(pk__in=self.done)
        for entry in entries:
            self.done.add(entry.pk)
            if self.rng.random() < 0.6:
                entry.mark_seen()


class Command(BaseCommand):
    help = (
        "Migrate, create demo users, trigger thousands of notifications of every kind, process "
        "them through the Celery task (a real worker when CELERY_BROKER_URL is set, in-process "
        "otherwise), wait for the scheduled ones, and print a summary. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=200, help="Users to simulate (default 200).")
        parser.add_argument(
            "--later", type=float, default=10.0,
            help="Seconds ahead the scheduled notifications are due, at most (default 10).",
        )  # fmt: skip
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for a repeatable run.")
        parser.add_argument("--timeout", type=float, default=300.0, help="Give up processing after this.")

    def handle(self, *args, users, later, seed, timeout, **options):
        if users < 2:
            raise CommandError("--users must be at least 2.")
        if not 0 <= later <= 3600:
            raise CommandError("--later must be between 0 and 3600 seconds.")
        broker = settings.CELERY_BROKER_URL
        if broker:
            check_broker(broker)  # before writing anything
        started = time.monotonic()
        Path(settings.DATA_DIR).mkdir(parents=True, exist_ok=True)
        out = self.stdout
        database = settings.DATABASES["default"]["NAME"]
        out.write(f"Database {database}")
        call_command("migrate", interactive=False, verbosity=0)

        rng = random.Random(seed)
        since = timezone.now()
        all_users, new_users = ensure_users(users, rng)
        existing = len(all_users) - len(new_users)
        out.write(f"Users      {len(all_users)} ({len(new_users)} new, {existing} existing)")
        tally = simulate(all_users, new_users, later, rng, Progress(out, "Triggering", len(all_users)))
        out.write("")
        how = f"a Celery worker on {broker}" if broker else "the Celery task, in-process (no broker set)"
        out.write(f"Processing {tally.created} notifications with {how}")
        progress = Progress(out, "Processing", tally.created)
        process(since, tally.created, progress, timeout, on_beat=Readers(since, rng))
        progress.finish()
        out.write("")
        out.write(format_table(summary_rows(since, tally)))
        out.write(digest_line(since))
        welcomes = Notification.objects.sent().filter(
            trigger_name="welcome-email", datetime_created__gte=since
        )
        by_language = dict(welcomes.values_list("target_user__language").annotate(n=Count("id")).order_by())
        out.write(
            f"{by_language.get('de', 0)} welcome emails written in German, {by_language.get('en', 0)} in "
            "English: each in its recipient's language (User.language)"
        )
        opted_out = Notification.objects.filter(datetime_created__gte=since).held("opted-out").count()
        out.write(
            f"{opted_out} of the cancelled were opted out: {tally.opted_out_users} users turned comment "
            "emails off after they were triggered (the worker reads preferences when it sends)"
        )
        mine = Notification.objects.filter(datetime_created__gte=since)
        entries = mine.filter(trigger_name="reply-inapp", status=Notification.Status.SUCCESSFULLY_SENT)
        seen = entries.filter(datetime_seen__isnull=False).count()
        saved = mine.filter(trigger_name="reply-email").held("seen").count()
        out.write(
            f"{saved} reply emails saved: {seen} of {entries.count()} in-app reply entries were read during "
            "the run, and each one read before its email was due cancelled it (reason 'seen: ...'; "
            "docs/escalation.md)"
        )
        self.delivery(since, rng)
        self.where_to_look(time.monotonic() - started)

    def delivery(self, since, rng):
        """Post the ESP's delivery webhooks for this run's emails, then show what was recorded."""
        out = self.stdout
        emails = list(sent_emails(since))
        out.write("")
        out.write(f"Delivery   {len(emails)} emails: their ESP's webhooks (Postmark's, played here) go to")
        out.write("           django-anymail's webhook view over loopback HTTP, and on to transmissions")
        progress = Progress(out, "Webhooks", len(emails))
        posted = post_webhooks(emails, rng, progress)
        progress.finish()
        rows = delivery_rows(since)
        stored = rows[-1]["events"]
        out.write("")
        out.write(format_delivery(rows))
        suppressed = Suppression.objects.filter(datetime_created__gte=since).count()
        out.write(
            f"{posted} webhooks posted, {stored} delivery events recorded ({posted - stored} posted twice or "
            f"not about delivery, ignored); {suppressed} addresses suppressed (hard bounces, complaints): "
            "their next notifications are cancelled, with the reason"
        )

    def where_to_look(self, elapsed):
        emails = Path(settings.EMAILS_DIR)
        files = list(emails.glob("*.log")) if emails.exists() else []
        # The file backend ends every message with a line of 79 dashes.
        n_emails = sum(f.read_text(encoding="utf-8").count("\n" + "-" * 79 + "\n") for f in files)
        sms = Path(settings.SMS_FILE_PATH)
        n_sms = sum(1 for _ in sms.open(encoding="utf-8")) if sms.exists() else 0
        self.stdout.write(
            f"""
Done in {elapsed:.1f}s. Where to look:
  emails   {emails}/  ({n_emails} emails in {len(files)} files in all)
  SMS      {sms}  ({n_sms} lines in all)
  inbox    python {os.path.relpath(Path(__file__).resolve().parents[3] / "manage.py")} runserver
           then open http://127.0.0.1:8000/notifications/ and sign in as {DEMO_USERNAME} / {DEMO_PASSWORD}
  admin    http://127.0.0.1:8000/admin/transmissions/notification/ (same login; a notification's
           page shows its delivery timeline, the list filters by delivery state)
           http://127.0.0.1:8000/admin/transmissions/suppression/ (the suppressed addresses)
  choices  http://127.0.0.1:8000/notifications/preferences/ (what the signed-in user gets; each
           comment email also has a one-click unsubscribe link)"""
        )
