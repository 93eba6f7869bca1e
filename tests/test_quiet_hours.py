"""quiet_hours.py: nothing non-urgent inside the recipient's quiet hours, in their time zone,
deferred to the window's end in one UPDATE and sent then; right across the 2026 DST changes."""

import datetime
import logging

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from tests import messages
from tests.messages import BadgeInApp, DefaultMessage, RecordingChannel, SendOnceMessage
from tests.utils import make_user, statements
from transmissions import internals, message
from transmissions.checks import check_settings
from transmissions.exceptions import MessageRegistrationError
from transmissions.models import Notification
from transmissions.quiet_hours import parse_window, recipient_timezone, window_end, window_for
from transmissions.worker import process_all_notifications, run

pytestmark = pytest.mark.django_db
S = Notification.Status
UTC = datetime.UTC

# Each user's zone, by username, for TRANSMISSIONS_RECIPIENT_TIMEZONE = "...zone_of".
ZONES = {"ny": "America/New_York", "berlin": "Europe/Berlin", "lost": "Mars/Olympus_Mons"}
# Each user's own window, by username (None: the default, False: none).
WINDOWS = {"owl": ("01:00", "05:00"), "free": False}


def zone_of(user):
    return ZONES.get(user.username)


def window_of(user):
    return WINDOWS.get(user.username)


QUIET = override_settings(
    TRANSMISSIONS_QUIET_HOURS=("22:00", "07:00"),
    TRANSMISSIONS_RECIPIENT_TIMEZONE="tests.test_quiet_hours.zone_of",
)


def at(text):
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@QUIET
@pytest.mark.parametrize(
    ("user", "now", "until"),
    [
        # America/New_York springs forward on 2026-03-08 at 02:00 EST: 07:00 is EDT (UTC-4).
        ("ny", "2026-03-08 05:00", "2026-03-08 11:00"),
        ("ny", "2026-03-08 03:30", "2026-03-08 11:00"),  # 22:30 EST the evening before
        # ... and falls back on 2026-11-01 at 02:00 EDT: 07:00 is EST (UTC-5).
        ("ny", "2026-11-01 04:00", "2026-11-01 12:00"),
        ("ny", "2026-11-01 02:30", "2026-11-01 12:00"),  # 22:30 EDT the evening before
        # Europe/Berlin springs forward on 2026-03-29 at 02:00 CET: 07:00 is CEST (UTC+2).
        ("berlin", "2026-03-28 23:00", "2026-03-29 05:00"),
        ("berlin", "2026-03-28 21:30", "2026-03-29 05:00"),  # 22:30 CET the evening before
        # ... and falls back on 2026-10-25 at 03:00 CEST: 07:00 is CET (UTC+1).
        ("berlin", "2026-10-24 22:30", "2026-10-25 06:00"),
        ("berlin", "2026-10-25 01:30", "2026-10-25 06:00"),  # 02:30 CET, the second 02:30
    ],
)
def test_deferred_to_the_window_end_in_local_time_across_dst_and_sent_then(user, now, until):
    bob = make_user(user)
    with time_machine.travel(at(now), tick=False):
        n = SendOnceMessage.trigger(bob)
        summary = run()
        assert dict(summary.counts)["deferred"] == 1 and messages.sent == []
        n.refresh_from_db()
        assert (n.status, n.attempts) == (S.CREATED, 0)
        assert n.datetime_scheduled == at(until)
        assert n.reason == f"quiet-hours: the recipient's quiet hours, 22:00-07:00 in {ZONES[user]}"
        assert list(Notification.objects.held("quiet-hours")) == [n]
        assert SendOnceMessage.trigger(bob) is None  # its behaviour's key is intact
    with time_machine.travel(at(until) - datetime.timedelta(seconds=1), tick=False):
        assert process_all_notifications() == 0  # not due yet
    with time_machine.travel(at(until), tick=False):
        assert process_all_notifications() == 1
    n.refresh_from_db()
    assert (n.status, n.attempts, n.reason) == (S.SUCCESSFULLY_SENT, 1, "")
    assert messages.sent == [("send-once", n.pk)]


@pytest.mark.parametrize(
    ("window", "zone", "now", "until"),
    [
        # An end in New York's spring gap (02:30 does not exist): 03:30 EDT, the same instant.
        (("22:00", "02:30"), "America/New_York", "2026-03-08 05:30", "2026-03-08 07:30"),
        # An end that happens twice in Berlin's autumn (02:30): the first, CEST.
        (("01:00", "02:30"), "Europe/Berlin", "2026-10-24 23:30", "2026-10-25 00:30"),
        # A window within one day.
        (("13:00", "14:00"), "Europe/Berlin", "2026-07-01 11:30", "2026-07-01 12:00"),
        # Outside the window: None.
        (("22:00", "07:00"), "America/New_York", "2026-03-08 15:00", None),
        (("13:00", "14:00"), "Europe/Berlin", "2026-07-01 12:00", None),  # the end is not inside
    ],
)
def test_window_end(window, zone, now, until):
    import zoneinfo

    found = window_end(at(now), parse_window(window), zoneinfo.ZoneInfo(zone))
    assert found == (None if until is None else at(until))


@QUIET
def test_outside_the_window_is_sent_at_once_and_costs_no_query():
    ny = make_user("ny")
    with time_machine.travel(at("2026-03-08 15:00"), tick=False):
        DefaultMessage.trigger(ny)
        with CaptureQueriesContext(connection) as ctx:
            assert process_all_notifications() == 1
    assert len(messages.sent) == 1
    # recover, claim, the batch's users, the UPDATE of the sent (no query of the policy's own).
    extra = 2 if connection.vendor == "mysql" else (0 if internals.enabled() else 1)
    assert len(statements(ctx)) == 4 + extra, statements(ctx)


@QUIET
@pytest.mark.parametrize("size", [2, 20])
def test_a_batch_is_deferred_in_one_update_whatever_its_size(size):
    users = [make_user(f"u{i}") for i in range(size)]
    with time_machine.travel(at("2026-01-10 23:30"), tick=False):  # UTC, TIME_ZONE
        DefaultMessage.trigger_many(users)
        with CaptureQueriesContext(connection) as ctx:
            process_all_notifications()
    extra = 2 if connection.vendor == "mysql" else (0 if internals.enabled() else 1)
    assert len(statements(ctx)) == 4 + extra, statements(ctx)  # recover, claim, users, the deferral
    assert set(Notification.objects.values_list("datetime_scheduled", flat=True)) == {at("2026-01-11 07:00")}


@QUIET
def test_in_app_and_urgent_messages_are_sent_inside_the_window(cleanup):
    @message("urgent-alert", urgent=True)
    class UrgentAlert(RecordingChannel):
        pass

    cleanup.append("urgent-alert")
    ny = make_user("ny")
    with time_machine.travel(at("2026-03-08 05:00"), tick=False):
        badge = BadgeInApp.trigger(ny, data={"badge": "owl"})
        urgent = UrgentAlert.trigger(ny)
        plain = DefaultMessage.trigger(ny)
        process_all_notifications()
    for n in (badge, urgent, plain):
        n.refresh_from_db()
    assert badge.status == urgent.status == S.SUCCESSFULLY_SENT
    assert plain.status == S.CREATED
    with (
        time_machine.travel(at("2026-03-08 05:00"), tick=False),
        override_settings(TRANSMISSIONS_QUIET_HOURS_EXEMPT_CHANNELS=[]),
    ):
        later = BadgeInApp.trigger(ny, data={"badge": "lark"})
        process_all_notifications()
    later.refresh_from_db()
    assert later.status == S.CREATED  # in-app is exempt only by default


@override_settings(
    TRANSMISSIONS_QUIET_HOURS=("22:00", "07:00"),
    TRANSMISSIONS_QUIET_HOURS_SOURCE="tests.test_quiet_hours.window_of",
)
def test_a_user_may_have_their_own_window_or_none():
    owl, free, ada = make_user("owl"), make_user("free"), make_user("ada")
    assert window_for(owl) == parse_window(("01:00", "05:00"))
    assert window_for(free) is None
    assert window_for(ada) == parse_window(("22:00", "07:00"))
    with time_machine.travel(at("2026-01-10 23:30"), tick=False):  # quiet for ada only
        notes = {u.username: DefaultMessage.trigger(u) for u in (owl, free, ada)}
        process_all_notifications()
    statuses = {name: Notification.objects.get(pk=n.pk).status for name, n in notes.items()}
    assert statuses == {"owl": S.SUCCESSFULLY_SENT, "free": S.SUCCESSFULLY_SENT, "ada": S.CREATED}


def test_no_quiet_hours_by_default():
    with time_machine.travel(at("2026-01-11 03:00"), tick=False):
        DefaultMessage.trigger(make_user())
        assert process_all_notifications() == 1
    assert len(messages.sent) == 1


@QUIET
def test_the_recipient_timezone_from_an_attribute_a_callable_or_time_zone(caplog):
    ny, lost, ada = make_user("ny"), make_user("lost"), make_user("ada")
    assert recipient_timezone(ny).key == "America/New_York"
    with caplog.at_level(logging.WARNING, logger="transmissions"):
        assert recipient_timezone(lost).key == "UTC"  # unknown: TIME_ZONE
    assert "unknown time zone 'Mars/Olympus_Mons'" in caplog.text
    assert recipient_timezone(ada).key == "UTC"
    ada.last_name = "Europe/Berlin"
    with override_settings(TRANSMISSIONS_RECIPIENT_TIMEZONE="last_name"):
        assert recipient_timezone(ada).key == "Europe/Berlin"


def ids_of(found):
    return [m.id for m in found if m.id.startswith(("transmissions.E07", "transmissions.W07"))]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"TRANSMISSIONS_QUIET_HOURS": ("22:00",)}, ["transmissions.E074"]),
        ({"TRANSMISSIONS_QUIET_HOURS": ("22:00", "7:00")}, ["transmissions.E074"]),
        ({"TRANSMISSIONS_QUIET_HOURS": ("24:00", "07:00")}, ["transmissions.E074"]),
        ({"TRANSMISSIONS_QUIET_HOURS": ("07:00", "07:00")}, ["transmissions.E074"]),
        ({"TRANSMISSIONS_QUIET_HOURS": [datetime.time(22), datetime.time(7)]}, []),
        ({"TRANSMISSIONS_QUIET_HOURS_SOURCE": "no.such.callable"}, ["transmissions.E075"]),
        ({"TRANSMISSIONS_QUIET_HOURS_SOURCE": "tests.test_quiet_hours.WINDOWS"}, ["transmissions.E075"]),
        ({"TRANSMISSIONS_RECIPIENT_TIMEZONE": 3}, ["transmissions.E076"]),
        ({"TRANSMISSIONS_RECIPIENT_TIMEZONE": "no.such.callable"}, ["transmissions.E076"]),
        ({"TRANSMISSIONS_RECIPIENT_TIMEZONE": "timezone"}, []),
        ({"TRANSMISSIONS_QUIET_HOURS_EXEMPT_CHANNELS": "inapp"}, ["transmissions.E077"]),
    ],
)
def test_quiet_hours_settings_are_checked(settings, expected):
    with override_settings(**settings):
        assert ids_of(check_settings()) == expected


def test_urgent_must_be_a_boolean():
    with pytest.raises(MessageRegistrationError, match="urgent must be True or False"):
        message("bad-urgent", urgent="yes")(RecordingChannel)
