"""Several real OS processes on one server database: triggers race, workers and beats overlap, a
worker is SIGKILLed mid-batch. Each child (``tests/child.py``) is a fresh Django connected to
the database pytest-django created; sends are counted in an O_APPEND file
(``tests/notifications.py``) so a killed process's sends are counted too.

Runs when TRANSMISSIONS_TEST_DB is postgres (or mysql). An unreachable server then fails
the database setup: these tests error, they are never skipped.
"""

import collections
import datetime
import json
import random
import signal
import time

import pytest
from django.db import connection
from django.utils import timezone

from tests.child import child_env, release, results, spawn, stop
from tests.markers import server_db
from tests.messages import DefaultMessage
from tests.notifications import (
    SEND_DELAY_ENV,
    SEND_LOG_ENV,
    DurableComment,
    DurableDigest,
    durable_chain,
    durable_event,
    read_digest_log,
    read_send_log,
)
from tests.policies import CLAIM_LOG_ENV
from tests.utils import make_user
from transmissions.models import DeliveryEvent, DigestItem, Notification, Suppression
from transmissions.preferences import set_preference

pytestmark = server_db
ESCALATION = "transmissions.escalation.EscalationPolicy"
S = Notification.Status
FINAL = {S.SUCCESSFULLY_SENT, S.FAILED, S.CANCELLED, S.BROKEN}


def db_name():
    return connection.settings_dict["NAME"]


def backlog(user, count, name="durable"):
    """Insert ``count`` due notifications in one statement (the backlog, not the subject)."""
    now = timezone.now()
    Notification.objects.bulk_create(
        Notification(
            trigger_name=name,
            target_user=user,
            datetime_created=now,
            datetime_scheduled=now - datetime.timedelta(seconds=count - i),
        )
        for i in range(count)
    )
    return set(Notification.objects.values_list("pk", flat=True))


def run_together(tmp_path, env, argvs, timeout=120):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [spawn(env, *argv, "--barrier", str(barrier)) for argv in argvs]
    release(barrier, procs)
    return results(procs, timeout=timeout)


def test_racing_triggers_leave_one_pending_row(tmp_path):
    user = make_user()
    names = "trigger-once,send-once,last-only"
    argv = ["trigger", "--user", str(user.pk), "--names", names, "--rounds", "10"]
    out = run_together(tmp_path, child_env(db_name()), [argv] * 8)

    created = collections.Counter()
    for result in out:
        created.update(result["created"])
    assert created["trigger-once"] == 1
    assert created["send-once"] == 1
    assert created["last-only"] >= 8  # never refused: every process replaced the row at least once
    rows = Notification.objects.filter(target_user=user)
    for name in ("trigger-once", "send-once"):
        assert rows.filter(trigger_name=name).count() == 1
        assert rows.filter(trigger_name=name, status=S.CREATED).count() == 1
    last = rows.filter(trigger_name="last-only")
    assert last.count() == created["last-only"]
    assert last.filter(status=S.CREATED).count() == 1
    assert last.filter(status=S.CANCELLED).count() == created["last-only"] - 1


@pytest.mark.parametrize(("workers", "task"), [(4, False), (2, True)], ids=["workers", "beats"])
def test_overlapping_workers_send_each_notification_once(tmp_path, workers, task):
    """4 workers on one backlog; and two overlapping beat runs of the Celery task."""
    user = make_user()
    ids = backlog(user, 2000)
    log = tmp_path / "sends.log"
    settings = {"TRANSMISSIONS_BATCH_SIZE": 20}
    # The beat runs send slowly enough that the two surely overlap.
    delay = "0.0005" if task else "0"
    env = child_env(db_name(), settings, **{SEND_LOG_ENV: str(log), SEND_DELAY_ENV: delay})
    argv = ["process", "--batch-size", "20"] + (["--task"] if task else [])
    out = run_together(tmp_path, env, [argv] * workers)

    sent = read_send_log(log)
    assert len(sent) == len(ids) and set(sent) == ids  # each exactly once
    assert sum(r["taken"] for r in out) == len(ids)
    assert all(r["taken"] > 0 for r in out), out  # every process took part
    assert max(r["start"] for r in out) < min(r["end"] for r in out)  # they really overlapped
    assert set(Notification.objects.values_list("status", flat=True)) == {S.SUCCESSFULLY_SENT}


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill_mid_batch(settings, log, batch_size, what="its batch"):
    """Start a worker whose sends take 0.2 s each (logged to ``log``), claiming
    ``batch_size`` rows under ``settings``; SIGKILL it once it has sent three."""
    slow = child_env(db_name(), settings, **{SEND_LOG_ENV: str(log), SEND_DELAY_ENV: "0.2"})
    victim = spawn(slow, "process", "--batch-size", str(batch_size))
    try:
        wait_for(lambda: len(read_send_log(log)) >= 3, 60, f"the worker to send part of {what}")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        stop([victim])
    assert victim.returncode == -signal.SIGKILL


@pytest.mark.parametrize("policy", ["broken", "retry"])
def test_worker_killed_mid_batch(tmp_path, policy):
    user = make_user()
    ids = backlog(user, 60)
    log = tmp_path / "sends.log"
    lease = 5  # long enough for the "early" worker below to run inside it
    settings = {"TRANSMISSIONS_LEASE_SECONDS": lease, "TRANSMISSIONS_EXPIRED_LEASE_POLICY": policy}
    kill_mid_batch(settings, log, 20)
    held = set(Notification.objects.filter(status=S.PROCESSING).values_list("pk", flat=True))
    sent_before = read_send_log(log)
    assert len(held) == 20 and set(sent_before) < held  # killed holding its batch, part of it sent

    # A worker that starts while the lease runs leaves the held rows alone...
    env = child_env(db_name(), settings, **{SEND_LOG_ENV: str(log)})
    [early] = results([spawn(env, "process", "--batch-size", "20", "--loop")])
    assert early["taken"] == len(ids) - 20
    assert set(Notification.objects.filter(status=S.PROCESSING).values_list("pk", flat=True)) == held
    # ...and the next one after the lease expired takes them back by the policy.
    lease_end = Notification.objects.filter(pk__in=held).latest("claimed_until").claimed_until
    time.sleep(max((lease_end - timezone.now()).total_seconds(), 0) + 0.1)
    [late] = results([spawn(env, "process", "--batch-size", "20", "--loop")])

    sent = collections.Counter(read_send_log(log))
    statuses = dict(Notification.objects.values_list("pk", "status"))
    assert set(statuses.values()) <= FINAL  # nothing stuck
    assert set(statuses) == ids
    duplicates = {pk for pk, n in sent.items() if n > 1}
    if policy == "broken":
        # At most once: the held rows end BROKEN, none is sent again.
        assert late["taken"] == 0 and not duplicates
        assert {pk for pk, s in statuses.items() if s == S.BROKEN} == held
        assert set(sent) == (ids - held) | set(sent_before)
    else:
        # At least once: the held rows are sent again; only those sent before the kill twice.
        assert late["taken"] == 20
        assert set(statuses.values()) == {S.SUCCESSFULLY_SENT} and set(sent) == ids
        assert duplicates == set(sent_before) and duplicates <= held


def test_webhooks_delivered_several_times_at_once_are_stored_once(tmp_path):
    """4 processes replay the same delivery events, each in its own order, all at once: each
    event is stored once, and each notification ends in the furthest state its events reached."""
    rng = random.Random(7)
    user = make_user()
    states = ["accepted", "deferred", "delivered", "opened", "clicked", "bounced", "complained"]
    events, expected = [], {}
    for i in range(40):
        n = DefaultMessage.trigger(user)
        message_id = f"m{i}"
        sent = Notification.objects.filter(pk=n.pk)
        sent.update(status=S.SUCCESSFULLY_SENT, provider_message_id=message_id)
        chosen = rng.sample(states, rng.randint(1, 4))
        events += [[message_id, f"{message_id}-{state}", state, rng.randrange(60)] for state in chosen]
        expected[n.pk] = max(chosen, key=states.index)
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events))
    argvs = [["events", "--events", str(path), "--seed", str(seed)] for seed in range(4)]
    out = run_together(tmp_path, child_env(db_name()), argvs)

    assert sum(r["stored"] for r in out) == len(events)  # stored (and signalled) once in all
    assert DeliveryEvent.objects.count() == len(events)
    assert dict(Notification.objects.values_list("pk", "delivery_state")) == expected
    # A message that both bounced and was complained about is suppressed once.
    suppressed = {f"{e[0]}@example.com" for e in events if e[2] in ("bounced", "complained")}
    assert suppressed and sorted(Suppression.objects.values_list("address", flat=True)) == sorted(suppressed)


def pending():
    return Notification.objects.filter(status__in=[S.CREATED, S.PROCESSING])


@pytest.mark.parametrize("policy", ["broken", "retry"])
def test_sends_slower_than_the_lease_are_never_sent_twice(tmp_path, policy):
    """A worker whose batch of slow sends outlasts its lease (20 sends of 0.2 s, lease 2 s) beside
    a worker that claims one row at a time, taking back expired claims before each: the slow one
    stops starting sends at half its lease and hands the rest back, so nothing it holds is taken
    from it. Every notification is sent exactly once, under both policies, and none ends BROKEN.
    (Before: the fast worker took the slow one's batch back while it kept sending it: sent, then
    BROKEN under "broken"; sent twice under "retry".)"""
    user = make_user()
    ids = backlog(user, 60)
    log, stop_file = tmp_path / "sends.log", tmp_path / "stop"
    settings = {"TRANSMISSIONS_LEASE_SECONDS": 2, "TRANSMISSIONS_EXPIRED_LEASE_POLICY": policy}
    env = child_env(db_name(), settings, **{SEND_LOG_ENV: str(log), SEND_DELAY_ENV: "0.2"})
    loop = ["process", "--loop", "--stop", str(stop_file), "--batch-size"]
    procs = [spawn(env, *loop, "20")]
    try:
        wait_for(lambda: Notification.objects.filter(status=S.PROCESSING).count() == 20, 60, "a claim")
        procs.append(spawn(env, *loop, "1"))
        wait_for(lambda: not pending().exists(), 120, "every notification to be final")
    finally:
        stop_file.touch()
    out = results(procs)

    sent = collections.Counter(read_send_log(log))
    assert set(sent) == ids and max(sent.values()) == 1  # each sent, none twice
    assert set(Notification.objects.values_list("status", flat=True)) == {S.SUCCESSFULLY_SENT}
    assert all(r["taken"] > 0 for r in out)


def kill_other_connections():
    """Terminate every other connection to the test database (the children's), as an
    administrator or a failover would; return how many."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return len(cursor.fetchall())
        cursor.execute(
            "SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        )
        ids = [row[0] for row in cursor.fetchall()]
        for pid in ids:
            cursor.execute(f"KILL {int(pid)}")
        return len(ids)


@pytest.mark.parametrize("policy", ["broken", "retry"])
def test_a_worker_outlives_its_database_connection_being_killed(tmp_path, policy):
    """The worker's connection is terminated (pg_terminate_backend) while it sends a batch, and
    again while its loop waits for work: it writes the batch's outcomes on a new connection and
    goes on. Every notification is sent exactly once and ends SUCCESSFULLY_SENT; the worker
    never dies. (Before: the outcome write failed once and the worker died holding its batch,
    which then ended BROKEN although sent, or was sent twice, by the policy.)"""
    user = make_user()
    ids = backlog(user, 60)
    log, stop_file = tmp_path / "sends.log", tmp_path / "stop"
    settings = {"TRANSMISSIONS_LEASE_SECONDS": 60, "TRANSMISSIONS_EXPIRED_LEASE_POLICY": policy}
    env = child_env(db_name(), settings, **{SEND_LOG_ENV: str(log), SEND_DELAY_ENV: "0.05"})
    worker = spawn(env, "process", "--loop", "--stop", str(stop_file), "--batch-size", "20")
    try:
        wait_for(lambda: len(read_send_log(log)) >= 5, 60, "the worker to be sending its first batch")
        assert kill_other_connections() == 1
        wait_for(lambda: not pending().exists(), 60, "every notification to be final")
        time.sleep(0.3)  # the loop is idle, polling
        assert kill_other_connections() == 1
        time.sleep(0.3)
        ids = backlog(user, 20)  # all the rows, the new ones included
        wait_for(lambda: not pending().exists(), 60, "the new notifications to be final")
    finally:
        stop_file.touch()
    [out] = results([worker])

    sent = collections.Counter(read_send_log(log))
    assert set(sent) == ids and max(sent.values()) == 1
    assert set(Notification.objects.values_list("status", flat=True)) == {S.SUCCESSFULLY_SENT}
    assert out["taken"] == len(ids)


def test_send_and_process_notification_from_many_processes_send_each_row_once(tmp_path):
    """0.2's entry points at once: two processes call Notification.send() on every row, two
    call tasks.process_notification(id) on every row, each in its own order, while a worker
    runs batches over the same rows."""
    user = make_user()
    ids = backlog(user, 400)
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(sorted(ids)))
    log = tmp_path / "sends.log"
    env = child_env(db_name(), {"TRANSMISSIONS_BATCH_SIZE": 10}, **{SEND_LOG_ENV: str(log)})
    send = ["send", "--ids", str(ids_file)]
    argvs = [
        [*send, "--seed", "1"],
        [*send, "--seed", "2"],
        [*send, "--seed", "3", "--task"],
        [*send, "--seed", "4", "--task"],
        ["process", "--batch-size", "10"],
    ]
    out = run_together(tmp_path, env, argvs)

    sent = read_send_log(log)
    assert len(sent) == len(ids) and set(sent) == ids  # each exactly once
    senders = collections.Counter(sent)
    assert set(senders.values()) == {1}
    by_send = out[0]["processed"] + out[1]["processed"]
    assert by_send > 0 and by_send + out[4]["taken"] <= len(ids)
    assert set(Notification.objects.values_list("status", flat=True)) == {S.SUCCESSFULLY_SENT}
    # Every process took some rows: the pids in the send log.
    with open(log) as f:
        pids = {line.split()[1] for line in f}
    assert len(pids) >= 4, (pids, out)


def race_a_preference_change(tmp_path, users, role):
    """150 notifications of DurableComment to ``users``, two workers processing them (5 a
    claim, 4 ms a send) while a third process runs ``role`` ("optout" or "optin") over the
    users one by one. Returns what the child reported, when each row was claimed and sent
    (pk -> time), the rows, the sent pks (each asserted sent once, and SENT iff in the
    send log) and the held ones (CANCELLED); sent and held together are every row."""
    DurableComment.trigger_many(users)
    ids = set(Notification.objects.values_list("pk", flat=True))
    log, claims = tmp_path / "sent.log", tmp_path / "claims.log"
    policies = ["tests.policies.ClaimLog", "transmissions.preferences.PreferencePolicy"]
    env = child_env(
        db_name(),
        {"TRANSMISSIONS_POLICIES": policies},
        **{SEND_LOG_ENV: str(log), SEND_DELAY_ENV: "0.004", CLAIM_LOG_ENV: str(claims)},
    )
    worker = ["process", "--loop", "--batch-size", "5"]
    change = [role, "--users", ",".join(str(u.pk) for u in users)]
    *_, out = run_together(tmp_path, env, [worker, worker, change])

    claimed = {int(pk): float(at) for pk, at in (line.split() for line in claims.read_text().splitlines())}
    with open(log) as f:
        sent_at = {int(pk): float(at) for pk, _pid, at in (line.split() for line in f)}
    rows = {n.pk: n for n in Notification.objects.all()}
    sent = read_send_log(log)
    assert len(sent) == len(set(sent))  # once each
    assert {pk for pk, n in rows.items() if n.status == S.SUCCESSFULLY_SENT} == set(sent)
    held = {pk for pk, n in rows.items() if n.status == S.CANCELLED}
    assert held | set(sent) == ids
    for pk in held:
        assert rows[pk].reason.startswith("opted-out: "), rows[pk].reason
    return out, claimed, sent_at, rows, sent, held


def test_an_opt_out_committed_before_a_claim_is_never_sent(tmp_path):
    """Two workers process 150 notifications of a category while a third process turns it off
    for their users one by one. A notification sent was claimed (and its preference read)
    before its user's opt-out committed; one held was opted out of; none is lost."""
    users = [make_user(f"u{i}") for i in range(150)]
    out, claimed, _, rows, sent, held = race_a_preference_change(tmp_path, users, "optout")
    off = {int(pk): at for pk, at in out["off"].items()}
    assert len(off) == 150
    for pk in sent:
        assert off[rows[pk].target_user_id] > claimed[pk], pk
    # The race really happened: some were sent before their user's opt-out, some held.
    assert sent and held


def test_an_opt_in_racing_with_workers_decides_by_what_committed_before_the_read(tmp_path):
    """The other direction: 150 users have turned the category off, and a third process turns
    it back on for them one by one while two workers process their notifications. A sent one
    was read after its user's opt-in began (never one the user was still opted out of when
    it was claimed and read); a held one was claimed before the opt-in returned; none is lost."""
    users = [make_user(f"u{i}") for i in range(150)]
    for user in users:
        set_preference(user, "comments", "memo", False)
    out, claimed, sent_at, rows, sent, held = race_a_preference_change(tmp_path, users, "optin")
    began = {int(pk): at for pk, at in out["began"].items()}
    returned = {int(pk): at for pk, at in out["off"].items()}
    assert len(began) == len(returned) == 150
    for pk in sent:  # its preference was read (after the claim, before the send) turned on
        assert sent_at[pk] > began[rows[pk].target_user_id], pk
    for pk in held:  # read while still off: claimed before the opt-in had returned
        assert claimed[pk] < returned[rows[pk].target_user_id], pk
    # The race really happened: some held before their user's opt-in, some sent after it.
    assert sent and held


@pytest.mark.parametrize("policies", [["tests.policies.ClaimLog"], ["tests.policies.ClaimLog", ESCALATION]])
def test_a_step_whose_cancellation_committed_before_its_claim_is_never_sent(tmp_path, policies):
    """150 escalations whose entry went out and whose follow-up step is due: two workers claim the
    follow-ups while a third process marks the entries seen (``mark_seen()``) one by one. The
    database is the witness: a follow-up the seer's cancel caught (its UPDATE counted it) is
    never sent and ends CANCELLED "seen: ..."; one it did not catch had been claimed already
    (logged as claimed before the seer returned) and is sent once; none is lost. Without
    EscalationPolicy too: the guarantee is the claim's, a cancelled row is no longer CREATED."""
    users = [make_user(f"u{i}") for i in range(150)]
    start = timezone.now() - datetime.timedelta(hours=1)
    for user in users:
        durable_event.trigger(user, datetime_scheduled=start)
    Notification.objects.filter(trigger_name="durable-entry").update(
        status=S.SUCCESSFULLY_SENT, datetime_processed=start
    )
    followups = set(Notification.objects.filter(trigger_name="durable-followup").values_list("pk", flat=True))
    log, claims = tmp_path / "sent.log", tmp_path / "claims.log"
    env = child_env(
        db_name(),
        {"TRANSMISSIONS_POLICIES": policies},
        **{SEND_LOG_ENV: str(log), SEND_DELAY_ENV: "0.004", CLAIM_LOG_ENV: str(claims)},
    )
    worker = ["process", "--loop", "--batch-size", "5"]
    seer = ["seen", "--names", "durable-entry", "--users", ",".join(str(u.pk) for u in users)]
    *_, out = run_together(tmp_path, env, [worker, worker, seer])

    seen = {int(pk): (caught, at) for pk, (caught, at) in out["seen"].items()}
    assert len(seen) == 150
    claimed = {int(pk): float(at) for pk, at in (line.split() for line in claims.read_text().splitlines())}
    rows = {n.pk: n for n in Notification.objects.filter(pk__in=followups)}
    sent = read_send_log(log)
    assert len(sent) == len(set(sent))  # once each
    assert set(sent) <= followups
    assert {pk for pk, n in rows.items() if n.status == S.SUCCESSFULLY_SENT} == set(sent)
    cancelled = {pk for pk, n in rows.items() if n.status == S.CANCELLED}
    assert cancelled | set(sent) == followups
    for pk, n in rows.items():
        caught, returned = seen[n.target_user_id]
        if caught:
            assert caught == 1 and pk in cancelled and pk not in sent, pk
            assert n.reason.startswith("seen: "), n.reason
        else:
            # Not waiting when the cancel ran: a worker held it, so it was claimed before; it
            # is sent, unless EscalationPolicy read the entry seen after the claim.
            assert pk in claimed and claimed[pk] < returned + 1.0, pk  # logged just after its claim
            late = ESCALATION in policies and n.status == S.CANCELLED and " was seen at " in n.reason
            assert pk in sent or late, (pk, n.status, n.reason)
    # The race really happened: some sent before their entry was seen, some cancelled.
    assert sent and cancelled


CHAIN = ["chain-entry", "chain-push", "chain-email"]


@pytest.mark.parametrize("policy", ["broken", "retry"])
@pytest.mark.parametrize("step", [0, 1, 2], ids=CHAIN)
def test_a_worker_killed_on_an_escalation_step(tmp_path, policy, step):
    """Ten events of in-app → push → email, the earlier steps sent, step ``step`` due: a worker
    claims the ten, sends three and is SIGKILLed. That step follows the lease policy ("broken":
    none sent twice, all BROKEN; "retry": sent again, but not for a user who saw the entry while
    the claim was held: EscalationPolicy cancels it when it is claimed again). Users see their
    entry (some while the lease runs, some after), then the later steps come due: a seen
    event's are CANCELLED "seen: ...", an unseen one's are sent once each."""
    users = [make_user(f"c{i}") for i in range(10)]
    now = timezone.now()
    start = now - durable_chain.steps[step].after - datetime.timedelta(seconds=1)
    for user in users:
        durable_chain.trigger(user, datetime_scheduled=start)
    rows = Notification.objects.filter(trigger_name__in=CHAIN)
    rows.filter(trigger_name__in=CHAIN[:step]).update(status=S.SUCCESSFULLY_SENT, datetime_processed=now)
    earlier = dict(rows.filter(trigger_name__in=CHAIN[:step]).values_list("pk", "status"))
    killed = set(rows.filter(trigger_name=CHAIN[step]).values_list("pk", flat=True))
    log = tmp_path / "sends.log"
    settings = {"TRANSMISSIONS_LEASE_SECONDS": 2, "TRANSMISSIONS_EXPIRED_LEASE_POLICY": policy}
    kill_mid_batch(settings, log, 10)
    assert set(rows.filter(status=S.PROCESSING).values_list("pk", flat=True)) == killed
    sent_before = set(read_send_log(log))
    assert sent_before < killed

    def see(group):
        # The inbox's path: the users' sent entries marked seen, their waiting steps cancelled.
        Notification.objects.filter(target_user__in=group).feed().mark_seen()

    see(users[:3])  # while the killed worker's claim still holds its rows
    lease_end = rows.filter(pk__in=killed).latest("claimed_until").claimed_until
    time.sleep(max((lease_end - timezone.now()).total_seconds(), 0) + 0.1)
    env = child_env(db_name(), settings, **{SEND_LOG_ENV: str(log)})
    results([spawn(env, "process", "--batch-size", "10", "--loop")])  # takes the claim back
    see(users[3:6])  # after
    rows.filter(trigger_name__in=CHAIN[step + 1 :]).update(datetime_scheduled=timezone.now())
    results([spawn(env, "process", "--batch-size", "10", "--loop")])  # the later steps, due

    sent = collections.Counter(read_send_log(log))
    final = {n.pk: n for n in rows}
    assert {n.status for n in final.values()} <= FINAL  # nothing stuck
    assert {pk: final[pk].status for pk in earlier} == earlier  # the earlier steps untouched
    seen = {n.escalation for n in final.values() if n.datetime_seen is not None}
    for pk in killed:
        n = final[pk]
        if policy == "broken":
            # At most once: taken back BROKEN, never sent again.
            assert n.status == S.BROKEN and sent[pk] == (pk in sent_before), (pk, n.reason)
        elif n.escalation in seen and step > 0 and n.target_user in users[:3]:
            # At least once, but the event was seen meanwhile: cancelled when claimed again.
            assert n.status == S.CANCELLED and n.reason.startswith("seen: step chain-entry"), n.reason
            assert sent[pk] == (pk in sent_before)
        else:
            # At least once: sent again; twice only if it had gone out before the kill.
            assert n.status == S.SUCCESSFULLY_SENT, (pk, n.reason)
            assert sent[pk] == 1 + (pk in sent_before)
    later = [n for n in final.values() if n.trigger_name in CHAIN[step + 1 :]]
    for n in later:
        if n.escalation in seen:
            assert n.status == S.CANCELLED and n.reason.startswith("seen: "), n.reason
            assert sent[n.pk] == 0
        else:
            assert n.status == S.SUCCESSFULLY_SENT and sent[n.pk] == 1, (n.pk, n.reason)
    # Each outcome really happened: a seen event and an unseen one (unless nobody could see
    # the entry: at most once, the entry itself was the killed step).
    if step < 2 and not (step == 0 and policy == "broken"):
        assert {n.status for n in later} == {S.CANCELLED, S.SUCCESSFULLY_SENT}
    if step == 0 and policy == "broken":
        assert not seen and {n.status for n in later} == {S.SUCCESSFULLY_SENT}


def test_racing_triggers_with_one_idempotency_key_make_one_row(tmp_path):
    """8 processes, 5 calls each, one key: one row, and every call returned it."""
    user = make_user()
    argv = [
        "trigger",
        "--user",
        str(user.pk),
        "--names",
        "default",
        "--key",
        "order-42:shipped",
        "--rounds",
        "5",
    ]
    out = run_together(tmp_path, child_env(db_name()), [argv] * 8)

    [row] = Notification.objects.filter(target_user=user)
    assert row.idempotency_key == "order-42:shipped"
    assert [pk for r in out for pk in r["returned"]] == [row.pk] * 40


def test_racing_escalation_triggers_make_one_event(tmp_path):
    """8 processes, 5 triggers each: with one idempotency key, one event and every call returned
    its steps; a TRIGGER_ONCE escalation, one event, and the refused triggers left no step behind."""
    user = make_user()
    keyed = ["event", "--user", str(user.pk), "--names", "durable-chain", "--key", "reply-9", "--rounds", "5"]
    once = ["event", "--user", str(user.pk), "--names", "once", "--rounds", "5"]
    out = run_together(tmp_path, child_env(db_name()), [keyed] * 4 + [once] * 4)

    chain = list(Notification.objects.filter(trigger_name__in=CHAIN).order_by("pk"))
    assert [n.trigger_name for n in chain] == CHAIN and len({n.escalation for n in chain}) == 1
    assert [steps for r in out[:4] for steps in r["returned"]] == [[n.pk for n in chain]] * 20
    rows = Notification.objects.filter(trigger_name__in=["once-inapp", "once-memo"]).order_by("pk")
    assert [n.trigger_name for n in rows] == ["once-inapp", "once-memo"]
    made = [steps for r in out[4:] for steps in r["returned"] if steps]
    assert made == [[n.pk for n in rows]]


def test_racing_take_overs_of_an_expired_key_make_one_new_row(tmp_path):
    """The key's holder is past the window: 8 processes racing to take it over make one new row."""
    user = make_user()
    old = DefaultMessage.trigger(user, idempotency_key="k")
    Notification.objects.filter(pk=old.pk).update(
        datetime_created=timezone.now() - datetime.timedelta(days=2)
    )
    argv = ["trigger", "--user", str(user.pk), "--names", "default", "--key", "k", "--rounds", "3"]
    out = run_together(tmp_path, child_env(db_name()), [argv] * 8)

    new = Notification.objects.get(idempotency_key="k")
    assert new.pk != old.pk
    assert Notification.objects.filter(target_user=user).count() == 2
    assert [pk for r in out for pk in r["returned"]] == [new.pk] * 24
    old.refresh_from_db()
    assert old.idempotency_key is None and old.status == S.CREATED


def test_racing_trigger_many_with_a_key_per_user(tmp_path):
    users = [make_user(f"k{i}") for i in range(20)]
    ids = ",".join(str(u.pk) for u in users)
    argv = ["trigger", "--users", ids, "--names", "default", "--key", "batch", "--rounds", "2"]
    out = run_together(tmp_path, child_env(db_name()), [argv] * 8)

    rows = dict(Notification.objects.values_list("target_user_id", "pk"))
    assert len(rows) == 20 and Notification.objects.count() == 20
    for result in out:
        for returned in result["returned"]:
            assert {int(k): v for k, v in returned.items()} == rows


def test_racing_throttled_triggers_send_exactly_the_limit(tmp_path):
    """8 processes x 5 triggers of a message throttled to 3 an hour: 3 sent, 37 dropped."""
    user = make_user()
    argv = ["trigger", "--user", str(user.pk), "--names", "throttled", "--rounds", "5"]
    out = run_together(tmp_path, child_env(db_name()), [argv] * 8)
    assert sum(r["created"]["throttled"] for r in out) == 40  # each trigger wrote its row

    log = tmp_path / "sends.log"
    env = child_env(db_name(), **{SEND_LOG_ENV: str(log)})
    results([spawn(env, "process", "--batch-size", "20", "--loop")])
    rows = Notification.objects.filter(target_user=user)
    assert rows.filter(status=S.SUCCESSFULLY_SENT).count() == 3
    assert rows.held("throttled").filter(status=S.CANCELLED).count() == 37


def test_racing_deferred_throttled_triggers_keep_the_limit_per_window(tmp_path):
    """8 processes x 3 triggers, 2 an hour, the excess deferred: 2 now, 2 per hour after."""
    user = make_user()
    argv = ["trigger", "--user", str(user.pk), "--names", "throttled-defer", "--rounds", "3"]
    run_together(tmp_path, child_env(db_name()), [argv] * 8)

    times = sorted(Notification.objects.filter(target_user=user).values_list("datetime_scheduled", flat=True))
    assert len(times) == 24
    hour = datetime.timedelta(hours=1)
    # Any two rows two apart are at least an hour apart: never 3 in one hour.
    assert all(b - a >= hour for a, b in zip(times, times[2:], strict=False))
    assert times[-1] - times[0] < 12 * hour + datetime.timedelta(minutes=1)  # no slot wasted


def test_racing_triggers_of_one_digest_make_one_digest_sent_once(tmp_path):
    """8 processes x 5 triggers of an hourly digest for one user: one digest of 40 items."""
    user = make_user()
    argv = ["trigger", "--user", str(user.pk), "--names", "durable-digest", "--rounds", "5"]
    out = run_together(tmp_path, child_env(db_name()), [argv] * 8)
    assert sum(r["created"]["durable-digest"] for r in out) == 40  # every call returned the digest
    [digest] = Notification.objects.filter(target_user=user)
    assert digest.status == S.CREATED and DigestItem.objects.filter(digest=digest).count() == 40
    assert DigestItem.objects.count() == 40

    Notification.objects.filter(pk=digest.pk).update(datetime_scheduled=timezone.now())
    log = tmp_path / "sends.log"
    env = child_env(db_name(), **{SEND_LOG_ENV: str(log)})
    results([spawn(env, "process", "--loop") for _ in range(2)])
    sends = read_digest_log(log)
    items = sorted(DigestItem.objects.values_list("pk", flat=True))
    assert [(pk, sorted(ids)) for pk, ids in sends] == [(digest.pk, items)]
    digest.refresh_from_db()
    assert digest.status == S.SUCCESSFULLY_SENT


def test_digests_racing_their_workers_lose_no_item_and_send_none_twice(tmp_path):
    """8 processes x 5 triggers of a digest whose window (20 ms) ends while they still trigger,
    and 2 workers sending the digests meanwhile: each item is sent exactly once."""
    user = make_user()
    log = tmp_path / "sends.log"
    stop_file = tmp_path / "stop"
    env = child_env(db_name(), **{SEND_LOG_ENV: str(log)})
    workers = [spawn(env, "process", "--loop", "--stop", str(stop_file)) for _ in range(2)]
    try:
        argv = ["trigger", "--user", str(user.pk), "--names", "durable-digest-quick", "--rounds", "5"]
        run_together(tmp_path, child_env(db_name()), [argv] * 8)
        time.sleep(0.1)  # the last digest's window ends
        stop_file.touch()
        done = results(workers)
    finally:
        stop(workers)
    results([spawn(env, "process")])  # whatever came due after the workers' last look
    assert sum(r["taken"] for r in done) > 0

    sends = read_digest_log(log)
    sent_items = collections.Counter(i for _, ids in sends for i in ids)
    items = set(DigestItem.objects.values_list("pk", flat=True))
    assert len(items) == 40
    assert set(sent_items) == items and set(sent_items.values()) == {1}  # none lost, none twice
    digests = Notification.objects.filter(target_user=user)
    assert collections.Counter(pk for pk, _ in sends) == collections.Counter(
        digests.values_list("pk", flat=True)
    )
    assert set(digests.values_list("status", flat=True)) == {S.SUCCESSFULLY_SENT}
    for pk, ids in sends:  # each send held exactly its own digest's items
        assert sorted(ids) == sorted(DigestItem.objects.filter(digest_id=pk).values_list("pk", flat=True))


@pytest.mark.parametrize("policy", ["broken", "retry"])
def test_worker_killed_while_sending_digests(tmp_path, policy):
    """A worker SIGKILLed while sending a batch of digests: under "broken" no digest is sent
    twice (at most once); under "retry" the held ones are sent again with their items."""
    users = [make_user(f"d{i}") for i in range(30)]
    for user in users:
        for n in range(3):
            DurableDigest.trigger(user, data=n)
    Notification.objects.update(datetime_scheduled=timezone.now())
    ids = set(Notification.objects.values_list("pk", flat=True))
    log = tmp_path / "sends.log"
    lease = 5
    settings = {"TRANSMISSIONS_LEASE_SECONDS": lease, "TRANSMISSIONS_EXPIRED_LEASE_POLICY": policy}
    kill_mid_batch(settings, log, 20, "its digests")
    held = set(Notification.objects.filter(status=S.PROCESSING).values_list("pk", flat=True))
    sent_before = read_send_log(log)
    assert len(held) == 20 and set(sent_before) < held

    env = child_env(db_name(), settings, **{SEND_LOG_ENV: str(log)})
    [early] = results([spawn(env, "process", "--batch-size", "20", "--loop")])
    assert early["taken"] == len(ids) - 20
    lease_end = Notification.objects.filter(pk__in=held).latest("claimed_until").claimed_until
    time.sleep(max((lease_end - timezone.now()).total_seconds(), 0) + 0.1)
    [late] = results([spawn(env, "process", "--batch-size", "20", "--loop")])

    sends = read_digest_log(log)
    assert all(len(items) == 3 for _, items in sends)  # every send carried its digest's 3 items
    sent = collections.Counter(pk for pk, _ in sends)
    statuses = dict(Notification.objects.values_list("pk", "status"))
    assert set(statuses.values()) <= FINAL
    duplicates = {pk for pk, n in sent.items() if n > 1}
    if policy == "broken":
        assert late["taken"] == 0 and not duplicates
        assert {pk for pk, s in statuses.items() if s == S.BROKEN} == held
        assert set(sent) == (ids - held) | set(sent_before)
    else:
        assert late["taken"] == 20 and set(sent) == ids
        assert duplicates == set(sent_before)
