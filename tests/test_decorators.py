"""decorators.py: @message validates, registers and returns the class."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.messages import RecordingChannel, WelcomeSMS
from transmissions import TriggerBehavior, message
from transmissions.registry import registry


def test_decorator_sets_attributes_and_returns_the_class():
    assert WelcomeSMS.trigger_name == "welcome-sms"
    assert WelcomeSMS.behavior is TriggerBehavior.SEND_ONCE
    assert registry.get("welcome-sms") is WelcomeSMS
    from tests.messages import MyEmailMessage

    assert MyEmailMessage.subject == "Hello world!"
    assert MyEmailMessage.message_attrs == {"subject": "Hello world!"}
    assert MyEmailMessage.behavior is TriggerBehavior.DEFAULT


def test_behavior_from_value(cleanup):
    cleanup.append("by-value")

    @message("by-value", behavior="send_once")
    class ByValue(RecordingChannel):
        pass

    assert ByValue.behavior is TriggerBehavior.SEND_ONCE


def test_unknown_behavior_is_an_error_at_decoration_time():
    with pytest.raises(ImproperlyConfigured, match="Unknown trigger behavior 42"):
        message("x", behavior=42)
    assert "x" not in registry


@pytest.mark.parametrize("name", ["has space", "", "a/b", None, "x" * 101])
def test_bad_trigger_names(name):
    with pytest.raises(ImproperlyConfigured, match="Trigger name"):
        message(name)


def test_class_without_send_is_refused():
    with pytest.raises(ImproperlyConfigured, match="no send"):

        @message("no-send")
        class NoSend:
            pass


def test_only_classes():
    with pytest.raises(ImproperlyConfigured, match="decorates classes"):
        message("fn")(lambda n: None)


@pytest.mark.django_db
def test_plain_class_gets_trigger():
    from tests.messages import NoValidityMessage
    from tests.utils import make_user

    n = NoValidityMessage.trigger(make_user())
    assert n.trigger_name == "no-validity"
