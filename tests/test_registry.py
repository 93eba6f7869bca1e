"""registry.py: message classes by trigger name; autodiscovery of messages modules."""

import pytest

from tests.messages import DefaultMessage, RecordingChannel
from transmissions import message
from transmissions.exceptions import AlreadyRegistered, UnknownTriggerException
from transmissions.registry import registry


def test_autodiscovered_from_installed_apps_messages_module():
    assert "default" in registry
    assert "trigger-once" in list(registry)


def test_clash_is_refused_loudly():
    with pytest.raises(AlreadyRegistered, match="already used by tests.messages.DefaultMessage"):

        @message("default")
        class Other(RecordingChannel):
            pass

    assert registry.get("default") is DefaultMessage


def test_same_class_defined_again_replaces_it(cleanup):
    cleanup.append("again")

    def define():
        @message("again")
        class Again(RecordingChannel):
            pass

        return Again

    first, second = define(), define()
    assert registry.get("again") is second is not first


def test_unknown_trigger_lookup():
    with pytest.raises(UnknownTriggerException, match="nope"):
        registry.get("nope")
