"""The example project's ``demo`` command, run as a user runs it: ``python example/manage.py demo``.

Each run is a real process on its own SQLite file in a temporary EXAMPLE_DATA_DIR.
"""

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

MANAGE = Path(__file__).resolve().parents[1] / "example" / "manage.py"
REDIS = ("127.0.0.1", 6379)

# The example uses its own SQLite database whatever TRANSMISSIONS_TEST_DB says, so the
# PostgreSQL pass deselects these (see conftest.py): the SQLite pass runs them.
pytestmark = pytest.mark.own_database


def demo(data_dir, *args, broker=None):
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL")}
    # Django's RemovedInDjango*Warning are DeprecationWarning or PendingDeprecationWarning.
    warnings = "error::DeprecationWarning,error::PendingDeprecationWarning"
    env.update(EXAMPLE_DATA_DIR=str(data_dir), PYTHONWARNINGS=warnings)
    if broker:
        env["CELERY_BROKER_URL"] = broker
    return subprocess.run(
        [sys.executable, str(MANAGE), "demo", *args],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def query(data_dir, sql):
    # sqlite3's context manager commits but does not close (a ResourceWarning on 3.13+).
    with contextlib.closing(sqlite3.connect(data_dir / "db.sqlite3")) as db:
        return db.execute(sql).fetchall()


def wrote_nothing(data_dir):
    """No database, or (Django 6.1's system checks open it) one without a table."""
    path = data_dir / "db.sqlite3"
    return not path.exists() or query(data_dir, "SELECT name FROM sqlite_master WHERE type = 'table'") == []


def statuses(data_dir):
    return dict(query(data_dir, "SELECT status, COUNT(*) FROM transmissions_notification GROUP BY status"))


def summary_total(stdout):
    """The numbers of the summary's total row: triggered, refused, batched, sent, ..., waiting."""
    line = next(line for line in stdout.splitlines() if line.startswith("total "))
    return [int(x) for x in line.split()[1:]]


def held_by_quiet_hours(stdout):
    """The summary's count of notifications quiet hours hold (due after the run)."""
    line = next(line for line in stdout.splitlines() if " held by quiet hours until " in line)
    assert "users live where it is night now" in line, line
    return int(line.split()[0])


def test_demo_runs_twice_on_the_same_database(tmp_path):
    first = demo(tmp_path, "--users", "6", "--later", "1", "--seed", "1")
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "Users      6 (6 new, 0 existing)" in out
    # Not on a terminal, the bars print a line a quarter, and their last line is the total.
    bars = [line for line in out.splitlines() if line.startswith(("Triggering ", "Processing "))]
    triggering = [line for line in bars if line.startswith("Triggering ")]
    assert triggering[-1].startswith(f"Triggering   [{'#' * 30}] 6/6 users")
    processing = [line for line in bars if line.startswith("Processing   [")]
    total = int(processing[-1].split("/")[1].split()[0])
    assert processing[-1].startswith(f"Processing   [{'#' * 30}] {total}/{total} processed")
    assert "the Celery task, in-process (no broker set)" in out
    for name in ("welcome-email", "welcome-sms", "new-comment", "draft-reminder", "likes-update"):
        assert name in out
    assert "login-code" in out
    assert "http://127.0.0.1:8000/notifications/" in out and "sign in as demo / demo" in out
    triggered, refused, batched, sent, cancelled, failed, broken, deleted, waiting = summary_total(out)
    assert broken == 0 and sent > 0 and deleted > 0
    # One user of six sleeps (their zone's night): what is not urgent or in-app waits for their
    # 07:00, and the demo does not wait for it. Those are all that is left waiting.
    quiet = held_by_quiet_hours(out)
    assert waiting == quiet
    held_rows = query(tmp_path, "SELECT n.trigger_name, n.reason, u.timezone "
                      "FROM transmissions_notification n JOIN community_user u "
                      "ON u.id = n.target_user_id WHERE n.status = 0")  # fmt: skip
    assert len(held_rows) == quiet
    for name, reason, zone in held_rows:
        assert reason == f"quiet-hours: the recipient's quiet hours, 22:00-07:00 in {zone}", reason
        assert name not in ("login-code", "reply-inapp")  # urgent, in-app: sent at night too
    asleep = query(tmp_path, "SELECT id FROM community_user WHERE timezone != ''")
    assert len(asleep) == 1 and asleep != query(
        tmp_path, "SELECT id FROM community_user WHERE username = 'demo'"
    )
    # The sleeper's sign-in codes went out anyway (urgent): three per user, none held.
    assert (tmp_path / "sent_sms.log").read_text().count("Your sign-in code is") == 3 * 6
    # Users who turned comment emails off after they were triggered: held, with the reason.
    opted = next(line for line in out.splitlines() if " of the cancelled were opted out: " in line)
    held = query(tmp_path, "SELECT COUNT(*) FROM transmissions_notification WHERE status = -2 "
                 "AND trigger_name = 'new-comment' AND reason LIKE 'opted-out: %'")[0][0]  # fmt: skip
    assert opted.startswith(f"{held} of the cancelled") and held <= cancelled
    # Replies walk in-app -> push -> email; an entry read before the email was due saved it.
    # The pushes went, as Web Push, to the stand-in push service on 127.0.0.1, which decrypted
    # each one: the summary's counts are the database's.
    push_line = next(line for line in out.splitlines() if " reply pushes sent: " in line)
    pushes = "SELECT COUNT(*) FROM transmissions_notification WHERE trigger_name = 'reply-push' AND "
    pushed = query(tmp_path, pushes + "status = 1 AND provider_message_id LIKE 'https://127.0.0.1:%'")[0][0]
    no_browser = query(tmp_path, pushes + "status = -2 AND reason LIKE '%has no active push device%'")[0][0]
    push_saved = query(tmp_path, pushes + "status = -2 AND reason LIKE 'seen: %'")[0][0]
    assert push_line.startswith(f"{pushed} reply pushes sent: {pushed} Web Push messages reached ")
    assert f"; {push_saved} saved, their entry read first; {no_browser} skipped, " in push_line
    assert pushed > 0
    browsers = query(tmp_path, "SELECT COUNT(*) FROM push_notifications_webpushdevice")[0][0]
    assert f"Browsers   {browsers} users allow push: Web Push subscriptions to https://127.0.0.1:" in out
    assert query(tmp_path, "SELECT COUNT(*) FROM transmissions_notification "
                 "WHERE trigger_name = 'reply-sms'") == [(0,)]  # fmt: skip
    saved_line = next(line for line in out.splitlines() if " reply emails saved: " in line)
    saved = query(tmp_path, "SELECT COUNT(*) FROM transmissions_notification WHERE status = -2 "
                  "AND trigger_name = 'reply-email' AND reason LIKE 'seen: %'")[0][0]  # fmt: skip
    assert saved_line.startswith(f"{saved} reply emails saved: ")
    sent_emails = query(tmp_path, "SELECT COUNT(*) FROM transmissions_notification WHERE status = 1 "
                        "AND trigger_name = 'reply-email'")[0][0]  # fmt: skip
    entries = query(tmp_path, "SELECT COUNT(*) FROM transmissions_notification "
                    "WHERE trigger_name = 'reply-inapp'")[0][0]  # fmt: skip
    assert entries > 0 and sent_emails + saved <= entries
    assert triggered - refused - batched == sent + cancelled + failed + broken + deleted + waiting
    rows = statuses(tmp_path)
    assert set(rows) <= {1, -1, -2, 0}  # sent, failed, cancelled; CREATED: held by quiet hours
    assert rows.get(0, 0) == quiet
    assert sum(rows.values()) == triggered - refused - batched - deleted
    # Comments: an in-app entry each, and one digest email per user holding them all.
    comments = query(tmp_path, "SELECT COUNT(*) FROM transmissions_notification "
                     "WHERE trigger_name = 'comment-inapp'")[0][0]  # fmt: skip
    digests = query(tmp_path, "SELECT COUNT(*), COUNT(DISTINCT target_user_id) "
                    "FROM transmissions_notification WHERE trigger_name = 'new-comment'")[0]  # fmt: skip
    items = query(tmp_path, "SELECT COUNT(*) FROM transmissions_digestitem")[0][0]
    assert items == comments > digests[0] == digests[1] > 0 and batched == items - digests[0]
    sizes = query(tmp_path, "SELECT COUNT(*) FROM transmissions_digestitem i "
                  "JOIN transmissions_notification n ON n.id = i.digest_id "
                  "WHERE n.status = 1 GROUP BY i.digest_id")  # fmt: skip
    digest_line = next(line for line in out.splitlines() if " comment digests sent, holding " in line)
    assert digest_line.startswith(
        f"{len(sizes)} comment digests sent, holding {sum(n for (n,) in sizes)} comments "
        f"(up to {max(n for (n,) in sizes)} in one email); {digests[0]} digests for {items} comments"
    )
    written_digest = "".join(p.read_text() for p in (tmp_path / "sent_emails").glob("*.log"))
    assert written_digest.count("Subject: New comments on your posts") == len(sizes)
    emails = list((tmp_path / "sent_emails").glob("*.log"))
    written = "".join(p.read_text() for p in emails)
    # Each welcome email in its recipient's language: the summary's counts are the files'.
    german, english = (
        written.count("Willkommen in der Community!"),
        written.count("Welcome to the community!"),
    )
    assert f"{german} welcome emails written in German, {english} in English" in out
    held_welcome = sum(1 for name, _, _ in held_rows if name == "welcome-email")
    assert german + english == 6 - held_welcome and english >= 1  # the demo user writes English
    assert "welcome to the community!" in (tmp_path / "sent_sms.log").read_text()
    # The ESP's webhooks went through anymail's view over loopback HTTP: every email sent has
    # its provider id, and the events the summary counts are in the database.
    delivery = out[out.index("trigger         emails  events") :]
    events_total = int(next(line for line in delivery.splitlines() if line.startswith("total ")).split()[2])
    stored = query(tmp_path, "SELECT COUNT(*) FROM transmissions_deliveryevent")[0][0]
    assert events_total == stored > 0
    assert "delivery events recorded" in delivery
    assert query(tmp_path, "SELECT COUNT(*) FROM transmissions_notification WHERE channel = 'email' "
                 "AND status = 1 AND provider_message_id = ''") == [(0,)]  # fmt: skip
    assert query(tmp_path, "SELECT COUNT(*) FROM transmissions_notification WHERE channel = 'email' "
                 "AND status = 1 AND delivery_state = ''") == [(0,)]  # fmt: skip
    # DELETE_AFTER_PROCESSING: the sign-in codes went out, and their rows are gone.
    assert "Your sign-in code is" in (tmp_path / "sent_sms.log").read_text()
    assert query(tmp_path, "SELECT COUNT(*) FROM transmissions_notification WHERE status = 1 "
                 "AND trigger_name = 'login-code'") == [(0,)]  # fmt: skip

    second = demo(tmp_path, "--users", "6", "--later", "1", "--seed", "2")
    assert second.returncode == 0, second.stderr
    assert "Users      6 (0 new, 6 existing)" in second.stdout
    assert query(tmp_path, "SELECT COUNT(*) FROM community_user") == [(6,)]
    # Sign-up happened once: one welcome email per user in all.
    assert query(tmp_path, "SELECT COUNT(*) FROM transmissions_notification "
                 "WHERE trigger_name = 'welcome-email'") == [(6,)]  # fmt: skip
    assert summary_total(second.stdout)[-1] == held_by_quiet_hours(second.stdout)
    assert sum(statuses(tmp_path).values()) > sum(rows.values())


def test_bad_arguments_fail_clearly_and_write_nothing(tmp_path):
    result = demo(tmp_path, "--users", "1")
    assert result.returncode != 0 and "--users must be at least 2" in result.stderr
    result = demo(tmp_path, "--later", "-1")
    assert result.returncode != 0 and "--later must be between" in result.stderr
    assert wrote_nothing(tmp_path)


def test_unreachable_broker_fails_before_writing(tmp_path):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = demo(tmp_path, "--users", "2", broker=f"redis://127.0.0.1:{port}/0")
    assert result.returncode != 0
    assert f"CELERY_BROKER_URL=redis://127.0.0.1:{port}/0 is not reachable" in result.stderr
    assert wrote_nothing(tmp_path)


def _redis_up():
    try:
        socket.create_connection(REDIS, timeout=1).close()
    except OSError:
        return False
    return True


def test_demo_with_a_real_celery_worker(tmp_path):
    if not _redis_up():
        if os.environ.get("TRANSMISSIONS_REQUIRE_SERVICES") == "1":
            pytest.fail("Redis is not running on 127.0.0.1:6379")
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    result = demo(tmp_path, "--users", "8", "--later", "2", "--seed", "3", broker="redis://127.0.0.1:6379/14")
    assert result.returncode == 0, result.stderr
    assert "with a Celery worker on redis://127.0.0.1:6379/14" in result.stdout
    # The worker process sent the pushes to the demo's push service (it trusts its certificate).
    push_line = next(line for line in result.stdout.splitlines() if " reply pushes sent: " in line)
    pushed = int(push_line.split()[0])
    assert pushed > 0 and f" sent: {pushed} Web Push messages reached " in push_line
    assert summary_total(result.stdout)[-1] == held_by_quiet_hours(result.stdout)
    assert statuses(tmp_path).get(0, 0) == held_by_quiet_hours(result.stdout)
    assert set(statuses(tmp_path)) <= {1, -1, -2, 0}
