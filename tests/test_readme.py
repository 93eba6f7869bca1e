"""The README's tour, pasted into a new project as a newcomer would paste it.

`django-admin startproject` and `startapp` make a fresh project in a temporary directory;
every block of the tour that names a file (``# mysite/settings.py``) is added to that file,
in the README's order; the tour's ``manage.py`` commands run as real processes. Then a
signed-in user opens the tour's views, ``process_notifications`` sends the email to the
console, and the inbox lists it. Nothing is edited between the README and the project: a
snippet that fails as pasted fails this test.
"""

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

# The project is its own SQLite database, whatever TRANSMISSIONS_TEST_DB says: the SQLite
# pass runs this, the server passes deselect it (conftest.py).
pytestmark = pytest.mark.own_database


def tour():
    """The tour's fenced blocks, in order, as (language, text)."""
    text = README.read_text()
    section = text.split("\n## A tour", 1)[1].split("\n## ", 1)[0]
    return [
        (lang, textwrap.dedent(body))
        for lang, body in re.findall(r"^ *```(\w+)\n(.*?)^ *```", section, re.M | re.S)
    ]


def manage_commands(block):
    """The project commands of a shell block (``django-admin ...``, ``python manage.py ...``)."""
    commands = []
    for line in block.splitlines():
        for command in line.split("#", 1)[0].split("&&"):
            words = shlex.split(command)
            if words[:1] == ["django-admin"]:
                commands.append([sys.executable, "-m", "django", *words[1:]])
            elif words[:2] == ["python", "manage.py"]:
                commands.append([sys.executable, "manage.py", *words[2:]])
    return commands


class Project:
    def __init__(self, root):
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
        # The tour must not lean on anything deprecated in the Django it runs on.
        self.env["PYTHONWARNINGS"] = "error::DeprecationWarning"
        self.env["PYTHONPATH"] = str(root)

    def run(self, command):
        result = subprocess.run(
            command, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"{shlex.join(command)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def shell(self, code):
        return self.run([sys.executable, "manage.py", "shell", "-c", textwrap.dedent(code)]).stdout

    def paste(self, block):
        first, _, rest = block.partition("\n")
        path = self.root / first.removeprefix("# ").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as file:
            file.write("\n" + rest)


def test_the_tour_pasted_into_a_new_project_sends_an_email_and_shows_the_inbox(tmp_path):
    project = Project(tmp_path)
    blocks = tour()
    process_commands = []
    for lang, block in blocks:
        if lang == "bash":
            for command in manage_commands(block):
                if "process_notifications" in command:
                    process_commands.append(command)  # once the views have triggered something
                else:
                    project.run(command)
        elif lang == "python":
            assert re.match(r"# [\w/]+\.py\n", block), f"a tour block names no file:\n{block}"
            project.paste(block)
    # The settings block comes before `migrate`: the table exists.
    assert (tmp_path / "db.sqlite3").exists()
    assert process_commands, "the tour never runs process_notifications"
    project.run([sys.executable, "manage.py", "check", "--fail-level", "WARNING"])

    requests = project.shell("""
        from django.contrib.auth import get_user_model
        from django.test import Client

        ada = get_user_model().objects.create_user("ada", "ada@example.com", "pw", first_name="Ada")
        browser = Client(HTTP_HOST="localhost")
        anonymous = browser.get("/confirm/")
        print("anonymous", anonymous.status_code, anonymous.headers.get("Location"))
        browser.force_login(ada)
        print("confirm", browser.get("/confirm/").status_code)
        print("welcome", browser.get("/welcome/").status_code)
    """)
    assert "anonymous 302 /admin/login/?next=/confirm/" in requests
    assert "confirm 200" in requests
    assert "welcome 200" in requests

    sent = "\n".join(project.run(command).stdout for command in process_commands)
    # The console backend printed the email; the command's table counts it.
    assert "Subject: Hello world!" in sent
    assert "To: ada@example.com" in sent
    assert "Hey, let me type a message later" in sent
    assert re.search(r"^\s*sent\s+1\b", sent, re.M), sent

    after = project.shell("""
        from django.contrib.auth import get_user_model
        from django.test import Client

        from transmissions.models import Notification

        ada = get_user_model().objects.get(username="ada")
        browser = Client(HTTP_HOST="localhost")
        browser.force_login(ada)
        print("me", browser.get("/me/").content.decode())
        inbox = browser.get("/notifications/")
        print("inbox", inbox.status_code, "Hello world!" in inbox.content.decode())
        sms = Notification.objects.get(trigger_name="welcome-sms")
        print("sms", sms.get_status_display(), sms.datetime_scheduled > sms.datetime_created)
    """)
    assert "me 1 new, 1 in all" in after
    assert "inbox 200 True" in after
    # Scheduled two days ahead: not due, still waiting.
    assert "sms created True" in after


def test_the_tours_celery_app_schedules_the_task_every_minute(tmp_path):
    project = Project(tmp_path)
    for lang, block in tour():
        if lang == "bash":
            for command in manage_commands(block):
                if "process_notifications" not in command:
                    project.run(command)
        else:
            project.paste(block)
    out = project.run([sys.executable, "-c", textwrap.dedent("""
        from mysite.celery import app

        app.loader.import_default_modules()
        entry = app.conf.beat_schedule["minutely_process_all_notifications"]
        schedule = entry["schedule"]
        print(entry["task"], entry["task"] in app.tasks, len(schedule.minute), len(schedule.hour))
    """)]).stdout  # fmt: skip
    assert out.split() == ["transmissions.tasks.process_all_notifications", "True", "60", "24"]


def test_the_reference_delivery_example_is_the_one_the_smtp_test_sends():
    reference = (README.parent / "docs" / "reference.md").read_text()
    example = reference.split("## Delivery guarantees", 1)[1]
    example = example[example.index('@message("order-shipped"') :].split("```", 1)[0].strip()
    assert example in (Path(__file__).parent / "notifications.py").read_text()
