#!/usr/bin/env python
"""What the recipient's control layer costs a worker, each figure beside its baseline in the
same process.

    python benchmarks/preferences.py [--db sqlite|postgres] [--n 5000] [--rounds 3]

Processing ``--n`` notifications of a no-op channel (nothing is sent: what remains is the
app's own cost), in batches of 100:

1. each one built and sent under its recipient's language and time zone
   (``recipients.locale_of()`` compared with what is in force, switched where it differs:
   what every notification gets) against the same run with ``locale_of()`` answering what
   is in force without reading the user (the baseline, possible only here);
2. messages of a category, a tenth of the users opted out: the default policies
   (``PreferencePolicy``: one query a batch) against ``TRANSMISSIONS_POLICIES`` without it;
3. quiet hours set (a window the run is outside of: every notification is checked, none
   deferred) against none.

Rounds alternate the two sides; the table shows medians. Uses the benchmark database of
``benchmarks/setup_db.py`` (``TRANSMISSIONS_BENCH_DB_NAME`` on PostgreSQL).
"""

from __future__ import annotations

import datetime
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import setup_db  # noqa: E402

CATEGORIES = {"bench": {"label": "Benchmark", "channels": {"bench": True}}}


def main() -> None:
    args = setup_db.parse_and_configure(__doc__, n=5000, rounds=3)

    from django.contrib.auth import get_user_model
    from django.test.utils import override_settings
    from django.utils import timezone

    from benchmarks.bench_messages import NoopChannel, NoopMessage
    from transmissions import delivery, message
    from transmissions.models import Notification, Preference
    from transmissions.worker import process_all_notifications

    @message("bench-category", category="bench", channel="bench")
    class CategoryMessage(NoopChannel):
        pass

    user_model = get_user_model()
    user_model.objects.bulk_create(
        user_model(username=f"p{i}", email=f"p{i}@example.com") for i in range(args.n)
    )
    users = list(user_model.objects.order_by("pk"))
    Preference.objects.bulk_create(
        Preference(user=user, category="bench", channel="bench", enabled=False) for user in users[::10]
    )
    real_locale_of = delivery.recipients.locale_of
    in_force = delivery.recipients.in_force()

    def process(cls: Any, expected: int, **settings: Any) -> float:
        Notification.objects.all().delete()
        cls.trigger_many(users)
        with override_settings(TRANSMISSIONS_CATEGORIES=CATEGORIES, **settings):
            started = time.perf_counter()
            done = process_all_notifications(batch_size=100, time_limit=3600)
            elapsed = time.perf_counter() - started
        assert done == len(users), done
        assert Notification.objects.sent().count() == expected
        return elapsed

    def without_locale() -> float:
        delivery.recipients.locale_of = lambda user: in_force  # type: ignore[assignment]
        try:
            return process(NoopMessage, len(users))
        finally:
            delivery.recipients.locale_of = real_locale_of  # type: ignore[assignment]

    # A window that "now" is outside of, whatever the hour the benchmark runs at.
    hour = timezone.now().hour
    window = (f"{(hour + 2) % 24:02d}:00", f"{(hour + 4) % 24:02d}:00")
    no_preferences = [
        "transmissions.tracking.SuppressionPolicy",
        "transmissions.quiet_hours.QuietHoursPolicy",
    ]
    opted_in = len(users) - len(users[::10])
    sides = {
        "locale": lambda: process(NoopMessage, len(users)),
        "locale0": without_locale,
        "prefs": lambda: process(CategoryMessage, opted_in),
        "prefs0": lambda: process(CategoryMessage, len(users), TRANSMISSIONS_POLICIES=no_preferences),
        "quiet": lambda: process(NoopMessage, len(users), TRANSMISSIONS_QUIET_HOURS=window),
        "quiet0": lambda: process(NoopMessage, len(users)),
    }
    results: dict[str, list[float]] = {k: [] for k in sides}
    for round_ in range(args.rounds):
        for pair in (("locale", "locale0"), ("prefs", "prefs0"), ("quiet", "quiet0")):
            # Alternate which side goes first, so that a drift of the machine's load is shared.
            for key in pair if round_ % 2 == 0 else reversed(pair):
                results[key].append(sides[key]())
    med = {k: statistics.median(v) for k, v in results.items()}
    n = len(users)
    print(
        f"{args.db}, {n} notifications, {args.rounds} rounds, {datetime.date.today()} "
        "(medians; notifications processed per second; time ratio = with / without)"
    )
    rows = [
        ("no-op, in the recipient's language+zone", "locale", ""),
        ("no-op, locale_of() not asked (baseline)", "locale0", "locale"),
        ("category, PreferencePolicy (default)", "prefs", ""),
        ("category, without PreferencePolicy", "prefs0", "prefs"),
        ("no-op, quiet hours set (outside them)", "quiet", ""),
        ("no-op, no quiet hours", "quiet0", "quiet"),
    ]
    for name, key, against in rows:
        ratio = f"{med[against] / med[key]:.2f}" if against else ""
        print(f"{name:<42} {n / med[key]:9.0f}/s  {ratio}")


if __name__ == "__main__":
    main()
