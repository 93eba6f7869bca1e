"""recipients.py: each notification rendered in its recipient's language and time zone; the
worker's own language untouched; the app's strings translated (the shipped German)."""

import logging

import pytest
from django.core import mail
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import translation

from tests.messages import LocaleEmail, LocaleInApp
from tests.utils import make_user
from transmissions.channels.inapp import entry
from transmissions.checks import check_settings
from transmissions.models import Notification
from transmissions.recipients import activated, fixed_locale, language_of, timezone_of
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status

# By username, for the callables below.
LANGUAGES = {"hans": "de", "anna": "de-at", "zed": "xx"}
ZONES = {"hans": "Europe/Berlin", "nyc": "America/New_York"}


def language(user):
    return LANGUAGES.get(user.username)


def zone(user):
    return ZONES.get(user.username)


def broken(user):
    raise RuntimeError("profile service down")


LOCALE = override_settings(
    TRANSMISSIONS_RECIPIENT_LANGUAGE="tests.test_recipients.language",
    TRANSMISSIONS_RECIPIENT_TIMEZONE="tests.test_recipients.zone",
)


@LOCALE
def test_in_app_text_is_stored_in_the_recipients_language_and_zone():
    hans, nyc, ada = make_user("hans"), make_user("nyc"), make_user("ada")
    rows = {u.username: LocaleInApp.trigger(u) for u in (hans, nyc, ada)}
    worker_language = translation.get_language()
    assert process_all_notifications() == 3
    assert translation.get_language() == worker_language  # unchanged after the batch
    texts = {name: entry(Notification.objects.get(pk=n.pk))["text"] for name, n in rows.items()}
    assert texts["hans"].startswith("Benachrichtigungen ") and texts["hans"].endswith(" Europe/Berlin")
    assert texts["nyc"].startswith("Notifications ") and texts["nyc"].endswith(" America/New_York")
    assert texts["ada"].startswith("Notifications ") and texts["ada"].endswith(" UTC")
    # The same instant, in each zone's wall time.
    assert texts["hans"].split()[1] != texts["ada"].split()[1]


@LOCALE
def test_an_email_is_written_in_the_recipients_language():
    LocaleEmail.trigger(make_user("hans")), LocaleEmail.trigger(make_user("ada"))
    process_all_notifications()
    by_to = {m.to[0]: (m.subject, m.body) for m in mail.outbox}
    assert by_to == {
        "hans@example.com": ("Benachrichtigungen", "gerade eben"),
        "ada@example.com": ("Notifications", "just now"),
    }


@LOCALE
def test_a_variant_is_reduced_and_an_unknown_language_falls_back(caplog):
    assert language_of(make_user("anna")) == "de"  # de-at: German
    with caplog.at_level(logging.WARNING, logger="transmissions"):
        assert language_of(make_user("zed")) == "en-us"  # LANGUAGE_CODE
    assert "language 'xx' that LANGUAGES does not list" in caplog.text
    assert language_of(make_user("ada")) == "en-us"


@override_settings(
    TRANSMISSIONS_RECIPIENT_LANGUAGE="tests.test_recipients.broken",
    TRANSMISSIONS_RECIPIENT_TIMEZONE="tests.test_recipients.broken",
)
def test_a_source_that_raises_costs_nothing_but_a_warning(caplog):
    hans = make_user("hans")
    with caplog.at_level(logging.WARNING, logger="transmissions"):
        assert (language_of(hans), timezone_of(hans).key) == ("en-us", "UTC")
        n = LocaleInApp.trigger(hans)
        process_all_notifications()
    assert "could not be read (RuntimeError('profile service down'))" in caplog.text
    n.refresh_from_db()
    assert n.status == S.SUCCESSFULLY_SENT


def test_attributes_name_the_language_and_zone():
    ada = make_user(first_name="de", last_name="Asia/Tokyo")
    with override_settings(
        TRANSMISSIONS_RECIPIENT_LANGUAGE="first_name", TRANSMISSIONS_RECIPIENT_TIMEZONE="last_name"
    ):
        with activated(ada):
            assert translation.get_language() == "de"
            from django.utils import timezone

            assert timezone.get_current_timezone().key == "Asia/Tokyo"
    assert translation.get_language() != "de"


def test_the_pages_are_translated():
    ada = make_user()
    from django.test import Client

    client = Client()
    client.force_login(ada)
    with translation.override("de"):
        page = client.get(reverse("transmissions:preferences")).content.decode()
        inbox = client.get(reverse("transmissions:inbox")).content.decode()
    assert "Benachrichtigungseinstellungen" in page and "Einstellungen speichern" in page and "E-Mail" in page
    assert "Noch keine Benachrichtigungen." in inbox


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, ["transmissions.E078"]),
        ("no.such.callable", ["transmissions.E078"]),
        ("tests.test_recipients.LANGUAGES", ["transmissions.E078"]),
        ("language", []),
        ("tests.test_recipients.language", []),
    ],
)
def test_the_language_setting_is_checked(value, expected):
    with override_settings(TRANSMISSIONS_RECIPIENT_LANGUAGE=value):
        assert [m.id for m in check_settings() if m.id.startswith("transmissions.E07")] == expected


@override_settings(LANGUAGE_CODE="de", TIME_ZONE="Europe/Berlin")
def test_without_a_source_every_recipient_has_the_defaults_read_once_per_batch():
    assert fixed_locale() == ("de", timezone_of(None)) and str(fixed_locale()[1]) == "Europe/Berlin"
    with override_settings(TRANSMISSIONS_RECIPIENT_TIMEZONE="tests.test_recipients.zone"):
        assert fixed_locale() is None  # each recipient's own
    with override_settings(TRANSMISSIONS_RECIPIENT_LANGUAGE="tests.test_recipients.language"):
        assert fixed_locale() is None
