#!/usr/bin/env python
"""What related.py costs a worker, beside its baseline in the same process.

    python benchmarks/faults.py [--db sqlite|postgres] [--n 10000] [--rounds 5]

Processing ``--n / 2`` notifications that have a content (``related.attach``: each
   ``object_id`` checked against the model's key before the prefetch) against
   ``prefetch_related_objects`` alone, as before.

Rounds alternate the two sides; the table shows medians. Uses the benchmark database of
``benchmarks/setup_db.py`` (``TRANSMISSIONS_BENCH_DB_NAME`` on PostgreSQL).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import setup_db  # noqa: E402


def main() -> None:
    args = setup_db.parse_and_configure(__doc__, n=10_000, rounds=5)

    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import prefetch_related_objects

    from benchmarks.bench_messages import NoopMessage
    from transmissions import related
    from transmissions.models import Notification
    from transmissions.worker import process_all_notifications

    user_model = get_user_model()
    count = args.n // 2
    user_model.objects.bulk_create(user_model(username=f"f{i}", email=f"{i}@x.example") for i in range(count))
    users = list(user_model.objects.order_by("pk"))
    # Any model does for a content: a user.
    content_type = ContentType.objects.get_for_model(user_model)

    def before() -> mock._patch:  # type: ignore[type-arg]
        # The baseline: the contents prefetched as before related.py, no object_id checked.
        return mock.patch.object(
            related,
            "attach_contents",
            lambda rows, using=None: prefetch_related_objects(
                [n for n in rows if n.content_type_id is not None], "content"
            ),
        )

    def process() -> float:
        Notification.objects.all().delete()
        NoopMessage.trigger_many(users)
        Notification.objects.update(content_type=content_type, object_id=str(users[0].pk))
        started = time.perf_counter()
        done = process_all_notifications(batch_size=100, time_limit=3600)
        assert done == count, done
        return time.perf_counter() - started

    results: dict[str, list[float]] = {"with": [], "without": []}
    for round_ in range(args.rounds):
        for baseline in (False, True) if round_ % 2 else (True, False):
            if baseline:
                with before():
                    results["without"].append(process())
            else:
                results["with"].append(process())
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"{args.db}, {args.rounds} rounds (medians; ratio = with related.py / without)")
    print(
        f"processing {count} with a content: {count / med['with']:.0f}/s, "
        f"without {count / med['without']:.0f}/s, ratio {med['with'] / med['without']:.2f}"
    )


if __name__ == "__main__":
    main()
