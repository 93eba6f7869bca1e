"""db.dialect() keeps a connection's dialects only as long as the connection lives."""

import gc
import threading
import weakref

import pytest
from django.db import connections

from tests.utils import make_user
from transmissions import db
from transmissions.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_finished_threads_connection_is_freed_with_its_dialects():
    """A threaded server runs each request in a thread of its own, with a connection of its
    own: once the thread ends, its connection and the dialects built for it are freed (they
    were kept for ever, one connection per request)."""
    user = make_user()
    seen = {}

    def request():
        from tests.messages import DefaultMessage

        DefaultMessage.trigger(user)  # builds and caches the thread's dialect
        connection = connections["default"]
        seen["connection"] = weakref.ref(connection)
        seen["dialect"] = weakref.ref(db.dialect("default", Notification))
        assert db.dialect("default", Notification) is seen["dialect"]()  # cached
        connection.close()

    thread = threading.Thread(target=request)
    thread.start()
    thread.join()
    gc.collect()
    assert seen["dialect"]() is None
    assert seen["connection"]() is None
    assert Notification.objects.filter(target_user=user).count() == 1
