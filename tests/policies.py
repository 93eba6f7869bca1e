"""Policies the tests configure through TRANSMISSIONS_POLICIES."""

import datetime
import os
import time

from django.db.models import Q
from django.utils import timezone

from tests.models import User
from transmissions.policies import Hold, Policy
from transmissions.tracking import SuppressionPolicy

# What each policy saw: (policy name, [notification ids]) per prepare() call.
prepared: list[tuple[str, list[int]]] = []


class QuietForBob(Policy):
    """Defers bob's notifications by an hour, in one query per batch."""

    def prepare(self, batch):
        prepared.append(("quiet", [n.pk for n in batch]))
        ids = {n.target_user_id for n in batch}
        self.quiet = set(User.objects.filter(Q(pk__in=ids) & Q(username="bob")).values_list("pk", flat=True))

    def check(self, notification, message_cls):
        if notification.target_user_id in self.quiet:
            return Hold(
                "bob's quiet hours", until=timezone.now() + datetime.timedelta(hours=1), code="quiet-hours"
            )
        return None


class NothingForCarol(Policy):
    """Cancels carol's notifications."""

    def prepare(self, batch):
        prepared.append(("carol", [n.pk for n in batch]))

    def check(self, notification, message_cls):
        if notification.target_user.username in ("carol", "bob"):
            return Hold(
                f"{notification.target_user.username} opted out of {message_cls.trigger_name}",
                code="opted-out",
            )
        return None


# The file ClaimLog appends to (tests/test_concurrency.py).
CLAIM_LOG_ENV = "TRANSMISSIONS_TEST_CLAIM_LOG"


class ClaimLog(Policy):
    """Holds nothing: appends "<notification id> <time>" for each claimed notification when the
    policies first see its batch, after the claim and before any preference is read."""

    def prepare(self, batch):
        now = time.time()
        lines = "".join(f"{n.pk} {now:.6f}\n" for n in batch).encode()
        fd = os.open(os.environ[CLAIM_LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, lines)
        finally:
            os.close(fd)


class NotAPolicy:
    pass


class ComplaintsOnlyForMarketing(SuppressionPolicy):
    """A project's own rule: a complaint stops nothing but marketing; a bounce stops everything."""

    def check(self, notification, message_cls):
        hold = super().check(notification, message_cls)
        if hold is not None and hold.reason.endswith(": complained"):
            return None
        return hold


class EverythingSuppressed(SuppressionPolicy):
    """A subclass that decides in its own check(): the base's "nothing suppressed" must not
    let its batch through unasked."""

    def check(self, notification, message_cls):
        return Hold("everything is suppressed here", code="suppressed")
