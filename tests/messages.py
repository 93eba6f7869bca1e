"""Message classes used by the tests; autodiscovered like a project's own ``messages`` module."""

import datetime

from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from transmissions import TriggerBehavior, message
from transmissions.channels.base import BaseChannel
from transmissions.channels.email import DefaultEmailMessage
from transmissions.channels.inapp import InAppMessage
from transmissions.channels.sms import DefaultSMSMessage
from transmissions.escalation import FAILED, Escalation, Step
from transmissions.exceptions import ChannelSendException, TransientChannelError
from transmissions.throttle import Throttle

# What RecordingChannel sent: (trigger_name, notification pk), in order.
sent: list[tuple[str, int]] = []


class RecordingChannel(BaseChannel):
    def send(self):
        sent.append((self.trigger_name, self.notification.pk))


@message("hello-world-message", behavior=None, subject="Hello world!")
class MyEmailMessage(DefaultEmailMessage):
    def send(self):
        self.body = "Hey, let me type a message later"
        super().send()


@message("welcome-sms", behavior=TriggerBehavior.SEND_ONCE)
class WelcomeSMS(DefaultSMSMessage):
    def create_message(self):
        return f"Hey {self.target_user.first_name}, welcome to transmissions!"


@message("default", behavior=TriggerBehavior.DEFAULT)
class DefaultMessage(RecordingChannel):
    pass


@message("delete-after", behavior=TriggerBehavior.DELETE_AFTER_PROCESSING)
class DeleteAfterMessage(RecordingChannel):
    def check_validity(self):
        return not self.data.get("cancel")


@message("trigger-once", behavior=TriggerBehavior.TRIGGER_ONCE)
class TriggerOnceMessage(RecordingChannel):
    pass


@message("trigger-once-content", behavior=TriggerBehavior.TRIGGER_ONCE_PER_CONTENT)
class TriggerOncePerContentMessage(RecordingChannel):
    pass


@message("send-once", behavior=TriggerBehavior.SEND_ONCE)
class SendOnceMessage(RecordingChannel):
    def check_validity(self):
        return not self.data.get("cancel")


@message("send-once-content", behavior=TriggerBehavior.SEND_ONCE_PER_CONTENT)
class SendOncePerContentMessage(RecordingChannel):
    pass


@message("last-only", behavior=TriggerBehavior.LAST_ONLY)
class LastOnlyMessage(RecordingChannel):
    pass


@message("always-fails")
class FailingMessage(RecordingChannel):
    def send(self):
        raise ChannelSendException("provider said no")


@message("crashes")
class CrashingMessage(RecordingChannel):
    def send(self):
        raise RuntimeError("bug in the channel")


@message("transient")
class TransientMessage(RecordingChannel):
    def send(self):
        raise TransientChannelError("try later")


@message("invalid")
class InvalidMessage(RecordingChannel):
    def check_validity(self):
        return False


@message("validity-raises")
class ValidityRaisesMessage(RecordingChannel):
    def check_validity(self):
        raise ValueError("cannot tell")


@message("init-raises")
class InitRaisesMessage(RecordingChannel):
    def __init__(self, notification):
        raise ValueError("cannot build")


@message("no-validity")
class NoValidityMessage:
    """Not derived from BaseChannel, and without check_validity()."""

    def __init__(self, notification):
        self.notification = notification

    def send(self):
        sent.append(("no-validity", self.notification.pk))


@message("templated-email")
class TemplatedEmail(DefaultEmailMessage):
    subject_template_name = "tests/email/welcome_subject.txt"
    text_template_name = "tests/email/welcome.txt"
    html_template_name = "tests/email/welcome.html"
    from_email = "Acme <hello@acme.test>"
    reply_to = ["support@acme.test"]
    headers = {"X-Campaign": "welcome"}

    def get_context_data(self, **kwargs):
        return super().get_context_data(plan=self.data.get("plan", "free"), **kwargs)


@message("html-only-email", subject="Your receipt")
class HtmlOnlyEmail(DefaultEmailMessage):
    html_template_name = "tests/email/welcome.html"


class TransactionalEmail(DefaultEmailMessage):
    """An email through the "transactional" mailer (tests/settings.py's MAILERS).

    Not registered here: a named mailer is check error transmissions.E029 before Django
    6.1. Tests register it with ``registered_transactional`` (tests/test_email.py).
    """

    subject = "Your receipt"
    body = "Paid, thank you."


@message("comment-inapp", behavior=TriggerBehavior.TRIGGER_ONCE_PER_CONTENT)
class CommentInApp(InAppMessage):
    template_name = "tests/inapp/comment.html"

    def get_url(self):
        return f"/articles/{self.content.pk}/"


@message("badge-inapp")
class BadgeInApp(InAppMessage):
    def get_text(self):
        return f"You earned the {self.data['badge']} badge"


@message("hello-inapp")
class HelloInApp(InAppMessage):
    """Text from get_text(), with a user's own words in it: escaped when stored."""

    def get_text(self):
        return f"{self.trigger_user.first_name} says hello"


@message("bare-inapp")
class BareInApp(InAppMessage):
    """Neither template_name nor get_text(): a bug that ends FAILED."""


# The inbox's text (``{% notification_text %}``): a method, an attribute, or neither.
@message("inbox-method")
class InboxMethodMessage(RecordingChannel):
    def inbox_text(self):
        return f"About {self.content.title if self.content else 'nothing'} for {self.target_user.username}"


@message("inbox-raises")
class InboxRaisesMessage(RecordingChannel):
    def inbox_text(self):
        return f"Your {self.data['missing']} arrived"


@message("inbox-attribute")
class InboxAttributeMessage(RecordingChannel):
    inbox_text = "A plain attribute"


# What SlowMessage's send does besides recording (a test moves the clock there).
on_send = []


@message("slow", behavior=TriggerBehavior.DEFAULT)
class SlowMessage(RecordingChannel):
    """A send that takes time: each one calls the hooks in ``on_send``."""

    def send(self):
        super().send()
        for hook in on_send:
            hook()


@message("loses-database")
class LosesDatabaseMessage(RecordingChannel):
    """A channel whose own query finds the database connection gone."""

    def send(self):
        from django.db import OperationalError

        raise OperationalError("terminating connection due to administrator command")


# Categories (tests/settings.py's TRANSMISSIONS_CATEGORIES), on a project's own channel
# kind ("memo") and on email; the security notice is required.
@message("comment-memo", category="comments", channel="memo")
class CommentMemo(RecordingChannel):
    pass


@message("digest-memo", category="digest", channel="memo")
class DigestMemo(RecordingChannel):
    pass


@message("security-memo", category="comments", required=True, channel="memo")
class SecurityMemo(RecordingChannel):
    pass


@message("comment-email", category="comments", subject="New comment")
class CommentEmail(DefaultEmailMessage):
    body = "Someone replied."


@message("digest-email", category="digest", subject="Your digest")
class DigestEmail(DefaultEmailMessage):
    body = "This week."


# An escalation (tests/test_escalation.py): in-app, then push, SMS and email while unseen.
@message("reply-inapp")
class ReplyInApp(InAppMessage):
    def get_text(self):
        return "Someone replied to you"


# Stands in for push (a PushMessage needs a device): a channel kind of its own.
@message("reply-push", channel="mobile")
class ReplyPush(RecordingChannel):
    pass


@message("reply-sms", body="Someone replied to you")
class ReplySMS(DefaultSMSMessage):
    pass


@message("reply-email", subject="A reply", body="Someone replied to you")
class ReplyEmail(DefaultEmailMessage):
    pass


reply = Escalation(
    "reply",
    steps=[
        Step(ReplyInApp),
        Step(ReplyPush, after=datetime.timedelta(minutes=15)),
        Step(ReplySMS, after=datetime.timedelta(minutes=30)),
        Step(ReplyEmail, after=datetime.timedelta(hours=1)),
    ],
)


# Failover: the SMS only when the first channel did not deliver.
@message("alert-primary", channel="mobile")
class AlertPrimary(RecordingChannel):
    def send(self):
        if self.data.get("fail"):
            raise ChannelSendException("the provider refused it")
        super().send()


@message("alert-sms", body="Alert")
class AlertSMS(DefaultSMSMessage):
    pass


alert = Escalation("alert", steps=[Step(AlertPrimary), Step(AlertSMS, when=FAILED)])


@message("once-inapp")
class OnceInApp(InAppMessage):
    def get_text(self):
        return "Once"


@message("once-memo", channel="memo")
class OnceMemo(RecordingChannel):
    pass


once = Escalation(
    "once",
    steps=[Step(OnceInApp), Step(OnceMemo, after=datetime.timedelta(minutes=5))],
    behavior=TriggerBehavior.TRIGGER_ONCE,
)


@message("latest-inapp")
class LatestInApp(InAppMessage):
    def get_text(self):
        return "Latest"


@message("latest-memo", channel="memo")
class LatestMemo(RecordingChannel):
    pass


latest = Escalation(
    "latest",
    steps=[Step(LatestInApp), Step(LatestMemo, after=datetime.timedelta(minutes=5))],
    behavior=TriggerBehavior.LAST_ONLY,
)


# Rendered in the recipient's language and time zone (tests/test_recipients.py).
@message("locale-inapp")
class LocaleInApp(InAppMessage):
    def get_text(self):
        when = timezone.localtime(self.notification.datetime_scheduled)
        return f"{gettext('Notifications')} {when:%H:%M} {when.tzinfo}"


@message("locale-email", subject=gettext_lazy("Notifications"))
class LocaleEmail(DefaultEmailMessage):
    body = gettext_lazy("just now")


@message("throttled", throttle=(3, datetime.timedelta(hours=1)))
class ThrottledMessage(RecordingChannel):
    """At most 3 an hour per user; the excess is dropped (CANCELLED, with its reason)."""


@message("throttled-defer", throttle=Throttle(2, datetime.timedelta(hours=1), excess="defer"))
class ThrottledDeferMessage(RecordingChannel):
    """At most 2 an hour per user; the excess waits for the window's end."""


@message(
    "throttled-content",
    behavior=TriggerBehavior.TRIGGER_ONCE_PER_CONTENT,
    throttle=Throttle(1, datetime.timedelta(hours=1), per="content"),
)
class ThrottledPerContentMessage(RecordingChannel):
    """One an hour per user and content, and one pending per content."""


# What the digest messages below sent: (trigger_name, notification pk, [item data]), in order.
digests_sent: list[tuple[str, int, list]] = []


class DigestRecordingChannel(BaseChannel):
    def send(self):
        digests_sent.append((self.trigger_name, self.notification.pk, [i.data for i in self.digest_items]))


@message("digested", digest=datetime.timedelta(hours=1))
class DigestedMessage(DigestRecordingChannel):
    """One send an hour per user, with every trigger of the hour."""


@message("digested-content", digest=datetime.timedelta(hours=1), digest_key="content")
class DigestedPerContentMessage(DigestRecordingChannel):
    """One send an hour per user and content."""


@message(
    "digested-by-post", digest=datetime.timedelta(hours=1), digest_key=lambda content, data: data["post"]
)
class DigestedByPostMessage(DigestRecordingChannel):
    """One send an hour per user and ``data["post"]``."""


@message("digested-lookback", digest=datetime.timedelta(hours=1), digest_lookback=True)
class DigestedLookbackMessage(DigestRecordingChannel):
    """The first trigger after a quiet hour now, the rest an hour after it."""


@message("digested-comments", digest=datetime.timedelta(hours=1), category="comments", channel="memo")
class DigestedCommentsMessage(DigestRecordingChannel):
    """An hourly digest of a category: its recipients may choose another frequency."""
