"""The message classes the benchmark triggers and processes."""

import datetime

from transmissions import TriggerBehavior, message
from transmissions.channels.base import BaseChannel
from transmissions.channels.email import DefaultEmailMessage

SUBJECT = "Your weekly digest"
BODY = "Hello,\n\nthree new things happened on your projects this week.\n\n-- the team\n"


class NoopChannel(BaseChannel):
    """Sends nothing: what remains is the cost of the app itself."""

    def send(self) -> None:
        return None


@message("bench-noop")
class NoopMessage(NoopChannel):
    pass


@message("bench-send-once", behavior=TriggerBehavior.SEND_ONCE)
class SendOnceMessage(NoopChannel):
    pass


@message("bench-once-content", behavior=TriggerBehavior.TRIGGER_ONCE_PER_CONTENT)
class OncePerContentMessage(NoopChannel):
    pass


@message("bench-throttled", throttle=(3, datetime.timedelta(hours=1)))
class ThrottledMessage(NoopChannel):
    pass


@message("bench-digest", digest=datetime.timedelta(hours=1))
class DigestMessage(NoopChannel):
    """An hourly digest per user; its send reads the items, as a digest's email would."""

    def send(self) -> None:
        assert [item.data for item in self.digest_items]


@message("bench-last-only", behavior=TriggerBehavior.LAST_ONLY)
class LastOnlyMessage(NoopChannel):
    pass


@message("bench-email", subject=SUBJECT)
class DigestEmail(DefaultEmailMessage):
    body = BODY
