"""preferences.py: the users' choices per category and channel kind, applied when a notification
is processed, in one query per batch; the preferences page; the checks of E070-E073, W070-W073."""

import datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone, translation

from tests import messages
from tests.messages import CommentEmail, CommentMemo, DefaultMessage, DigestMemo, SecurityMemo
from tests.models import User
from tests.utils import make_user, statements
from transmissions import categories, internals, message
from transmissions.checks import check_settings
from transmissions.models import DigestFrequency, Notification, Preference
from transmissions.preferences import (
    InvalidPreference,
    ModelPreferenceSource,
    PreferenceSource,
    matrix,
    set_frequency,
    set_preference,
    source,
)
from transmissions.registry import registry
from transmissions.worker import process_all_notifications, run

pytestmark = pytest.mark.django_db
S = Notification.Status


def ids(sent):
    return sorted(pk for _, pk in sent)


def test_an_opted_out_notification_is_cancelled_with_its_reason_and_the_others_are_sent():
    ada, bob = make_user(), make_user("bob")
    set_preference(bob, "comments", "memo", False)
    a, b = CommentMemo.trigger(ada), CommentMemo.trigger(bob)
    summary = run()
    assert messages.sent == [("comment-memo", a.pk)]
    b.refresh_from_db()
    assert (b.status, b.reason) == (S.CANCELLED, "opted-out: comments turned off on memo")
    assert b.datetime_processed is not None
    assert list(Notification.objects.held("opted-out")) == [b]
    assert (summary.counts["sent"], summary.counts["cancelled"]) == (1, 1)


def test_preferences_are_read_when_processed_not_when_triggered():
    ada = make_user()
    n = CommentMemo.trigger(ada)
    set_preference(ada, "comments", "memo", False)  # between trigger and processing
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.CANCELLED and messages.sent == []
    # Turned on again: the next one is sent.
    set_preference(ada, "comments", "memo", True)
    m = CommentMemo.trigger(ada)
    process_all_notifications()
    assert messages.sent == [("comment-memo", m.pk)]


def test_a_choice_is_per_category_and_per_channel_kind():
    ada = make_user()
    set_preference(ada, "comments", "email", False)
    memo, email = CommentMemo.trigger(ada), CommentEmail.trigger(ada)
    process_all_notifications()
    memo.refresh_from_db(), email.refresh_from_db()
    assert memo.status == S.SUCCESSFULLY_SENT
    assert (email.status, email.reason) == (
        S.CANCELLED,
        "opted-out: comments turned off on email",
    )


def test_required_messages_and_messages_without_category_ignore_opt_outs():
    ada = make_user()
    set_preference(ada, "comments", "memo", False)
    security, plain = SecurityMemo.trigger(ada), DefaultMessage.trigger(ada)
    process_all_notifications()
    assert ids(messages.sent) == sorted([security.pk, plain.pk])


def test_an_opt_in_category_is_sent_only_once_turned_on():
    # digest: email off by default; "memo" is not listed and gets the default, True.
    ada = make_user()
    memo = DigestMemo.trigger(ada)
    with override_settings(
        TRANSMISSIONS_CATEGORIES={"digest": {"label": "Digest", "channels": {"memo": False}}}
    ):
        process_all_notifications()
        memo.refresh_from_db()
        assert memo.reason == "opted-out: digest is opt-in on memo and not turned on"
        set_preference(ada, "digest", "memo", True)
        again = DigestMemo.trigger(ada)
        process_all_notifications()
    assert messages.sent == [("digest-memo", again.pk)]


def test_trigger_many_to_1000_users_with_300_opted_out_sends_700():
    User.objects.bulk_create(User(username=f"u{i:04}", email=f"u{i}@example.com") for i in range(1000))
    users = list(User.objects.order_by("pk"))
    # 300 turned comments off on memo, 100 turned them on (on is on), 600 never chose.
    choice = {0: False, 1: False, 2: False, 3: True}
    Preference.objects.bulk_create(
        Preference(user=user, category="comments", channel="memo", enabled=choice[i % 10])
        for i, user in enumerate(users)
        if i % 10 in choice
    )
    CommentMemo.trigger_many(users)
    summary = run(batch_size=100)
    assert summary.counts["sent"] == 700 and len(messages.sent) == 700
    assert Notification.objects.held("opted-out").count() == 300
    off = set(Preference.objects.filter(enabled=False).values_list("user_id", flat=True))
    held = set(Notification.objects.held("opted-out").values_list("target_user_id", flat=True))
    assert held == off


@pytest.mark.parametrize("size", [3, 40])
def test_preferences_cost_one_query_per_batch_whatever_its_size(size):
    users = [make_user(f"u{i}") for i in range(size)]
    for user in users[::2]:
        set_preference(user, "comments", "memo", False)
    CommentMemo.trigger_many(users)
    with CaptureQueriesContext(connection) as ctx:
        process_all_notifications()
    # recover, claim, the preferences, one UPDATE each for sent and cancelled (and the fetch
    # after the claim where the shortcuts are off or on MySQL; the batch's users where the
    # shortcuts are off: they are loaded on first read, and nothing reads them here).
    extra = 2 if connection.vendor == "mysql" else (0 if internals.enabled() else 1)
    users = 0 if internals.enabled() else 1
    found = statements(ctx)
    assert len(found) == 5 + extra + users, found
    assert sum("transmissions_preference" in sql for sql in found) == 1


def test_a_batch_without_categories_reads_no_preferences():
    DefaultMessage.trigger(make_user())
    with CaptureQueriesContext(connection) as ctx:
        process_all_notifications()
    assert not any("transmissions_preference" in sql for sql in statements(ctx))


def test_set_preference_refuses_what_does_not_exist_and_writes_nothing():
    ada = make_user()
    with pytest.raises(InvalidPreference, match="No category 'nope'"):
        set_preference(ada, "nope", "email", False)
    with pytest.raises(InvalidPreference, match="has no channel 'sms'"):
        set_preference(ada, "comments", "sms", False)
    with pytest.raises(InvalidPreference, match="True or False"):
        set_preference(ada, "comments", "email", "no")
    assert not Preference.objects.exists()


def test_set_preference_keeps_one_row_per_user_category_and_channel():
    ada = make_user()
    with time_machine.travel(timezone.now() - datetime.timedelta(days=1)):
        set_preference(ada, "comments", "email", False)
    set_preference(ada, "comments", "email", True)
    [row] = Preference.objects.all()
    assert (row.enabled, row.datetime_updated > timezone.now() - datetime.timedelta(minutes=1)) == (
        True,
        True,
    )
    assert str(row) == f"comments on email: on (user {ada.pk})"


def test_matrix_shows_every_category_and_its_channel_kinds_in_one_query():
    ada = make_user()
    set_preference(ada, "comments", "memo", False)
    with CaptureQueriesContext(connection) as ctx:
        rows = matrix(ada)
    # The choices, and the digest frequencies (comments has a digest on memo).
    assert len(ctx.captured_queries) == 2
    assert [c.label for c in rows[0].cells] == ["Email", "memo"]
    assert [(row.category.name, row.category.title) for row in rows] == [
        ("comments", "Comments"),
        ("digest", "Weekly digest"),
    ]
    cells = {(c.category, c.channel): (c.enabled, c.default, c.chosen) for row in rows for c in row.cells}
    assert cells == {
        ("comments", "email"): (True, True, False),
        ("comments", "memo"): (False, True, True),
        ("digest", "email"): (False, False, False),
        ("digest", "memo"): (True, True, False),
    }
    # Email first, then a project's own kinds by name.
    assert [c.channel for c in rows[0].cells] == ["email", "memo"]


class DictSource(PreferenceSource):
    """A project's own source (its profile model, say): here a dict, counted."""

    choices: dict = {}
    loads: list = []

    def load(self, user_ids, names, channels):
        self.loads.append(sorted(user_ids))
        return {k: v for k, v in self.choices.items() if k[0] in user_ids}

    def save(self, user, category, channel, enabled):
        self.choices[(user.pk, category, channel)] = enabled


@override_settings(TRANSMISSIONS_PREFERENCE_SOURCE="tests.test_preferences.DictSource")
def test_a_project_can_plug_in_its_own_source():
    ada, bob = make_user(), make_user("bob")
    DictSource.choices, DictSource.loads = {}, []
    assert isinstance(source(), DictSource)
    set_preference(bob, "comments", "memo", False)
    assert DictSource.choices == {(bob.pk, "comments", "memo"): False}
    a, _ = CommentMemo.trigger(ada), CommentMemo.trigger(bob)
    process_all_notifications()
    assert messages.sent == [("comment-memo", a.pk)]
    assert DictSource.loads == [sorted([ada.pk, bob.pk])]
    assert not Preference.objects.exists()


def test_the_base_source_must_be_implemented():
    with pytest.raises(NotImplementedError):
        PreferenceSource().load([1], ["comments"], ["email"])
    with pytest.raises(NotImplementedError):
        PreferenceSource().save(None, "comments", "email", True)
    assert isinstance(source(), ModelPreferenceSource)


# -- the page ------------------------------------------------------------------------------


def test_the_page_needs_a_login(client):
    response = client.get(reverse("transmissions:preferences"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_page_shows_the_matrix_and_saves_what_changed(client):
    ada = make_user()
    client.force_login(ada)
    url = reverse("transmissions:preferences")
    page = client.get(url).content.decode()
    assert 'name="comments:memo" value="on" checked' in page
    assert 'name="digest:email" value="on">' in page  # opt-in: unchecked
    assert "Replies to your posts." in page
    shown = ["comments:email", "comments:memo", "digest:email", "digest:memo"]
    # Turn comments off on memo, digest on by email; leave the rest.
    response = client.post(
        url, {"shown": shown, "comments:email": "on", "digest:email": "on", "digest:memo": "on"}
    )
    assert response.status_code == 302 and response["Location"] == url + "?saved=1"
    assert set(Preference.objects.values_list("category", "channel", "enabled")) == {
        ("comments", "memo", False),
        ("digest", "email", True),
    }
    assert "Your preferences are saved." in client.get(response["Location"]).content.decode()


def test_the_page_leaves_the_cells_its_form_did_not_show(client):
    ada = make_user()
    client.force_login(ada)
    client.post(reverse("transmissions:preferences"), {"shown": ["digest:email"]})
    assert list(Preference.objects.values_list("category", "channel", "enabled")) == []


def test_the_page_is_csrf_protected(client):
    from django.test import Client

    ada = make_user()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(ada)
    url = reverse("transmissions:preferences")
    assert strict.post(url, {"shown": ["comments:memo"]}).status_code == 403
    assert not Preference.objects.exists()
    token = strict.get(url).context["csrf_token"]
    assert strict.post(url, {"shown": ["comments:memo"], "csrfmiddlewaretoken": token}).status_code == 302
    assert Preference.objects.get().enabled is False


# -- checks ------------------------------------------------------------------------------


def ids_of(found):
    return [m.id for m in found if m.id.startswith(("transmissions.E07", "transmissions.W07"))]


@pytest.mark.parametrize(
    "value",
    [
        ["comments"],
        {"bad name": {}},
        {"comments": "Comments"},
        {"comments": {"lable": "typo"}},
        {"comments": {"channels": {"email": "yes"}}},
        {"comments": {"default": None}},
    ],
)
def test_a_malformed_categories_setting_is_e070(value):
    with override_settings(TRANSMISSIONS_CATEGORIES=value):
        assert ids_of(check_settings()) == ["transmissions.E070"]


def test_the_test_settings_pass_the_checks():
    assert ids_of(check_settings()) == []


def test_a_message_of_an_undeclared_category_is_e071(cleanup):
    @message("stray-category", category="strays")
    class Stray(messages.RecordingChannel):
        pass

    cleanup.append("stray-category")
    [error] = [m for m in check_settings() if m.id == "transmissions.E071"]
    assert "'stray-category' names the category 'strays'" in error.msg
    categories.register_category("strays", label="Strays", channels={"memo": False})
    try:
        assert ids_of(check_settings()) == []
        assert categories.get("strays").default_for("memo") is False
    finally:
        categories.unregister_category("strays")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"TRANSMISSIONS_PREFERENCE_SOURCE": "no.such.Source"}, ["transmissions.E072"]),
        ({"TRANSMISSIONS_PREFERENCE_SOURCE": "tests.policies.NotAPolicy"}, ["transmissions.E072"]),
        ({"TRANSMISSIONS_UNSUBSCRIBE_BASE_URL": "transmissions.test"}, ["transmissions.E073"]),
        ({"TRANSMISSIONS_UNSUBSCRIBE_BASE_URL": "https://x.test/?a=1"}, ["transmissions.E073"]),
        ({"TRANSMISSIONS_UNSUBSCRIBE_BASE_URL": "http://example.com"}, ["transmissions.W070"]),
        ({"TRANSMISSIONS_UNSUBSCRIBE_BASE_URL": "http://127.0.0.1:8000"}, []),
        ({"TRANSMISSIONS_UNSUBSCRIBE_BASE_URL": None}, ["transmissions.W071"]),
        ({"TRANSMISSIONS_POLICIES": ["transmissions.tracking.SuppressionPolicy"]}, ["transmissions.W073"]),
    ],
)
def test_preference_and_link_settings_are_checked(settings, expected):
    with override_settings(**settings):
        assert ids_of(check_settings()) == expected


@override_settings(ROOT_URLCONF="tests.urls_without_transmissions")
def test_links_without_the_urls_are_w072():
    assert ids_of(check_settings()) == ["transmissions.W072"]


def test_the_decorator_refuses_a_bad_category_or_required():
    from transmissions.exceptions import MessageRegistrationError

    with pytest.raises(MessageRegistrationError, match="category must be None or a slug"):
        message("bad-category", category="not a slug")(messages.RecordingChannel)
    with pytest.raises(MessageRegistrationError, match="required must be True or False"):
        message("bad-required", required="yes")(messages.RecordingChannel)
    assert "bad-category" not in registry and "bad-required" not in registry


# -- the digest frequency on the page --------------------------------------------------------

HOUR = datetime.timedelta(hours=1)
START = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)
FREQUENCY = 'name="comments:memo:frequency"'


def test_matrix_offers_a_frequency_only_where_a_category_has_a_digest():
    ada = make_user()
    set_frequency(ada, "comments", "memo", "daily")
    cells = {(c.category, c.channel): c for row in matrix(ada) for c in row.cells}
    digested = cells["comments", "memo"]  # tests.messages.DigestedCommentsMessage: hourly
    assert digested.digested and digested.digest_windows == (HOUR,) and digested.frequency == "daily"
    assert digested.frequency_choices == [
        ("", "Default (Hourly)"),
        ("instant", "Instantly"),
        ("hourly", "Hourly"),
        ("daily", "Daily"),
        ("weekly", "Weekly"),
    ]
    others = [cell for key, cell in cells.items() if key != ("comments", "memo")]
    assert others and not any(cell.digested or cell.frequency_choices for cell in others)


def test_matrix_shows_a_frequency_no_longer_offered_as_the_default(settings):
    ada = make_user()
    set_frequency(ada, "comments", "memo", "weekly")
    settings.TRANSMISSIONS_DIGEST_FREQUENCIES = {"often": 60, "daily": 86400}
    cell = next(c for row in matrix(ada) for c in row.cells if c.digested)
    assert cell.frequency is None
    assert cell.frequency_choices == [("", "Default"), ("often", "often"), ("daily", "Daily")]


def test_the_page_shows_the_frequency_only_where_a_digest_applies(client):
    ada = make_user()
    client.force_login(ada)
    page = client.get(reverse("transmissions:preferences")).content.decode()
    assert page.count("<select") == 1 and FREQUENCY in page
    assert '<option value="" selected>Default (Hourly)</option>' in page
    assert 'name="comments:email:frequency"' not in page and 'name="digest:memo:frequency"' not in page
    set_frequency(ada, "comments", "memo", "weekly")
    with translation.override("de"):
        page = client.get(reverse("transmissions:preferences")).content.decode()
    assert '<option value="weekly" selected>Wöchentlich</option>' in page
    assert "Standard (Stündlich)" in page and "memo: wie oft" in page


def test_the_page_saves_the_frequency_and_the_next_digest_uses_it(client):
    ada = make_user()
    client.force_login(ada)
    url = reverse("transmissions:preferences")
    shown = ["comments:email", "comments:memo"]
    on = {"comments:email": "on", "comments:memo": "on"}
    with time_machine.travel(START, tick=False):
        response = client.post(url, {"shown": shown, **on, "comments:memo:frequency": "daily"})
        assert response.status_code == 302 and response["Location"] == url + "?saved=1"
        assert list(DigestFrequency.objects.values_list("user_id", "category", "channel", "frequency")) == [
            (ada.pk, "comments", "memo", "daily")
        ]
        assert not Preference.objects.exists()  # the checkboxes did not change
        digest = messages.DigestedCommentsMessage.trigger(ada, data=1)
        assert digest.datetime_scheduled == START + 24 * HOUR
        assert messages.DigestedCommentsMessage.trigger(make_user("bob"), data=1).datetime_scheduled == (
            START + HOUR  # another user: the message's own hour
        )
    # Back to the default ("" ), and a form without the choice leaves it as it is.
    client.post(url, {"shown": shown, **on, "comments:memo:frequency": "instant"})
    assert DigestFrequency.objects.get().frequency == "instant"
    client.post(url, {"shown": shown, **on})
    assert DigestFrequency.objects.get().frequency == "instant"
    client.post(url, {"shown": shown, **on, "comments:memo:frequency": ""})
    assert not DigestFrequency.objects.exists()


@pytest.mark.parametrize("value", ["monthly", "Daily", "default"])
def test_the_page_refuses_a_frequency_not_offered_and_writes_nothing(client, value):
    ada = make_user()
    client.force_login(ada)
    # The checkbox change comes first in the form: it is not written either.
    response = client.post(
        reverse("transmissions:preferences"),
        {"shown": ["comments:email", "comments:memo"], "comments:memo:frequency": value},
    )
    assert response.status_code == 400
    assert "That digest frequency is not offered; nothing was saved." in response.content.decode()
    assert not Preference.objects.exists() and not DigestFrequency.objects.exists()


def test_a_frequency_field_for_a_cell_without_a_digest_is_ignored(client):
    ada = make_user()
    client.force_login(ada)
    client.post(
        reverse("transmissions:preferences"),
        {"shown": ["comments:email"], "comments:email": "on", "comments:email:frequency": "daily"},
    )
    assert not DigestFrequency.objects.exists()


class FrequencyOnlySource(ModelPreferenceSource):
    """A source that keeps frequencies its own way (load_frequency only): the matrix asks it."""

    chosen: dict = {}

    def load_frequency(self, user_id, category, channel):
        return self.chosen.get((user_id, category, channel))

    def save_frequency(self, user, category, channel, frequency):
        self.chosen[(user.pk, category, channel)] = frequency


@override_settings(TRANSMISSIONS_PREFERENCE_SOURCE="tests.test_preferences.FrequencyOnlySource")
def test_the_matrix_reads_frequencies_through_a_project_source(client):
    ada = make_user()
    FrequencyOnlySource.chosen = {}
    client.force_login(ada)
    client.post(
        reverse("transmissions:preferences"),
        {"shown": ["comments:memo"], "comments:memo": "on", "comments:memo:frequency": "hourly"},
    )
    assert FrequencyOnlySource.chosen == {(ada.pk, "comments", "memo"): "hourly"}
    assert not DigestFrequency.objects.exists()
    assert [c.frequency for row in matrix(ada) for c in row.cells if c.digested] == ["hourly"]
