from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from transmissions.legacy import FillReport, fill_dedup_keys

SHOWN_IDS = 10


class Command(BaseCommand):
    help = (
        "Give the rows transmissions 0.2 wrote the dedup keys of their messages' behaviours "
        "(after `migrate` upgraded a 0.2 database; see docs/upgrading.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default).")
        parser.add_argument(
            "--batch-size", type=int, default=2000, help="Ids per transaction (default 2000)."
        )

    def handle(self, *args: Any, database: str, batch_size: int, **options: Any) -> None:
        if batch_size <= 0:
            raise CommandError("--batch-size must be a positive number.")
        report = fill_dedup_keys(using=database, batch_size=batch_size)
        if report.legacy_max_id is None:
            self.stdout.write("No rows written by transmissions 0.2 wait for dedup keys.")
            return
        self.stdout.write(
            f"Rows written by transmissions 0.2 (ids up to {report.legacy_max_id}): "
            f"{sum(report.keys.values())} dedup key(s) set."
        )
        for name in sorted(name for name, behavior in report.behaviors.items() if behavior.key_prefix):
            self.stdout.write(f"  {name} ({report.behaviors[name].name}): {report.keys[name]} key(s)")
        self._warn_about(report)
        self.stdout.write("Done: check transmissions.W101 no longer warns about this database.")

    def _warn_about(self, report: FillReport) -> None:
        for name, ids in sorted(report.duplicates.items()):
            self.stdout.write(
                self.style.WARNING(
                    f"  {name}: {len(ids)} row(s) without a key, because an older row holds the same "
                    f"one (0.2 let duplicates through): ids {_ids(ids)}. They stay as they are."
                )
            )
        for name, ids in sorted(report.no_content.items()):
            self.stdout.write(
                self.style.WARNING(
                    f"  {name}: {len(ids)} row(s) without content, so without a per-content key: "
                    f"ids {_ids(ids)}."
                )
            )
        for name, count in sorted(report.unregistered.items()):
            self.stdout.write(
                self.style.WARNING(
                    f"  {name}: {count} row(s) of a trigger name no message is registered under: no key "
                    "(a worker marks the pending ones BROKEN)."
                )
            )


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(pk) for pk in ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")
