"""The inbox and the admin in a real headless Chromium, against a live server of the example project.

Run by .ci/run (not by runtests.py, to keep the README's test command fast):

    TRANSMISSIONS_REQUIRE_BROWSER=1 python -m pytest example/tests --ds=example_project.settings

Needs Debian's ``chromium`` and ``chromium-driver`` and ``pip install -e ".[browser]"``.
Without them the tests skip, unless TRANSMISSIONS_REQUIRE_BROWSER=1 (CI), where they fail.
Screenshots, in ``artifacts/``: ``inbox.png`` (the example's layout), ``inbox-default.png``
(the templates as shipped, 1280 px wide), ``admin-changelist.png`` (1280 px wide),
``preferences.png`` and ``preferences-frequency.png`` (a daily digest chosen).
"""

import os
import shutil
from pathlib import Path

import django
import pytest

from community.messages import LikesUpdate, NewCommentEmail, NewCommentInApp, WelcomeEmail
from community.models import Post, User
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

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
    comment = NewCommentInApp.trigger(ada, trigger_user=bob, content=post)
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
    assert "bob commented on your post “Notes on queues”" in texts
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


# -- screenshots at 1280 px: the inbox as shipped, and the admin's changelist ---------------

WIDE = (1280, 900)

# The colour and background of an element, its background being the first ancestor's
# that is not transparent; and the contrast ratio of two CSS colours (WCAG 2).
COLORS_JS = """
const el = arguments[0];
let bg = el;
while (bg && getComputedStyle(bg).backgroundColor.match(/rgba\\(.*, 0\\)|transparent/)) {
  bg = bg.parentElement;
}
return [getComputedStyle(el).color, bg ? getComputedStyle(bg).backgroundColor : 'rgb(255, 255, 255)'];
"""


def contrast(css_a, css_b):
    def luminance(css):
        channels = [int(x) / 255 for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(css_a), luminance(css_b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def sign_in(browser, live_server, user):
    """Give the browser a session of ``user`` (no login page needed)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    browser.get(live_server.url + "/static/transmissions/transmissions.css")  # any page of the site
    browser.add_cookie({"name": "sessionid", "value": client.cookies["sessionid"].value, "path": "/"})


def shipped_templates_only(settings):
    """Render with the app's templates: the example's overrides (its base.html) left out."""
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": []}]


def test_default_inbox_is_styled_readable_and_keyboard_friendly(browser, live_server, outputs, settings):
    import datetime

    from django.utils import timezone
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    shipped_templates_only(settings)
    browser.set_window_size(*WIDE)
    ada = User.objects.create_user("ada", "ada@example.com", "pw", first_name="Ada")
    bob = User.objects.create_user("bob", "bob@example.com", "pw", first_name="Bob")
    post = Post.objects.create(author=ada, title="Notes on queues")
    ages = [datetime.timedelta(days=3), datetime.timedelta(hours=2), datetime.timedelta(minutes=5)]
    for age in ages:
        n = NewCommentInApp.trigger(ada, trigger_user=bob, content=post)
        process_all_notifications()
        Notification.objects.filter(pk=n.pk).update(datetime_created=timezone.now() - age)
    ada.notifications.mark_seen()  # those three were seen on an earlier visit
    WelcomeEmail.trigger(ada)
    LikesUpdate.trigger(ada, trigger_user=bob, content=post, data={"likes": 1})
    assert process_all_notifications() == 2

    sign_in(browser, live_server, ada)
    browser.get(live_server.url + "/notifications/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Notifications"
    # The shipped stylesheet is linked, loaded and applied.
    loaded = browser.execute_script(
        "return [...document.styleSheets].filter(s => s.href && s.href.endsWith("
        "'/static/transmissions/transmissions.css')).map(s => s.cssRules.length)"
    )
    assert len(loaded) == 1 and loaded[0] > 10
    items = browser.find_elements(By.CSS_SELECTOR, "ul.transmissions-list > li.transmissions-item")
    assert len(items) == 5
    style = browser.execute_script(
        "const s = getComputedStyle(arguments[0]); return [s.display, s.borderBottomStyle, s.listStyleType]",
        items[0],
    )
    assert style == ["flex", "solid", "none"]
    unseen = [item for item in items if "unseen" in item.get_attribute("class")]
    assert len(unseen) == 2
    # Ages: "just now" for the fresh ones, one unit for the others; each a <time datetime>.
    times = [item.find_element(By.CSS_SELECTOR, "time[datetime]").text for item in items]
    assert times == ["just now", "just now", "5 minutes ago", "2 hours ago", "3 days ago"]
    # Every text meets WCAG AA (4.5:1) on its background: links, ages, the "new" label.
    checked = []
    for item in items:
        for css in ("a", "time", ".transmissions-new"):
            for element in item.find_elements(By.CSS_SELECTOR, css):
                fg, bg = browser.execute_script(COLORS_JS, element)
                checked.append((css, round(contrast(fg, bg), 1)))
    assert len(checked) == 12 and all(ratio >= 4.5 for _, ratio in checked), checked
    # The first Tab reaches the first notification, and shows a focus ring.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused == items[0].find_element(By.TAG_NAME, "a")
    ring = browser.execute_script(
        "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, parseFloat(s.outlineWidth)]",
        focused,
    )
    assert ring[0] == "solid" and ring[1] >= 2
    width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1]
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "inbox-default.png"))


def test_admin_changelist_fits_1280_px_on_one_line_a_row(browser, live_server, outputs):
    from django.contrib.auth.hashers import make_password
    from selenium.webdriver.common.by import By

    browser.set_window_size(*WIDE)
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    names = ["ada", "bob", "a-rather-long-username-for-a-person", "grace"]
    unusable = make_password(None)
    users = User.objects.bulk_create(User(username=n, password=unusable) for n in names)
    long_title = "Getting started with a title much longer than any column could ever show in full"
    titles = ["Short", long_title, "Queues", "SMS"]
    posts = [Post.objects.create(author=u, title=t) for u, t in zip(users, titles, strict=True)]
    for i in range(30):
        user, post = users[i % 4], posts[(i + 1) % 4]
        NewCommentInApp.trigger(user, trigger_user=users[(i + 2) % 4], content=post)
        LikesUpdate.trigger(user, trigger_user=users[(i + 3) % 4], content=post, data={"likes": i})
    WelcomeEmail.trigger(users[0])
    process_all_notifications()
    Notification.objects.filter(trigger_name="likes-update").first().cancel()

    sign_in(browser, live_server, root)
    browser.get(live_server.url + "/admin/transmissions/notification/")
    assert browser.find_element(By.ID, "nav-sidebar").is_displayed()  # the narrow case
    assert browser.find_element(By.ID, "changelist-filter").is_displayed()
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == Notification.objects.count() > 10
    fit = browser.execute_script("""
        const table = document.getElementById('result_list'), box = table.closest('.results');
        const rows = [...table.tBodies[0].rows].map(r => r.getBoundingClientRect().height);
        return {
          table: table.getBoundingClientRect().right, box: box.getBoundingClientRect().right,
          boxScroll: box.scrollWidth - box.clientWidth,
          page: document.documentElement.scrollWidth, viewport: document.documentElement.clientWidth,
          rowHeights: [...new Set(rows.map(Math.round))],
          lineHeight: parseFloat(getComputedStyle(table.tBodies[0].rows[0].cells[1]).lineHeight) || 20,
        };""")  # fmt: skip
    assert fit["table"] <= fit["box"] + 0.5 and fit["boxScroll"] == 0, fit  # no sideways scrolling
    assert fit["page"] <= fit["viewport"], fit
    # One line a row: every row as tall as the others, and less than two lines tall.
    assert len(fit["rowHeights"]) == 1 and fit["rowHeights"][0] < 2 * fit["lineHeight"] + 16, fit
    # A title too long for its cell is cut with an ellipsis, and in full in the tooltip.
    long_links = browser.find_elements(By.CSS_SELECTOR, f'td.field-content_link a[title$="{long_title}"]')
    assert long_links
    cut = browser.execute_script(
        "const td = arguments[0].closest('td'); return [td.scrollWidth > td.clientWidth,"
        " getComputedStyle(td).textOverflow]",
        long_links[0],
    )
    assert cut == [True, "ellipsis"]
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#result_list thead th")][1:]
    assert headers == ["TRIGGER NAME", "USER", "STATUS", "CONTENT", "SCHEDULED"]
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "admin-changelist.png"))


# -- preferences and one-click unsubscribe (docs/preferences.md) ----------------------------


def an_hour_ago():
    """A comment an hour old: the hourly digest email it opens is due now."""
    from django.utils import timezone

    return timezone.now() - NewCommentEmail.digest.window


def sign_in_with_the_form(browser, live_server, username, password):
    from selenium.webdriver.common.by import By

    browser.get(live_server.url + "/accounts/login/?next=/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.ID, "sign-in").click()
    wait_for_url(browser, live_server.url + "/")


def test_turn_a_category_off_and_its_next_notification_does_not_arrive(browser, live_server, outputs):
    from django.core import mail
    from selenium.webdriver.common.by import By

    ada = User.objects.create_user("ada", "ada@example.com", "s3cret-pw", first_name="Ada")
    bob = User.objects.create_user("bob", "bob@example.com", "pw", first_name="Bob")
    post = Post.objects.create(author=ada, title="Notes on queues")
    sign_in_with_the_form(browser, live_server, "ada", "s3cret-pw")
    browser.find_element(By.ID, "preferences-link").click()
    wait_for_url(browser, live_server.url + "/notifications/preferences/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Notification preferences"
    comments = browser.find_element(By.NAME, "comments:email")
    reminders = browser.find_element(By.NAME, "reminders:email")
    assert comments.is_selected() and reminders.is_selected()  # both on by default
    comments.click()
    browser.find_element(By.CSS_SELECTOR, ".transmissions-preferences button[type=submit]").click()
    wait_for_url(browser, live_server.url + "/notifications/preferences/?saved=1")
    assert browser.find_element(By.CSS_SELECTOR, ".transmissions-saved").text == "Your preferences are saved."
    assert not browser.find_element(By.NAME, "comments:email").is_selected()
    assert browser.find_element(By.NAME, "reminders:email").is_selected()
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "preferences.png"))

    comment = NewCommentEmail.trigger(ada, trigger_user=bob, content=post, datetime_scheduled=an_hour_ago())
    welcome = WelcomeEmail.trigger(ada)  # no category: always sent
    assert process_all_notifications() == 2
    assert [m.subject for m in mail.outbox] == ["Welcome to the community!"]
    comment.refresh_from_db()
    assert comment.status == Notification.Status.CANCELLED
    assert comment.reason == "opted-out: comments turned off on email"
    welcome.refresh_from_db()
    assert welcome.status == Notification.Status.SUCCESSFULLY_SENT


def test_choose_a_daily_digest_and_the_next_comment_email_waits_a_day(browser, live_server):
    import datetime

    from django.utils import timezone
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ada = User.objects.create_user("ada", "ada@example.com", "s3cret-pw", first_name="Ada")
    post = Post.objects.create(author=ada, title="Notes on queues")
    sign_in_with_the_form(browser, live_server, "ada", "s3cret-pw")
    browser.get(live_server.url + "/notifications/preferences/")
    # The hourly comment email has the choice; the in-app entry (not a digest) has none.
    assert [s.get_attribute("name") for s in browser.find_elements(By.TAG_NAME, "select")] == [
        "comments:email:frequency"
    ]
    choice = Select(browser.find_element(By.NAME, "comments:email:frequency"))
    assert choice.first_selected_option.text == "Default (Hourly)"
    choice.select_by_value("daily")
    browser.find_element(By.CSS_SELECTOR, ".transmissions-preferences button[type=submit]").click()
    wait_for_url(browser, live_server.url + "/notifications/preferences/?saved=1")
    choice = Select(browser.find_element(By.NAME, "comments:email:frequency"))
    assert choice.first_selected_option.text == "Daily"
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "preferences-frequency.png"))

    when = timezone.now().replace(microsecond=0)
    digest = NewCommentEmail.trigger(ada, content=post, datetime_scheduled=when)
    assert digest.datetime_scheduled == when + datetime.timedelta(days=1)  # not the message's hour


def test_follow_the_unsubscribe_link_of_a_sent_email_and_confirm(browser, live_server, settings, tmp_path):
    from email import message_from_string, policy

    from selenium.webdriver.common.by import By

    from transmissions.models import Preference

    emails = tmp_path / "emails"
    filebased = "django.core.mail.backends.filebased.EmailBackend"
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": {"BACKEND": filebased, "OPTIONS": {"file_path": emails}}}
    else:
        settings.EMAIL_BACKEND, settings.EMAIL_FILE_PATH = filebased, emails
    settings.TRANSMISSIONS_UNSUBSCRIBE_BASE_URL = live_server.url
    ada = User.objects.create_user("ada", "ada@example.com", "pw", first_name="Ada")
    bob = User.objects.create_user("bob", "bob@example.com", "pw", first_name="Bob")
    post = Post.objects.create(author=ada, title="Notes on queues")
    NewCommentEmail.trigger(ada, trigger_user=bob, content=post, datetime_scheduled=an_hour_ago())
    assert process_all_notifications() == 1

    [path] = emails.glob("*.log")
    sent = message_from_string(path.read_text().split("\n" + "-" * 79 + "\n")[0], policy=policy.default)
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(sent["List-Unsubscribe"]).strip()[1:-1]
    assert link.startswith(live_server.url + "/notifications/unsubscribe/")
    assert f"No more of these: {link}" in sent.get_content()  # the body's link is the header's

    # Not signed in: the link alone is enough. Opening it only asks.
    browser.get(link)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Unsubscribe"
    question = browser.find_element(By.CSS_SELECTOR, ".transmissions-unsubscribe p").text
    assert question == "Stop getting “Comments on your posts” by email?"
    assert not Preference.objects.exists()
    browser.find_element(By.CSS_SELECTOR, ".transmissions-unsubscribe button[type=submit]").click()
    done = browser.find_element(By.CSS_SELECTOR, ".transmissions-done").text
    assert done == "You will no longer get “Comments on your posts” by email."
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "unsubscribe.png"))
    assert list(Preference.objects.values_list("user_id", "category", "channel", "enabled")) == [
        (ada.pk, "comments", "email", False)
    ]
    # The next comment email is held, not written.
    NewCommentEmail.trigger(ada, trigger_user=bob, content=post, datetime_scheduled=an_hour_ago())
    process_all_notifications()
    assert len(list(emails.glob("*.log"))) == 1
    assert Notification.objects.held("opted-out").count() == 1
