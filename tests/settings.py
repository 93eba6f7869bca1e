"""Settings for the test suite: SQLite by default, PostgreSQL or MariaDB/MySQL by env.

TRANSMISSIONS_TEST_DB=postgres|mysql picks the server (on 127.0.0.1, standard ports);
TRANSMISSIONS_TEST_DB_NAME names the test database, so parallel runs can't collide.
"""

import os

import django

SECRET_KEY = "tests-only"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

_DB = os.environ.get("TRANSMISSIONS_TEST_DB", "sqlite")
_NAME = os.environ.get("TRANSMISSIONS_TEST_DB_NAME", "test_transmissions")
if _DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "postgres"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "TEST": {"NAME": _NAME},
        }
    }
elif _DB == "mysql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": "test",
            "USER": "root",
            "HOST": "127.0.0.1",
            "PORT": "3306",
            "TEST": {"NAME": _NAME},
        }
    }
elif _DB == "sqlite":
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
else:
    raise RuntimeError(f"TRANSMISSIONS_TEST_DB={_DB!r}: use sqlite, postgres or mysql.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "push_notifications",
    "transmissions",
    "tests",
    # The django.tasks wake-up's worker (tests/test_django_tasks.py): DBTaskResult and db_worker.
    "django_tasks_db",
]
if django.VERSION < (6, 0):
    # Django 5.2 gets django.tasks from the backport, an app of its own.
    INSTALLED_APPS.append("django_tasks")
AUTH_USER_MODEL = "tests.User"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
# As in every project that has the admin: the admin and the inbox link their stylesheets.
STATIC_URL = "/static/"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
# Django 6.1 sends through MAILERS and deprecates EMAIL_BACKEND and the other EMAIL_*
# settings (the suite runs with deprecation warnings as errors); 5.2 and 6.0 know only those.
# Django's test runner swaps every mailer for locmem; "transactional" is the alias
# tests.messages.TransactionalEmail names.
if django.VERSION >= (6, 1):
    MAILERS = {
        "default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
        "transactional": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
    }
else:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
TRANSMISSIONS_SMS_BACKEND = "transmissions.channels.sms.LocmemSMSBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _vapid_private_key():
    # A fresh VAPID key per run, in the raw base64url form pywebpush accepts; the Web Push
    # tests read it back to verify the signature the test push service receives.
    from cryptography.hazmat.primitives.asymmetric import ec
    from py_vapid.utils import b64urlencode

    key = ec.generate_private_key(ec.SECP256R1())
    return b64urlencode(key.private_numbers().private_value.to_bytes(32, "big"))


# django-push-notifications reads this dict once, at import: tests change it in place.
PUSH_NOTIFICATIONS_SETTINGS = {
    "WP_PRIVATE_KEY": _vapid_private_key(),
    "WP_CLAIMS": {"sub": "mailto:push-tests@transmissions.invalid"},
    "WP_ERROR_TIMEOUT": 5,
    # APNs is never reached from the tests (no network); the checks only need these set.
    "APNS_TOPIC": "invalid.transmissions.tests",
    "APNS_AUTH_KEY_PATH": "/nonexistent/AuthKey_TESTS.p8",
    "APNS_AUTH_KEY_ID": "TESTKEYID0",
    "APNS_TEAM_ID": "TESTTEAM00",
}

# .ci/run runs the suite once with the shortcuts of transmissions/internals.py turned off.
TRANSMISSIONS_FAST_PATH = os.environ.get("TRANSMISSIONS_TEST_FAST_PATH", "1") != "0"

# Categories of tests/messages.py's "comment-*", "digest-*" and "security-*" messages
# (tests/test_preferences.py): comments are on by default, the digest is opt-in on email.
TRANSMISSIONS_CATEGORIES = {
    "comments": {
        "label": "Comments",
        "description": "Replies to your posts.",
        "channels": {"email": True, "memo": True},
    },
    "digest": {"label": "Weekly digest", "channels": {"email": False}},
}
TRANSMISSIONS_UNSUBSCRIBE_BASE_URL = "https://transmissions.test"
