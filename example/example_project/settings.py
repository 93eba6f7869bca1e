"""Settings of the example project: SQLite, no server to install.

EXAMPLE_DATA_DIR (default: this ``example/`` folder) holds the database, the emails
(``sent_emails/``) and the SMS log (``sent_sms.log``); pushes go to browsers' Web Push
subscriptions (the demo's, on 127.0.0.1). CELERY_BROKER_URL, when set
(e.g. ``redis://127.0.0.1:6379/0``), makes ``demo`` start a real Celery worker;
unset, tasks run in-process (``CELERY_TASK_ALWAYS_EAGER``).
"""

import os
from pathlib import Path

import django
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("EXAMPLE_DATA_DIR") or BASE_DIR)

SECRET_KEY = "example-project-only-not-a-secret"  # a demo on loopback only
DEBUG = os.environ.get("EXAMPLE_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # The ESP's webhooks (demo: a stand-in for Postmark posts them; see community/demo/webhooks.py).
    "anymail",
    # Web Push to the users' browsers (the reply escalation's push step; docs/channels-push.md).
    "push_notifications",
    "community",
]
# As the README says:
INSTALLED_APPS += ("transmissions",)

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "example_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project templates first: they override transmissions/base.html.
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
        "OPTIONS": {
            # WAL lets the inbox read while a worker writes; IMMEDIATE takes the write
            # lock up front, so two writers queue instead of failing with "locked".
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "community.User"
LOGIN_REDIRECT_URL = "transmissions:inbox"
LOGOUT_REDIRECT_URL = "home"

USE_TZ = True
TIME_ZONE = "UTC"
# Two languages: each notification is written in its recipient's (User.language), and the
# pages follow the browser's (LocaleMiddleware).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "community" / "locale"]
TRANSMISSIONS_RECIPIENT_LANGUAGE = "language"
# Each user's time zone (User.timezone; empty: TIME_ZONE), and quiet hours 22:00-07:00 in it
# for those who set one: nothing but in-app entries and urgent messages is sent in their night.
TRANSMISSIONS_RECIPIENT_TIMEZONE = "timezone"
TRANSMISSIONS_QUIET_HOURS_SOURCE = "community.models.quiet_hours_of"
STATIC_URL = "static/"

# Emails are files you can open: one per message in sent_emails/ (read by `demo`).
EMAILS_DIR = DATA_DIR / "sent_emails"
if django.VERSION >= (6, 1):  # MAILERS replaces EMAIL_BACKEND and EMAIL_FILE_PATH
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": EMAILS_DIR},
        }
    }
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = EMAILS_DIR
DEFAULT_FROM_EMAIL = "community@example.com"
# django-anymail's webhook views take HTTP basic auth with this user:password (a demo value).
ANYMAIL = {"WEBHOOK_SECRET": "demo:demo-webhook-secret"}
# SMS lines are appended to sent_sms.log.
TRANSMISSIONS_SMS_BACKEND = "community.sms.FileSMSBackend"
SMS_FILE_PATH = DATA_DIR / "sent_sms.log"

# Push: Web Push only (no FCM/APNs app here), signed with this VAPID key: a demo value, like
# SECRET_KEY (`vapid --gen` makes a real one). A browser subscribes with the matching public
# key; the demo's browsers and their push service run on 127.0.0.1 (community/demo/push.py).
PUSH_NOTIFICATIONS_SETTINGS = {
    "WP_PRIVATE_KEY": "YHnnqqiWBYLgYFJhL56YoKWslH7liNBIbo5pvYi60k0",
    "WP_CLAIMS": {"sub": "mailto:community@example.com"},
    "WP_ERROR_TIMEOUT": 10,
}
TRANSMISSIONS_PUSH_SERVICES = ["webpush"]

# What users can turn off (docs/preferences.md): the preferences page is
# /notifications/preferences/, and every email of a category has a one-click unsubscribe
# link to this site (runserver's address; in production, your https root).
TRANSMISSIONS_CATEGORIES = {
    "comments": {
        "label": "Comments on your posts",
        "description": "Someone commented on something you wrote.",
        "channels": {"email": True},
    },
    "reminders": {
        "label": "Draft reminders",
        "description": "A nudge when a draft of yours waits to be published.",
        "channels": {"email": True},
    },
}
TRANSMISSIONS_UNSUBSCRIBE_BASE_URL = os.environ.get("EXAMPLE_BASE_URL", "http://127.0.0.1:8000")

# Celery, as in production; the beat entry is the README's.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# Our own queue, so that no other project's worker on the same broker takes our tasks.
CELERY_TASK_DEFAULT_QUEUE = "transmissions-example"
CELERY_BEAT_SCHEDULE = {
    "minutely_process_all_notifications": {
        "task": "transmissions.tasks.process_all_notifications",
        "schedule": crontab(minute="*"),
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # The demo fails a few SMS on purpose; their tracebacks would bury the summary.
    "loggers": {"transmissions": {"handlers": ["console"], "level": "CRITICAL", "propagate": False}},
}
