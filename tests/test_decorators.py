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


@pytest.mark.parametrize(
    ("number", "behavior"),
    [
        (0, TriggerBehavior.DELETE_AFTER_PROCESSING),
        (10, TriggerBehavior.DEFAULT),
        (20, TriggerBehavior.TRIGGER_ONCE),
        (25, TriggerBehavior.TRIGGER_ONCE_PER_CONTENT),
        (30, TriggerBehavior.SEND_ONCE),
        (35, TriggerBehavior.SEND_ONCE_PER_CONTENT),
        (40, TriggerBehavior.LAST_ONLY),
    ],
)
def test_behavior_from_0_2s_integer(cleanup, number, behavior):
    cleanup.append("by-integer")

    @message("by-integer", behavior=number)
    class ByInteger(RecordingChannel):
        pass

    assert ByInteger.behavior is behavior
    assert behavior.legacy_value == number


def test_the_models_trigger_behavior_is_the_same_enum():
    from transmissions import models

    assert models.TriggerBehavior is TriggerBehavior


def test_kwargs_is_the_decorators_extra_arguments(cleanup):
    cleanup.append("with-kwargs")

    @message("with-kwargs", subject="Hi", priority=3)
    class WithKwargs(RecordingChannel):
        def __init__(self, notification):
            super().__init__(notification)
            self.subject_read = self.kwargs.get("subject")

    assert WithKwargs.kwargs == {"subject": "Hi", "priority": 3}
    assert WithKwargs(None).subject_read == "Hi"
    from tests.messages import DefaultMessage

    assert DefaultMessage.kwargs == {}


@pytest.mark.parametrize("value", [42, True, -1])
def test_unknown_integer_behavior_is_an_error(value):
    with pytest.raises(ImproperlyConfigured, match=r"0\.2's integers 0, 10, 20, 25, 30, 35, 40"):
        message("x", behavior=value)
    assert "x" not in registry


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
