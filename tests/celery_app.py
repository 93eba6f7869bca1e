"""The test project's Celery app, as a host project's ``proj/celery.py`` would be.

The broker is Redis on 127.0.0.1, database 3 by default (TRANSMISSIONS_TEST_REDIS_URL),
so these tests keep to their own keys. Started as ``celery -A tests.celery_app worker``
(or ``beat``) by the integration tests, it sets Django up on the test database the
parent names (see ``tests/child.py``).
"""

import os

from celery import Celery
from celery.schedules import crontab

REDIS_URL_ENV = "TRANSMISSIONS_TEST_REDIS_URL"
REDIS_URL = os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/3")
# Seconds between the fast beat entry's runs: a test cannot wait for a minutely crontab.
BEAT_EVERY = float(os.environ.get("TRANSMISSIONS_TEST_BEAT_EVERY", "2"))
TASK = "transmissions.tasks.process_all_notifications"

app = Celery("tests")
app.conf.update(
    broker_url=REDIS_URL,
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    beat_schedule={
        # The README's entry, exactly.
        "process-notifications": {"task": TASK, "schedule": crontab(minute="*")},
        "process-notifications-fast": {"task": TASK, "schedule": BEAT_EVERY},
    },
)

if os.environ.get("TRANSMISSIONS_CHILD_DB_NAME"):
    # A worker or beat process started by a test: a fresh Django on the test database.
    from tests.child import configure_django

    configure_django()
    app.autodiscover_tasks(["transmissions"])
