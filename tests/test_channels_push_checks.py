"""The push channel's system checks: transmissions.E030-E040 and W030."""

import sys

import firebase_admin
import push_notifications.conf
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test.utils import override_settings
from push_notifications.conf import get_manager
from push_notifications.settings import PUSH_NOTIFICATIONS_SETTINGS

import tests.push_messages  # noqa: F401  (registers the push messages)
from tests.settings import INSTALLED_APPS
from transmissions import message
from transmissions.channels.push import PushMessage
from transmissions.channels.push_checks import check_push
from transmissions.registry import registry


@pytest.fixture
def firebase():
    app = firebase_admin.initialize_app(firebase_admin.credentials.Base(), {"projectId": "tests"})
    yield app
    firebase_admin.delete_app(app)


DELETE = object()


@pytest.fixture
def dpn(monkeypatch):
    """Change PUSH_NOTIFICATIONS_SETTINGS (read once by django-push-notifications) for one test."""

    def change(**values):
        for key, value in values.items():
            if value is DELETE:
                monkeypatch.delitem(PUSH_NOTIFICATIONS_SETTINGS, key)
            else:
                monkeypatch.setitem(PUSH_NOTIFICATIONS_SETTINGS, key, value)
        # Its config manager is built once and cached: build the next one from these settings.
        monkeypatch.setattr(push_notifications.conf, "manager", None)

    return change


def ids(**settings):
    with override_settings(**settings):
        return [m.id for m in check_push()]


def test_the_test_settings_pass(firebase):
    assert ids() == []


def test_without_a_firebase_app_fcm_warns():
    assert ids() == ["transmissions.W030"]


def test_nothing_is_needed_without_a_push_message(monkeypatch, dpn):
    monkeypatch.setattr(
        registry, "_classes", {k: v for k, v in registry.items() if not issubclass(v, PushMessage)}
    )
    dpn(WP_PRIVATE_KEY=None, APNS_TOPIC=None)
    assert ids() == []


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"TRANSMISSIONS_PUSH_SERVICES": "webpush"}, "transmissions.E030"),
        ({"TRANSMISSIONS_PUSH_SERVICES": ["webpush", "pager"]}, "transmissions.E030"),
        ({"TRANSMISSIONS_PUSH_SERVICES": []}, "transmissions.E030"),
        ({"TRANSMISSIONS_PUSH_TTL": 0}, "transmissions.E031"),
        ({"TRANSMISSIONS_PUSH_TTL": "1d"}, "transmissions.E031"),
    ],
)
def test_each_setting_check(firebase, settings, expected):
    assert ids(**settings) == [expected]


def test_a_bad_push_services_on_a_class(firebase):
    @message("push-pager")
    class PagerPush(PushMessage):
        push_services = ("pager",)

    try:
        assert ids() == ["transmissions.E037"]
    finally:
        registry.unregister("push-pager")


def test_push_notifications_not_installed(firebase):
    apps = [a for a in INSTALLED_APPS if a != "push_notifications"]
    assert ids(INSTALLED_APPS=apps) == ["transmissions.E032"]


def test_push_notifications_misconfigured(firebase, dpn):
    dpn(CONFIG="push_notifications.conf.AppConfig", APPLICATIONS={"web": {"PLATFORM": "PAGER"}})
    messages = check_push()
    assert [m.id for m in messages] == ["transmissions.E038"]
    assert 'APPLICATIONS["web"]["PLATFORM"] is invalid' in messages[0].msg


def test_per_application_settings_are_left_to_push_notifications(firebase, dpn):
    dpn(CONFIG="push_notifications.conf.AppConfig", APPLICATIONS={}, WP_PRIVATE_KEY=None, APNS_TOPIC=None)
    assert ids() == []
    assert type(get_manager()).__name__ == "AppConfig"


@pytest.mark.parametrize(
    ("library", "service"), [("pywebpush", "webpush"), ("firebase_admin", "fcm"), ("aioapns", "apns")]
)
def test_a_missing_library(firebase, monkeypatch, library, service):
    # None in sys.modules is how Python marks a module as not importable.
    monkeypatch.setitem(sys.modules, library, None)
    messages = check_push()
    assert [m.id for m in messages] == ["transmissions.E033"]
    assert f"{service!r} needs {library}" in messages[0].msg


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"WP_PRIVATE_KEY": None}, ["transmissions.E034"]),
        ({"WP_PRIVATE_KEY": "bm90IGEga2V5"}, ["transmissions.E039"]),
        ({"WP_CLAIMS": None}, ["transmissions.E035"]),
        ({"WP_CLAIMS": {"sub": "push@example.com"}}, ["transmissions.E035"]),
        ({"APNS_TOPIC": None}, ["transmissions.E036"]),
        ({"APNS_AUTH_KEY_PATH": DELETE}, ["transmissions.E040"]),
        ({"WP_CLAIMS": DELETE, "APNS_TOPIC": DELETE}, ["transmissions.E036", "transmissions.E035"]),
    ],
)
def test_each_push_notifications_setting(firebase, dpn, changes, expected):
    dpn(**changes)
    assert ids() == expected


def test_a_key_file_and_a_certificate_are_accepted(firebase, dpn, tmp_path):
    from py_vapid import Vapid

    key_file = tmp_path / "vapid.pem"
    vapid = Vapid()
    vapid.generate_keys()
    vapid.save_key(str(key_file))
    dpn(WP_PRIVATE_KEY=key_file, APNS_AUTH_KEY_PATH=DELETE, APNS_CERTIFICATE="/etc/apns.pem")
    assert ids() == []


# Django 6.1's model checks ask the database whether it supports JSONField.
@pytest.mark.django_db
def test_the_check_command_really_fails(firebase, dpn):
    dpn(WP_PRIVATE_KEY=None)
    with pytest.raises(SystemCheckError, match=r"transmissions.E034.*WP_PRIVATE_KEY"):
        call_command("check")


def test_a_firebase_app_in_the_settings_is_enough(dpn):
    dpn(FIREBASE_APP=object())
    assert ids() == []
