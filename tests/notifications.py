"""Messages for the multi-process and Celery tests, autodiscovered like ``messages``.

Their sends must be counted across processes, including ones killed with SIGKILL,
so each send appends one line to a file opened with O_APPEND (one ``write()`` per
line: lines from concurrent processes never interleave, and a line written before
a kill survives it). The file is named by the environment variable below.
"""

import datetime
import os
import time

from transmissions import TriggerBehavior, message
from transmissions.channels.base import BaseChannel
from transmissions.channels.email import DefaultEmailMessage
from transmissions.escalation import Escalation, Step

SEND_LOG_ENV = "TRANSMISSIONS_TEST_SEND_LOG"
# Seconds each send sleeps after it is recorded: a slow provider, so a kill lands mid-batch.
SEND_DELAY_ENV = "TRANSMISSIONS_TEST_SEND_DELAY"


class DurableRecordingChannel(BaseChannel):
    def log_extra(self):
        """What a subclass adds at the end of its line of the send log."""
        return ""

    def send(self):
        line = f"{self.notification.pk} {os.getpid()} {time.time():.6f}{self.log_extra()}\n".encode()
        fd = os.open(os.environ[SEND_LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        delay = float(os.environ.get(SEND_DELAY_ENV) or 0)
        if delay:
            time.sleep(delay)


@message("durable", behavior=TriggerBehavior.DEFAULT)
class DurableMessage(DurableRecordingChannel):
    pass


@message("durable-comment", category="comments", channel="memo")
class DurableComment(DurableRecordingChannel):
    """Of a category its users turn off while workers process (tests/test_concurrency.py)."""


@message("counted", behavior=TriggerBehavior.DEFAULT)
class CountedMessage(BaseChannel):
    """Keeps only a count, so a long run's memory does not grow with what it sent."""

    count = 0

    def send(self):
        type(self).count += 1


@message("durable-entry", channel="inapp")
class DurableEntry(DurableRecordingChannel):
    """The first step of ``durable_event`` (tests/test_concurrency.py): the entry a user sees."""


@message("durable-followup", channel="memo")
class DurableFollowup(DurableRecordingChannel):
    """Its second step: sent only while the entry is unseen."""


durable_event = Escalation(
    "durable-event", [Step(DurableEntry), Step(DurableFollowup, after=datetime.timedelta(minutes=15))]
)


@message("chain-entry", channel="inapp")
class ChainEntry(DurableRecordingChannel):
    """The steps of ``durable_chain`` (tests/test_concurrency.py: a worker killed on each step)."""


@message("chain-push", channel="mobile")
class ChainPush(DurableRecordingChannel):
    pass


@message("chain-email", channel="email")
class ChainEmail(DurableRecordingChannel):
    pass


durable_chain = Escalation(
    "durable-chain",
    [
        Step(ChainEntry),
        Step(ChainPush, after=datetime.timedelta(minutes=15)),
        Step(ChainEmail, after=datetime.timedelta(hours=1)),
    ],
)


class DurableDigestChannel(DurableRecordingChannel):
    """Logs "<digest pk> <pid> <time> <item ids, comma-separated>" per send."""

    def log_extra(self):
        return " " + ",".join(str(item.pk) for item in self.digest_items)


@message("durable-digest", digest=datetime.timedelta(hours=1))
class DurableDigest(DurableDigestChannel):
    """An hourly digest per user (tests/test_concurrency.py)."""


@message("durable-digest-quick", digest=datetime.timedelta(milliseconds=20))
class DurableQuickDigest(DurableDigestChannel):
    """A digest whose window ends while its triggers still race the workers."""


def read_digest_log(path):
    """Return ``(digest pk, [item ids])`` per recorded send of a digest, in order."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [line.split() for line in f if line.strip()]
    return [(int(row[0]), [int(i) for i in row[3].split(",")] if len(row) > 3 else []) for row in rows]


def read_send_log(path):
    """Return the notification ids in the send log, one per recorded send, in order."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [int(line.split()[0]) for line in f if line.strip()]


# docs/reference.md's "Delivery guarantees" example, verbatim (tests/test_readme_delivery.py):
# DefaultEmailMessage itself tells a 4xx (retried) from a 5xx (FAILED).
@message("order-shipped", subject="Your order shipped")
class OrderShipped(DefaultEmailMessage):
    body = "It is on its way."
