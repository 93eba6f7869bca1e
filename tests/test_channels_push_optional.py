"""The core imports and passes its checks without the push extra installed."""

import subprocess
import sys
import textwrap

# Run in a fresh interpreter where the push extra's packages cannot be imported.
SCRIPT = textwrap.dedent(
    """
    import sys

    EXTRA = ("push_notifications", "pywebpush", "firebase_admin", "aioapns", "py_vapid", "http_ece")
    # None in sys.modules: importing raises ModuleNotFoundError, find_spec() returns None.
    sys.modules.update(dict.fromkeys(EXTRA))

    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "transmissions"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
    )
    django.setup()

    import transmissions
    import transmissions.channels
    import transmissions.channels.email
    import transmissions.channels.sms
    import transmissions.models
    import transmissions.tasks
    from django.core.management import call_command

    call_command("check")  # passes, and prints that it found no issues
    loaded = sorted(m for m, module in sys.modules.items() if module and m.split(".")[0] in EXTRA)
    assert not loaded, loaded

    # Defining a push message needs no extra either; the checks then say what is missing.
    from transmissions import message
    from transmissions.channels.push import PushMessage
    from transmissions.channels.push_checks import check_push

    @message("optional-push", title="t")
    class OptionalPush(PushMessage):
        pass

    print(" ".join(m.id for m in check_push()))
    """
)


def test_core_works_without_the_push_extra():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "transmissions.E032"
