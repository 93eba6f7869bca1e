"""The portable dialect (``transmissions.db.base.Dialect``, the ORM only) on this pass's database.

MySQL/MariaDB run it for real; here every vendor is made to take it, so that the path a
database without RETURNING (or a future vendor) gets is proved on every pass.
"""

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from tests import messages
from tests.messages import DefaultMessage, LastOnlyMessage, SendOnceMessage, TriggerOnceMessage
from tests.utils import make_user, statements
from transmissions import db, internals
from transmissions.db.base import Dialect
from transmissions.exceptions import DuplicateNotification
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


@pytest.fixture(autouse=True)
def portable(monkeypatch):
    monkeypatch.setitem(db._DIALECTS, connection.vendor, Dialect)
    kept = internals.kept_on(connections["default"])  # the dialects built for the connection
    kept.clear()
    yield
    kept.clear()


def test_the_portable_dialect_is_in_use():
    assert type(db.dialect("default", Notification)) is Dialect


def test_behaviours_refuse_through_save():
    ada = make_user()
    assert TriggerOnceMessage.trigger(ada) is not None
    assert TriggerOnceMessage.trigger(ada) is None
    with pytest.raises(DuplicateNotification):
        TriggerOnceMessage.trigger(ada, silent=False)
    first = LastOnlyMessage.trigger(ada)
    second = LastOnlyMessage.trigger(ada)
    assert Notification.objects.get(pk=first.pk).status == S.CANCELLED
    assert Notification.objects.get(pk=second.pk).status == S.CREATED
    assert Notification.objects.filter(trigger_name="trigger-once").count() == 1


def test_trigger_many_and_processing():
    users = [make_user(f"p{i}") for i in range(4)]
    SendOnceMessage.trigger(users[0])
    made = SendOnceMessage.trigger_many([*users, users[1]])
    assert [n.target_user for n in made] == users[1:]
    assert all(n.pk and not n._state.adding for n in made)
    assert process_all_notifications() == 4
    assert sorted(pk for _, pk in messages.sent) == sorted(
        Notification.objects.filter(trigger_name="send-once").values_list("pk", flat=True)
    )
    assert set(Notification.objects.values_list("status", flat=True)) == {S.SUCCESSFULLY_SENT}
    # A sent SEND_ONCE row keeps blocking, through the portable outcome UPDATE too.
    assert SendOnceMessage.trigger(users[2]) is None


def test_claim_is_select_update_select():
    ada = make_user()
    for _ in range(3):
        DefaultMessage.trigger(ada)
    with CaptureQueriesContext(connection) as ctx:
        batch = Notification.objects.claim(10)
    assert len(batch) == 3 and {n.status for n in batch} == {S.PROCESSING}
    work = statements(ctx)
    # due ids, the UPDATE of those ids, the rows; the users (one query) on first read, or
    # with the claim when the shortcuts are off.
    users = [] if internals.enabled() else ["SELECT"]
    assert [q.split()[0].upper() for q in work] == ["SELECT", "UPDATE", "SELECT", *users], work
    with CaptureQueriesContext(connection) as ctx:
        assert {n.target_user for n in batch} == {ada}
    assert len(statements(ctx)) == (1 if internals.enabled() else 0)
