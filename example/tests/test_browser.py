"""The inbox in a real headless Chromium, against a live server of the example project.

Run by .ci/run (not by runtests.py, to keep the README's test command fast):

    TRANSMISSIONS_REQUIRE_BROWSER=1 python -m pytest example/tests/test_browser.py \
        --ds=example_project.settings

Needs Debian's ``chromium`` and ``chromium-driver`` and ``pip install -e ".[browser]"``.
Without them the test skips, unless TRANSMISSIONS_REQUIRE_BROWSER=1 (CI), where it fails.
A screenshot of the inbox is saved to ``artifacts/inbox.png``.
"""

import os
import shutil
from pathlib import Path

import django
import pytest

from community.messages import LikesUpdate, NewCommentEmail, WelcomeEmail
from community.models import Post, User
from transmissions.models import Notification
from transmissions.processing import process_all_notifications

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
REQUIRED = os.environ.get("TRANSMISSIONS_REQUIRE_BROWSER") == "1"


def _missing():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[browser]')")
    return missing


@pytest.fixture
def browser(tmp_path):
    missing = _missing()
    if missing:
        message = f"browser test needs: {', '.join(missing)}"
        if REQUIRED:
            pytest.fail(message + " (TRANSMISSIONS_REQUIRE_BROWSER=1)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1100,900", f"--user-data-dir={tmp_path / 'profile'}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture
def outputs(settings, tmp_path):
    locmem = "django.core.mail.backends.locmem.EmailBackend"
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": {"BACKEND": locmem}}
    else:
        settings.EMAIL_BACKEND = locmem
    settings.SMS_FILE_PATH = tmp_path / "sms.log"


def wait_for_url(driver, url):
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(expected_conditions.url_to_be(url))


def badge(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, "a.transmissions-badge")


def test_sign_in_see_badge_open_inbox_follow_notification(browser, live_server, outputs):
    from selenium.webdriver.common.by import By

    ada = User.objects.create_user("ada", "ada@example.com", "s3cret-pw", first_name="Ada")
    bob = User.objects.create_user("bob", "bob@example.com", "pw", first_name="Bob")
    post = Post.objects.create(author=ada, title="Notes on queues")
    WelcomeEmail.trigger(ada)
    comment = NewCommentEmail.trigger(ada, trigger_user=bob, content=post)
    LikesUpdate.trigger(ada, trigger_user=bob, content=post, data={"likes": 3})
    WelcomeEmail.trigger(bob)  # someone else's: never in ada's inbox
    assert process_all_notifications() == 4

    browser.get(live_server.url + "/accounts/login/?next=/")
    browser.find_element(By.NAME, "username").send_keys("ada")
    browser.find_element(By.NAME, "password").send_keys("s3cret-pw")
    browser.find_element(By.ID, "sign-in").click()
    wait_for_url(browser, live_server.url + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Latest posts"
    assert badge(browser).get_attribute("data-unseen") == "3"
    assert badge(browser).text == "Notifications 3"

    badge(browser).click()
    wait_for_url(browser, live_server.url + "/notifications/")
    assert badge(browser).get_attribute("data-unseen") == "0"
    assert badge(browser).text == "Notifications"
    items = browser.find_elements(By.CSS_SELECTOR, "li.transmissions-item")
    assert len(items) == 3
    assert all("unseen" in item.get_attribute("class") for item in items)
    texts = [item.find_element(By.TAG_NAME, "a").text for item in items]
    assert texts[0].startswith("Your posts now have 3 likes")  # newest first
    assert "Bob commented on your post “Notes on queues”" in texts
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "inbox.png"))
    assert ada.notifications.unseen_count() == 0

    browser.find_element(By.CSS_SELECTOR, f'li[data-uuid="{comment.uuid}"] a').click()
    wait_for_url(browser, live_server.url + post.get_absolute_url())
    assert browser.find_element(By.TAG_NAME, "h1").text == "Notes on queues"
    comment.refresh_from_db()
    assert comment.datetime_consumed is not None
    assert Notification.objects.filter(datetime_consumed__isnull=False).count() == 1

    browser.get(live_server.url + "/notifications/")
    assert browser.find_elements(By.CSS_SELECTOR, "li.transmissions-item.unseen") == []
