"""The test outbox that projects use in their own tests."""

import pytest
from django.core import mail
from django.test import TestCase

from tests.messages import BadgeInApp, MyEmailMessage, TemplatedEmail, WelcomeSMS
from tests.utils import later, make_user
from transmissions.channels import base, sms
from transmissions.models import Notification
from transmissions.testing import CaptureMixin, assert_not_sent, assert_sent, capture, outbox, process_now

pytestmark = pytest.mark.django_db
S = Notification.Status


def test_capture_records_what_would_be_sent_and_sends_nothing():
    ada, bob = make_user(phone_number="+14155552671"), make_user("bob")
    with capture() as captured:
        sms_n = WelcomeSMS.trigger(ada)
        TemplatedEmail.trigger(bob, data={"plan": "pro"})
        BadgeInApp.trigger(ada, data={"badge": "gold"})
        assert process_now() == 3
    assert captured is outbox and len(outbox) == 3
    assert mail.outbox == [] and sms.outbox == []  # no backend saw anything
    [welcome] = assert_sent("welcome-sms", to=ada)
    assert welcome.payload.to == "+14155552671" and "welcome" in welcome.payload.body
    assert welcome.notification.pk == sms_n.pk and isinstance(welcome.channel, WelcomeSMS)
    [email] = assert_sent("templated-email", to=bob, count=1)
    assert email.payload.to == ["bob@example.com"] and "pro" in email.payload.body
    assert_not_sent("templated-email", to=ada)
    assert_not_sent("welcome-sms", to=bob)
    # The notifications end as they would for real.
    assert set(Notification.objects.values_list("status", flat=True)) == {S.SUCCESSFULLY_SENT}
    assert repr(welcome) == f"<SentMessage 'welcome-sms' to {ada!r}>"


def test_capture_ends_with_the_block():
    with capture():
        pass
    assert base.capture_hook is None
    MyEmailMessage.trigger(make_user())
    process_now()
    assert len(mail.outbox) == 1 and outbox == []


def test_capture_starts_empty_and_nests():
    with capture():
        outbox.append("left over")
        with capture() as inner:
            assert inner == []
        assert base.capture_hook is not None
    assert base.capture_hook is None


def test_assertions_say_what_was_sent():
    ada = make_user()
    with capture():
        MyEmailMessage.trigger(ada)
        process_now()
        with pytest.raises(
            AssertionError,
            match=r"'welcome-sms' to .* sent at least once, found 0\. Outbox: \[<SentMessage 'hello-world",
        ):
            assert_sent("welcome-sms", to=ada)
        with pytest.raises(AssertionError, match="sent 2 time"):
            assert_sent("hello-world-message", count=2)
        with pytest.raises(AssertionError, match="Expected nothing sent, found"):
            assert_not_sent(to=ada)
        assert_sent("hello-world-message", count=1)
        outbox.clear()
        assert_not_sent()


def test_a_future_notification_waits_and_a_cancelled_one_is_not_sent():
    ada = make_user(phone_number="")
    with capture():
        MyEmailMessage.trigger(ada, datetime_scheduled=later())
        WelcomeSMS.trigger(ada)  # no number: cancelled
        process_now()
    assert_not_sent()


def test_pytest_fixture(transmissions_outbox):
    ada = make_user()
    MyEmailMessage.trigger(ada)
    process_now()
    assert [m.trigger_name for m in transmissions_outbox] == ["hello-world-message"]
    assert transmissions_outbox.filter(to=ada) == list(transmissions_outbox)


class CaptureMixinTests(CaptureMixin, TestCase):
    def test_outbox_is_captured(self):
        MyEmailMessage.trigger(make_user())
        process_now()
        assert_sent("hello-world-message")
        self.assertEqual(len(self.outbox), 1)
        self.assertIsNotNone(base.capture_hook)
