"""``python example/manage.py demo``: a community's worth of notifications, sent for real."""

import os
import random
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count, Max, Min
from django.utils import timezone

from community.demo.process import check_broker, process
from community.demo.progress import Progress
from community.demo.push import PushService
from community.demo.report import delivery_rows, digest_line, format_delivery, format_table, summary_rows
from community.demo.simulate import DEMO_PASSWORD, DEMO_USERNAME, ensure_users, simulate
from community.demo.webhooks import post_webhooks, sent_emails
from transmissions.models import Notification, Suppression


class Readers(threading.Thread):
    """While the notifications go out, the users open the site: every 0.2 s, three in five of the
    reply entries that reached an inbox since are read (each entry looked at once)."""

    def __init__(self, since, rng):
        super().__init__(daemon=True)
        self.since, self.rng, self.done = since, rng, set()
        self.stopped = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stopped.wait(0.2):
                self.read()
        except Exception as exc:  # reported by the command, not lost in a thread
            self.error = exc
        finally:
            connection.close()  # this thread's own connection

    def read(self):
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
        with PushService() as push:
            browsers = push.subscribe(all_users, rng)
            out.write(f"Browsers   {browsers} users allow push: Web Push subscriptions to {push.origin}")
            tally = simulate(all_users, new_users, later, rng, Progress(out, "Triggering", len(all_users)))
            out.write("")
            how = f"a Celery worker on {broker}" if broker else "the Celery task, in-process (no broker set)"
            out.write(f"Processing {tally.created} notifications with {how}")
            progress = Progress(out, "Processing", tally.created)
            readers = Readers(since, random.Random(rng.random()))
            readers.start()
            try:
                process(since, tally.created, progress, timeout)
            finally:
                readers.stopped.set()
                readers.join()
            progress.finish()
        if readers.error is not None:
            raise CommandError(f"Reading the inbox failed: {readers.error!r}")
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
        self.quiet_hours(since, tally)
        self.replies(since, push)
        self.delivery(since, rng)
        self.where_to_look(time.monotonic() - started)

    def replies(self, since, push):
        """The reply escalation (in-app, then push, then email while unseen): what went out."""
        out = self.stdout
        mine = Notification.objects.filter(datetime_created__gte=since)
        entries = mine.filter(trigger_name="reply-inapp", status=Notification.Status.SUCCESSFULLY_SENT)
        seen = entries.filter(datetime_seen__isnull=False).count()
        saved = mine.filter(trigger_name="reply-email").held("seen").count()
        pushes = mine.filter(trigger_name="reply-push")
        pushed = pushes.filter(status=Notification.Status.SUCCESSFULLY_SENT).count()
        no_browser = pushes.filter(reason__contains="has no active push device").count()
        if push.refused:
            raise CommandError(f"The push service refused {len(push.refused)} pushes: {push.refused[:3]}")
        out.write(
            f"{pushed} reply pushes sent: {sum(push.received.values())} Web Push messages reached "
            f"{len(push.received)} browsers (VAPID-signed, encrypted, decrypted by their push service); "
            f"{pushes.held('seen').count()} saved, their entry read first; {no_browser} skipped, their "
            "users having no browser subscribed (the email step went on)"
        )
        out.write(
            f"{saved} reply emails saved: {seen} of {entries.count()} in-app reply entries were read during "
            "the run, and each one read before its email was due cancelled it (reason 'seen: ...'; "
            "docs/escalation.md)"
        )

    def quiet_hours(self, since, tally):
        """The notifications quiet hours hold: due at 07:00 their recipients' time, after the run."""
        held = Notification.objects.filter(datetime_created__gte=since, status=Notification.Status.CREATED)
        held = held.held("quiet-hours")
        span = held.aggregate(first=Min("datetime_scheduled"), last=Max("datetime_scheduled"))
        until = "" if span["first"] is None else span["first"].strftime("%H:%M")
        if span["last"] is not None and span["last"].strftime("%H:%M") != until:
            until += "-" + span["last"].strftime("%H:%M")
        self.stdout.write(
            f"{held.count()} held by quiet hours until {until or '-'} UTC (07:00 their time; the 'waiting' "
            f"column): {tally.asleep_users} users live where it is night now (User.timezone); their sign-in "
            "codes (urgent) and in-app entries went out"
        )

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
  push     each reply push's service URL is its notification's provider id (admin)
  inbox    python {os.path.relpath(Path(__file__).resolve().parents[3] / "manage.py")} runserver
           then open http://127.0.0.1:8000/notifications/ and sign in as {DEMO_USERNAME} / {DEMO_PASSWORD}
  admin    http://127.0.0.1:8000/admin/transmissions/notification/ (same login; a notification's
           page shows its delivery timeline, the list filters by delivery state)
           http://127.0.0.1:8000/admin/transmissions/suppression/ (the suppressed addresses)
  choices  http://127.0.0.1:8000/notifications/preferences/ (what the signed-in user gets; each
           comment email also has a one-click unsubscribe link)"""
        )
