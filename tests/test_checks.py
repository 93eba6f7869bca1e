import collections
import datetime
import pathlib
import re
import sys

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test.utils import override_settings

import transmissions
from tests.messages import DefaultMessage
from tests.utils import make_user
from transmissions.checks import check_settings


def ids(**settings):
    with override_settings(**settings):
        return [m.id for m in check_settings()]


def test_defaults_pass():
    assert ids() == []


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"TRANSMISSIONS_SERIALIZER": "no.such.Class"}, "transmissions.E001"),
        ({"TRANSMISSION_SERIALIZER": "no.such.Class"}, "transmissions.E001"),
        ({"TRANSMISSIONS_SERIALIZER": "transmissions.conf.conf"}, "transmissions.E001"),
        ({"TRANSMISSIONS_SERIALIZER": 3}, "transmissions.E001"),
        ({"TRANSMISSIONS_BATCH_SIZE": 0}, "transmissions.E002"),
        ({"TRANSMISSIONS_BATCH_SIZE": "100"}, "transmissions.E002"),
        ({"TRANSMISSIONS_BATCH_SIZE": True}, "transmissions.E002"),
        ({"TRANSMISSIONS_TIME_LIMIT": -1}, "transmissions.E003"),
        ({"TRANSMISSIONS_LEASE_SECONDS": None}, "transmissions.E004"),
        ({"TRANSMISSIONS_EXPIRED_LEASE_POLICY": "resend"}, "transmissions.E005"),
        ({"TRANSMISSIONS_MAX_ATTEMPTS": 0}, "transmissions.E006"),
        ({"TRANSMISSIONS_RETRY_DELAY": "1m"}, "transmissions.E007"),
        ({"TRANSMISSIONS_RETRY_MAX_DELAY": 0}, "transmissions.E008"),
        ({"TRANSMISSIONS_SMS_BACKEND": "no.such.Backend"}, "transmissions.E009"),
        ({"TRANSMISSIONS_SMS_BACKEND": "transmissions.channels.sms.SMS"}, "transmissions.E009"),
        ({"TRANSMISSIONS_DISPATCH_ON_COMMIT": "yes"}, "transmissions.E010"),
        ({"TRANSMISSIONS_DISPATCH_ON_COMMIT": 1}, "transmissions.E010"),
        ({"TRANSMISSIONS_DISPATCH_TIMEOUT": 0}, "transmissions.E013"),
        ({"TRANSMISSIONS_DISPATCH_TIMEOUT": "2"}, "transmissions.E013"),
        ({"TRANSMISSIONS_MAX_DATA_BYTES": 0}, "transmissions.E014"),
        ({"TRANSMISSIONS_MAX_DATA_BYTES": 1.5}, "transmissions.E014"),
        ({"TRANSMISSIONS_BATCH_MAX_BYTES": -1}, "transmissions.E015"),
        (
            {
                "TRANSMISSIONS_SERIALIZER": "transmissions.serializers.JSONSerializer",
                "TRANSMISSION_SERIALIZER": "transmissions.serializers.PickleSerializer",
            },
            "transmissions.W001",
        ),
        ({"TRANSMISSIONS_TIME_LIMIT": 60, "TRANSMISSIONS_LEASE_SECONDS": 600}, "transmissions.W002"),
        ({"TRANSMISSIONS_TIME_LIMIT": 30, "TRANSMISSIONS_LEASE_SECONDS": 30}, "transmissions.W003"),
        ({"TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL": "/notifications/twilio/status"}, "transmissions.E050"),
        ({"TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL": "ftp://example.com/x"}, "transmissions.E050"),
        ({"TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL": 42}, "transmissions.E050"),
        ({"TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL": "https://example.com/x"}, "transmissions.E051"),
        ({"TRANSMISSIONS_IDEMPOTENCY_WINDOW": 0}, "transmissions.E080"),
        ({"TRANSMISSIONS_IDEMPOTENCY_WINDOW": "1h"}, "transmissions.E080"),
        ({"TRANSMISSIONS_IDEMPOTENCY_WINDOW": datetime.timedelta(0)}, "transmissions.E080"),
        ({"TRANSMISSIONS_DIGEST_FREQUENCIES": {}}, "transmissions.E082"),
        ({"TRANSMISSIONS_DIGEST_FREQUENCIES": [("hourly", 3600)]}, "transmissions.E082"),
        ({"TRANSMISSIONS_DIGEST_FREQUENCIES": {"hourly": "1h"}}, "transmissions.E082"),
        ({"TRANSMISSIONS_DIGEST_FREQUENCIES": {"hourly": -1}}, "transmissions.E082"),
        ({"TRANSMISSIONS_DIGEST_FREQUENCIES": {"past": datetime.timedelta(-1)}}, "transmissions.E082"),
        ({"TRANSMISSIONS_DIGEST_FREQUENCIES": {"": 60}}, "transmissions.E082"),
        ({"TRANSMISSION_USER_MODEL": "auth.User"}, "transmissions.E100"),
    ],
)
def test_each_check(settings, expected):
    assert ids(**settings) == [expected]


def test_a_status_callback_url_with_its_token_passes():
    assert (
        ids(
            TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL="https://example.com/x",
            TRANSMISSIONS_TWILIO_AUTH_TOKEN="t",
        )
        == []
    )


def test_a_status_callback_url_without_the_twilio_package(monkeypatch):
    # None in sys.modules: importing it raises ImportError, as when it is not installed.
    monkeypatch.setitem(sys.modules, "twilio.request_validator", None)
    settings = {"TRANSMISSIONS_TWILIO_STATUS_CALLBACK_URL": "https://example.com/x"}
    assert ids(**settings, TRANSMISSIONS_TWILIO_AUTH_TOKEN="t") == ["transmissions.E052"]


def test_same_value_in_both_spellings_is_fine():
    path = "transmissions.serializers.JSONSerializer"
    assert ids(TRANSMISSIONS_SERIALIZER=path, TRANSMISSION_SERIALIZER=path) == []


# Django 6.1's model checks ask the database whether it supports JSONField.
@pytest.mark.django_db
def test_check_command_really_fails():
    with override_settings(TRANSMISSIONS_SERIALIZER="no.such.Class"):
        with pytest.raises(SystemCheckError, match=r"transmissions.E001.*TRANSMISSIONS_SERIALIZER"):
            call_command("check")


def test_bad_setting_does_not_break_import_or_unrelated_calls():
    # Errors come from the checks and from the first use, never at import.
    with override_settings(TRANSMISSIONS_SERIALIZER="no.such.Class"):
        from transmissions.models import Notification

        assert Notification(trigger_name="x").data == {}


def test_each_check_id_is_raised_from_one_place_only():
    # One id, one failure: SILENCED_SYSTEM_CHECKS must be able to tell them apart, so no
    # id appears twice in the app's code, and docs/checks.md lists each one once.
    root = pathlib.Path(transmissions.__file__).parent
    # Quoted literals only ("transmissions.E030"), not mentions in docstrings.
    literals: collections.Counter[str] = collections.Counter()
    for path in root.rglob("*.py"):
        literals.update(re.findall(r'"(transmissions\.[EW]\d{3})"', path.read_text()))
    reused = {check_id: n for check_id, n in literals.items() if n > 1}
    assert len(literals) > 30 and not reused, reused
    table = (root.parent / "docs" / "checks.md").read_text()
    listed = collections.Counter(re.findall(r"^\| `(transmissions\.[EW]\d{3})`", table, flags=re.M))
    assert set(listed) == set(literals), set(listed) ^ set(literals)
    assert max(listed.values()) == 1, listed


@pytest.mark.django_db
def test_rows_with_an_unknown_status_are_a_database_warning():
    from transmissions.checks import check_unknown_statuses
    from transmissions.models import Notification

    user = make_user()
    DefaultMessage.trigger(user)
    assert check_unknown_statuses(databases=["default"]) == []
    for _ in range(2):
        n = DefaultMessage.trigger(user)
        Notification.objects.filter(pk=n.pk).update(status=9)
    [warning] = check_unknown_statuses(databases=["default"])
    assert warning.id == "transmissions.W004"
    assert "a status transmissions does not know: 9 (2 rows)" in warning.msg
    assert check_unknown_statuses(databases=None) == []  # only with --database
    assert check_unknown_statuses(app_configs=[apps.get_app_config("auth")], databases=["default"]) == []
    with pytest.raises(SystemCheckError, match="transmissions.W004"):
        call_command("check", "--database", "default", "--fail-level", "WARNING")


def test_transmission_user_model_naming_the_auth_user_model_is_fine():
    assert ids(TRANSMISSION_USER_MODEL="tests.User") == []


def test_transmission_user_model_error_names_the_setting_and_what_to_do():
    with override_settings(TRANSMISSION_USER_MODEL="auth.User"):
        (error,) = check_settings()
    assert "TRANSMISSION_USER_MODEL is 'auth.User'" in error.msg and "'tests.User'" in error.msg
    assert error.hint.startswith("Remove TRANSMISSION_USER_MODEL.")
