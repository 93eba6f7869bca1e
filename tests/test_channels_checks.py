"""System checks of the channels: Twilio settings (E020-E027, W020), message templates (E028) and
mailers (E029)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test.utils import override_settings

from tests.utils import email_settings
from transmissions import message
from transmissions.channels.checks import check_channels
from transmissions.channels.email import DefaultEmailMessage
from transmissions.registry import registry

TWILIO = {
    "TRANSMISSIONS_SMS_BACKEND": "transmissions.channels.twilio.TwilioSMSBackend",
    "TRANSMISSIONS_TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
    "TRANSMISSIONS_TWILIO_AUTH_TOKEN": "token",
    "TRANSMISSIONS_TWILIO_FROM_NUMBER": "+14155552671",
}


def ids(**settings):
    with override_settings(**settings):
        return [m.id for m in check_channels()]


def test_complete_twilio_settings_pass():
    assert ids(**TWILIO) == []
    assert ids(**{**TWILIO, "TRANSMISSIONS_TWILIO_FROM_NUMBER": "ACME Shop"}) == []
    assert ids(**{**TWILIO, "TRANSMISSIONS_TWILIO_API_URL": "http://127.0.0.1:8080"}) == []


def test_twilio_settings_are_not_checked_with_another_backend():
    assert ids(TRANSMISSIONS_TWILIO_ACCOUNT_SID="nonsense") == []
    assert ids(TRANSMISSIONS_SMS_BACKEND="no.such.Backend") == []  # transmissions.E009's job


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"TRANSMISSIONS_TWILIO_ACCOUNT_SID": None}, "transmissions.E021"),
        ({"TRANSMISSIONS_TWILIO_ACCOUNT_SID": "SK" + "a" * 32}, "transmissions.E021"),
        ({"TRANSMISSIONS_TWILIO_AUTH_TOKEN": ""}, "transmissions.E022"),
        ({"TRANSMISSIONS_TWILIO_FROM_NUMBER": None}, "transmissions.E023"),
        ({"TRANSMISSIONS_TWILIO_FROM_NUMBER": "0044 20 7946 0958"}, "transmissions.E024"),
        ({"TRANSMISSIONS_TWILIO_FROM_NUMBER": "ACME Shop Ltd"}, "transmissions.E024"),
        ({"TRANSMISSIONS_TWILIO_MESSAGING_SERVICE_SID": "MG123"}, "transmissions.E025"),
        ({"TRANSMISSIONS_TWILIO_TIMEOUT": 0}, "transmissions.E026"),
        ({"TRANSMISSIONS_TWILIO_TIMEOUT": True}, "transmissions.E026"),
        ({"TRANSMISSIONS_TWILIO_API_URL": "api.twilio.com"}, "transmissions.E027"),
        ({"TRANSMISSIONS_TWILIO_API_URL": None}, "transmissions.E027"),
        ({"TRANSMISSIONS_TWILIO_API_URL": "http://twilio-proxy.internal"}, "transmissions.W020"),
    ],
)
def test_bad_twilio_settings(settings, expected):
    assert ids(**{**TWILIO, **settings}) == [expected]


def test_messaging_service_alone_is_enough():
    service = {
        "TRANSMISSIONS_TWILIO_FROM_NUMBER": None,
        "TRANSMISSIONS_TWILIO_MESSAGING_SERVICE_SID": "MG" + "b" * 32,
    }
    assert ids(**{**TWILIO, **service}) == []


@pytest.fixture
def broken_templates():
    @message("check-missing-template")
    class MissingTemplate(DefaultEmailMessage):
        html_template_name = "tests/email/no-such-template.html"

    @message("check-bad-template")
    class BadTemplate(DefaultEmailMessage):
        text_template_name = "tests/email/broken.txt"

    yield
    registry.unregister("check-missing-template")
    registry.unregister("check-bad-template")


def test_missing_or_broken_template_is_an_error(broken_templates):
    errors = check_channels()
    assert [e.id for e in errors] == ["transmissions.E028", "transmissions.E028"]
    assert "Message 'check-bad-template' (BadTemplate.text_template_name): template " in errors[0].msg
    assert "does not compile" in errors[0].msg
    assert errors[1].msg.endswith("template 'tests/email/no-such-template.html' does not exist.")


@pytest.fixture
def register():
    """``register(name, **attrs)``: an email message registered for this test only."""
    names = []

    def register(name, **attrs):
        names.append(name)
        return message(name, **attrs)(type(name.title().replace("-", ""), (DefaultEmailMessage,), {}))

    yield register
    for name in names:
        registry.unregister(name)


def test_default_mailer_needs_no_configuration(register):
    register("check-no-mailer")
    register("check-default-mailer", mailer="default")
    assert ids() == []


@pytest.mark.mailers
def test_mailer_in_mailers_passes(register):
    register("check-transactional", mailer="transactional")
    assert ids() == []


@pytest.mark.mailers
def test_mailer_missing_from_mailers_is_error_e029(register):
    register("check-marketing", mailer="marketing")
    [error] = check_channels()
    assert error.id == "transmissions.E029"
    assert (
        error.msg
        == "Message 'check-marketing' (CheckMarketing.mailer): mailer 'marketing' is not configured."
    )
    assert error.hint.startswith("Add it to MAILERS")
    # The project's MAILERS decides: without "transactional" that alias is an error too.
    register("check-transactional", mailer="transactional")
    with override_settings(MAILERS={"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}):
        assert ids() == ["transmissions.E029", "transmissions.E029"]


@pytest.mark.before_mailers
def test_named_mailer_before_django_61_is_error_e029(register):
    register("check-transactional", mailer="transactional")
    [error] = check_channels()
    assert error.id == "transmissions.E029"
    assert "mailer 'transactional' is not configured" in error.msg
    assert error.hint.startswith("Named mailers need Django 6.1 or later")


def test_mailer_that_is_not_a_string_is_error_e029(register):
    register("check-bad-mailer", mailer=["default"])
    assert ids() == ["transmissions.E029"]


# Django 6.1's model checks ask the database whether it supports JSONField.
@pytest.mark.django_db
def test_check_command_fails_on_unconfigured_mailer(register):
    register("check-marketing", mailer="marketing")
    with pytest.raises(SystemCheckError, match="transmissions.E029"):
        call_command("check")


# Django 6.1's model checks ask the database whether it supports JSONField.
@pytest.mark.django_db
def test_check_command_fails_on_missing_twilio_credentials():
    with override_settings(**{**TWILIO, "TRANSMISSIONS_TWILIO_AUTH_TOKEN": None}):
        with pytest.raises(SystemCheckError, match="transmissions.E022"):
            call_command("check")


ROOT = Path(__file__).resolve().parent.parent

# Python run in a subprocess where the twilio package cannot be imported, as in a
# project installed without the [twilio] extra.
WITHOUT_TWILIO = """
import sys
class NoTwilio:
    def find_spec(self, name, path=None, target=None):
        if name == "twilio" or name.startswith("twilio."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTwilio())
"""


def run_without_twilio(code, **env):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TWILIO + code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_core_and_channels_import_without_twilio():
    result = run_without_twilio(
        "import django; django.setup()\n"
        "import transmissions.channels.email, transmissions.channels.sms, transmissions.channels.inapp\n"
        "import transmissions.channels.twilio, transmissions.testing, transmissions.tasks\n"
        "from django.core.management import call_command; call_command('check')\n"
        "assert not any(m == 'twilio' or m.startswith('twilio.') for m in sys.modules), 'twilio imported'\n"
        "print('ok')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_twilio_backend_without_the_package_is_check_error_e020():
    settings = "".join(f"setattr(settings, {k!r}, {v!r})\n" for k, v in TWILIO.items())
    result = run_without_twilio(
        "import django; django.setup()\nfrom django.conf import settings\n"
        + settings
        + "from transmissions.channels.checks import check_channels\n"
        "print([e.id for e in check_channels()])\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['transmissions.E020']"


def timeout_ids():
    return [m.id for m in check_channels() if m.id in ("transmissions.W021", "transmissions.W022")]


@pytest.mark.parametrize(
    ("options", "lease", "expected"),
    [
        ({"host": "127.0.0.1"}, 600, ["transmissions.W021"]),  # no timeout: a silent server holds it
        ({"host": "127.0.0.1", "timeout": 300}, 600, ["transmissions.W022"]),  # half the lease
        ({"host": "127.0.0.1", "timeout": 10}, 600, []),
        ({"host": "127.0.0.1", "timeout": 10}, 20, ["transmissions.W022"]),
    ],
)
def test_smtp_timeouts_are_checked_against_the_lease(options, lease, expected):
    with override_settings(**email_settings(**options), TRANSMISSIONS_LEASE_SECONDS=lease):
        assert timeout_ids() == expected
    # A backend that is not SMTP has no such timeout.
    with override_settings(**email_settings("django.core.mail.backends.locmem.EmailBackend")):
        assert timeout_ids() == []
