"""delivery.py: what becomes of one notification (BROKEN, CANCELLED, FAILED, retry, sent); the backoff."""

import datetime
import logging

import pytest
import time_machine
from django.test.utils import override_settings
from django.utils import timezone

from tests.messages import (
    DefaultMessage,
    TransientMessage,
)
from tests.utils import status_of, trigger_named
from transmissions.delivery import retry_delay
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("always-fails", S.FAILED),
        ("crashes", S.FAILED),
        ("invalid", S.CANCELLED),
        ("validity-raises", S.BROKEN),
        ("init-raises", S.BROKEN),
        ("no-validity", S.SUCCESSFULLY_SENT),
        ("default", S.SUCCESSFULLY_SENT),
    ],
)
def test_outcomes(user, name, status, caplog):
    n = trigger_named(name, user)
    with caplog.at_level(logging.ERROR, logger="transmissions"):
        process_all_notifications()
    n.refresh_from_db()
    assert n.status == status
    assert n.datetime_processed is not None
    if status in (S.FAILED, S.BROKEN):
        assert f"notification {n.pk} ({name})" in caplog.text


def test_unknown_trigger_name_is_broken(user, caplog):
    n = DefaultMessage.trigger(user)
    Notification.objects.filter(pk=n.pk).update(trigger_name="was-renamed")
    ok = DefaultMessage.trigger(user)
    process_all_notifications()
    assert status_of(n) == S.BROKEN
    assert status_of(ok) == S.SUCCESSFULLY_SENT
    assert "no message is registered" in caplog.text


def test_unreadable_data_is_broken_and_does_not_stop_others(user):
    bad = DefaultMessage.trigger(user, data={"x": 1})
    Notification.objects.filter(pk=bad.pk).update(data_bytes=b"not a pickle")
    good = DefaultMessage.trigger(user)
    process_all_notifications()
    assert status_of(bad) == S.BROKEN
    assert status_of(good) == S.SUCCESSFULLY_SENT
    assert process_all_notifications() == 0  # no loop


def test_transient_error_retries_with_backoff_then_fails(user):
    n = TransientMessage.trigger(user)
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.CREATED and n.attempts == 1
    # Backoff: between half and all of RETRY_DELAY (60 s) for the first retry.
    wait = (n.datetime_scheduled - timezone.now()).total_seconds()
    assert 25 < wait <= 60
    assert process_all_notifications() == 0
    for attempt in range(2, 6):
        with time_machine.travel(timezone.now() + datetime.timedelta(hours=2 * attempt)):
            assert process_all_notifications() == 1
        n.refresh_from_db()
        assert n.attempts == attempt
    assert n.status == S.FAILED and n.datetime_processed is not None


@override_settings(TRANSMISSIONS_MAX_ATTEMPTS=1)
def test_transient_error_without_retries_fails(user):
    n = TransientMessage.trigger(user)
    process_all_notifications()
    assert status_of(n) == S.FAILED


def test_backoff_grows_and_is_capped():

    for attempts in range(1, 12):
        d = retry_delay(attempts).total_seconds()
        ceiling = min(3600, 60 * 2 ** (attempts - 1))
        assert ceiling / 2 <= d <= ceiling


def test_backoff_is_jittered_within_its_window():
    delays = {retry_delay(3).total_seconds() for _ in range(50)}
    assert all(120 <= d <= 240 for d in delays)  # half to all of 60 * 2**2
    assert len(delays) > 40  # jitter spreads retries that failed together


@override_settings(
    TRANSMISSIONS_RETRY_DELAY=10, TRANSMISSIONS_RETRY_MAX_DELAY=30, TRANSMISSIONS_MAX_ATTEMPTS=4
)
def test_settings_drive_backoff_and_attempts():
    ceilings = [min(30, 10 * 2 ** (a - 1)) for a in range(1, 6)]
    assert ceilings == [10, 20, 30, 30, 30]
    for attempts, ceiling in enumerate(ceilings, start=1):
        assert ceiling / 2 <= retry_delay(attempts).total_seconds() <= ceiling


def test_a_channels_own_errors_are_logged_in_one_line_others_with_their_traceback(user, caplog):
    failing, transient, crashing = (
        trigger_named(name, user) for name in ("always-fails", "transient", "crashes")
    )
    process_all_notifications()
    by_id = {}
    for record in caplog.records:
        for n in (failing, transient, crashing):
            if f"notification {n.pk} " in record.getMessage():
                by_id[n.pk] = record
    # ChannelSendException and TransientChannelError say what went wrong: no traceback.
    assert by_id[failing.pk].exc_info is None and by_id[failing.pk].levelname == "ERROR"
    assert by_id[transient.pk].exc_info is None and by_id[transient.pk].levelname == "WARNING"
    assert "Retrying" in by_id[transient.pk].getMessage()
    # Anything else is a bug in the message class: its traceback is logged.
    assert by_id[crashing.pk].exc_info is not None


def test_a_send_that_loses_the_database_connection_is_retried(user, caplog):
    n = trigger_named("loses-database", user)
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.CREATED and n.attempts == 1
    assert n.reason == "terminating connection due to administrator command"
    assert "Retrying notification" in caplog.text


def test_a_cancel_reason_never_costs_the_outcome(user, monkeypatch):
    """A get_cancel_reason() that raises, or a class without one: CANCELLED all the same, with
    check_validity()'s default reason (and what was raised)."""
    from tests.messages import InvalidMessage, NoValidityMessage

    def broken_reason(self):
        raise KeyError("reason")

    monkeypatch.setattr(InvalidMessage, "get_cancel_reason", broken_reason)
    monkeypatch.setattr(NoValidityMessage, "check_validity", lambda self: False, raising=False)
    invalid, plain = trigger_named("invalid", user), trigger_named("no-validity", user)
    process_all_notifications()
    invalid.refresh_from_db()
    plain.refresh_from_db()
    assert (invalid.status, plain.status) == (S.CANCELLED, S.CANCELLED)
    assert invalid.reason == "check_validity() returned false (get_cancel_reason() raised KeyError('reason'))"
    assert plain.reason == "check_validity() returned false"
