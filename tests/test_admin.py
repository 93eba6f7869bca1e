import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.text import Truncator

from tests.messages import DefaultMessage, MyEmailMessage, SendOnceMessage, reply
from tests.models import Article, Document, User
from tests.utils import later, make_user, processed
from transmissions.models import Notification, Suppression
from transmissions.tracking import Event, record
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


@pytest.fixture
def admin_client(client):
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    return client


def test_changelist_filters_and_search(admin_client):
    user = make_user("grace")
    DefaultMessage.trigger(user, data={"shown": True})
    url = reverse("admin:transmissions_notification_changelist")
    for query in ("", "?status__exact=0", "?q=grace", "?trigger_name=default"):
        response = admin_client.get(url + query)
        assert response.status_code == 200
        assert "grace" in response.content.decode()
    assert "grace" not in admin_client.get(url + "?q=nobody").content.decode()


def test_change_page_shows_data(admin_client):
    n = DefaultMessage.trigger(make_user(), data={"shown": True})
    response = admin_client.get(reverse("admin:transmissions_notification_change", args=[n.pk]))
    assert "{&#x27;shown&#x27;: True}" in response.content.decode()
    Notification.objects.filter(pk=n.pk).update(data_bytes=b"junk")
    response = admin_client.get(reverse("admin:transmissions_notification_change", args=[n.pk]))
    assert "unreadable" in response.content.decode()


def test_cancel_and_resend_actions(admin_client):
    user = make_user()
    waiting = DefaultMessage.trigger(user)
    url = reverse("admin:transmissions_notification_changelist")
    admin_client.post(url, {"action": "cancel", "_selected_action": [waiting.pk]})
    assert Notification.objects.get(pk=waiting.pk).status == S.CANCELLED
    again = admin_client.post(url, {"action": "resend", "_selected_action": [waiting.pk]}, follow=True)
    assert "1 notification queued again.</li>" in again.content.decode()
    admin_client.post(url, {"action": "cancel", "_selected_action": [waiting.pk]})
    blocked = SendOnceMessage.trigger(user)
    Notification.objects.filter(pk=blocked.pk).update(status=S.FAILED, dedup_key=None)
    SendOnceMessage.trigger(user)
    response = admin_client.post(
        url, {"action": "resend", "_selected_action": [waiting.pk, blocked.pk]}, follow=True
    )
    html = response.content.decode()
    assert "1 notification queued again. 1 skipped: its behaviour still blocks it." in html
    assert Notification.objects.get(pk=waiting.pk).status == S.CREATED
    assert Notification.objects.get(pk=blocked.pk).status == S.FAILED


def test_no_add_in_admin(admin_client):
    assert admin_client.get(reverse("admin:transmissions_notification_add")).status_code == 403


def change_url(n):
    return reverse("admin:transmissions_notification_change", args=[n.pk])


def edit(admin_client, n, **changes):
    """POST the change form as a browser would, with ``changes`` applied."""
    when = n.datetime_scheduled
    data = {
        "trigger_name": n.trigger_name,
        "target_user": n.target_user_id,
        "trigger_user": n.trigger_user_id or "",
        "content_type": n.content_type_id or "",
        "object_id": n.object_id or "",
        "datetime_scheduled_0": when.strftime("%Y-%m-%d"),
        "datetime_scheduled_1": when.strftime("%H:%M:%S"),
        "datetime_seen_0": "",
        "datetime_seen_1": "",
        "datetime_consumed_0": "",
        "datetime_consumed_1": "",
        "_save": "Save",
        **changes,
    }
    return admin_client.post(change_url(n), data)


def test_an_edit_in_the_admin_cannot_move_a_send_once_row_to_another_user(admin_client):
    bob, carol = make_user("bob"), make_user("carol")
    pending = SendOnceMessage.trigger(bob)
    SendOnceMessage.trigger(carol)
    before = Notification.objects.values().get(pk=pending.pk)

    response = edit(admin_client, pending, target_user=carol.pk, trigger_name="default")

    assert response.status_code == 403
    assert Notification.objects.values().get(pk=pending.pk) == before
    # bob's row still blocks bob, carol still has exactly one pending row.
    assert SendOnceMessage.trigger(bob) is None
    assert Notification.objects.filter(target_user=carol, status=S.CREATED).count() == 1


def test_every_row_is_read_only_in_the_admin(admin_client):
    pending = DefaultMessage.trigger(make_user("bob"))
    sent = DefaultMessage.trigger(make_user("carol"))
    Notification.objects.filter(pk=sent.pk).update(status=S.SUCCESSFULLY_SENT, datetime_processed=later())
    for n in (pending, sent):
        html = admin_client.get(change_url(n)).content.decode()
        assert "View notification" in html
        for field in ("trigger_name", "target_user", "trigger_user", "content_type", "object_id", "_save"):
            assert f'name="{field}"' not in html
        assert 'name="datetime_scheduled_0"' not in html
        assert edit(admin_client, n, datetime_scheduled_0="2001-01-01").status_code == 403
    assert Notification.objects.get(pk=pending.pk).datetime_scheduled.year != 2001


def test_staff_who_may_only_view_cannot_run_the_actions(client):
    from django.contrib.auth.models import Permission

    viewer = User.objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(viewer)
    waiting = DefaultMessage.trigger(make_user())
    url = reverse("admin:transmissions_notification_changelist")
    html = client.get(url).content.decode()
    assert 'value="cancel"' not in html and 'value="resend"' not in html
    client.post(url, {"action": "cancel", "_selected_action": [waiting.pk]})
    assert Notification.objects.get(pk=waiting.pk).status == S.CREATED


def test_change_page_names_the_user_by_username(admin_client):
    n = DefaultMessage.trigger(make_user("bob", email="robert@example.com"))
    html = admin_client.get(change_url(n)).content.decode()
    assert f"default to bob ({n.get_status_display()})" in html
    missing = admin_client.get(reverse("admin:transmissions_notification_change", args=[n.pk + 1000]))
    assert missing.status_code == 302  # Django's "doesn't exist" redirect, not a crash


def test_changelist_links_content_to_its_admin_page(admin_client):
    article = Article.objects.create(title="Queues explained")
    document = Document.objects.create(title="A document")
    user = make_user("bob")
    with_admin = DefaultMessage.trigger(user, content=article)
    DefaultMessage.trigger(user, content=document)
    gone = DefaultMessage.trigger(user, content=Article.objects.create(title="Soon deleted"))
    Article.objects.filter(title="Soon deleted").delete()
    html = admin_client.get(reverse("admin:transmissions_notification_changelist")).content.decode()
    article_url = reverse("admin:tests_article_change", args=[article.pk])
    title = f"article #{article.pk}: {article}"
    assert f'<a href="{article_url}" title="{title}">{article}</a>' in html
    # Document has no admin page: its name, no link.
    short = Truncator(str(document)).chars(40)
    assert f'<span title="document #{document.pk}: {document}">{short}</span>' in html
    assert f"article #{gone.object_id} (deleted)" in html
    # The change page shows the same link, not a content-type dropdown and an id.
    html = admin_client.get(change_url(with_admin)).content.decode()
    assert f'<a href="{article_url}" title="{title}">{article}</a>' in html
    assert 'name="content_type"' not in html and 'name="object_id"' not in html


def test_changelist_costs_the_same_queries_for_one_row_or_many(admin_client):
    url = reverse("admin:transmissions_notification_changelist")
    user = make_user("bob")
    DefaultMessage.trigger(user, content=Article.objects.create(title="a"), trigger_user=user)
    with CaptureQueriesContext(connection) as one:
        assert admin_client.get(url).status_code == 200
    for i in range(8):
        other = make_user(f"user{i}")
        content = Article.objects.create(title=f"a{i}") if i % 2 else Document.objects.create(title=f"d{i}")
        DefaultMessage.trigger(other, content=content, trigger_user=user)
    with CaptureQueriesContext(connection) as many:
        html = admin_client.get(url).content.decode()
    assert html.count('class="field-target_user_link"') == 9
    # One more query: the second content type's prefetch.
    assert len(many) <= len(one) + 1, [q["sql"] for q in many.captured_queries]


def test_search_by_username_and_email(admin_client):
    grace = make_user("grace", email="g.hopper@navy.example")
    DefaultMessage.trigger(grace)
    DefaultMessage.trigger(make_user("alan"))
    url = reverse("admin:transmissions_notification_changelist")
    for query in ("grace", "hopper@navy"):
        html = admin_client.get(url, {"q": query}).content.decode()
        assert ">grace<" in html and ">alan<" not in html


def test_search_by_idempotency_key_and_the_keys_on_the_change_page(admin_client):
    keyed = DefaultMessage.trigger(make_user("grace"), idempotency_key="order-42:shipped")
    DefaultMessage.trigger(make_user("alan"), idempotency_key="order-43:shipped")
    url = reverse("admin:transmissions_notification_changelist")
    html = admin_client.get(url, {"q": "order-42:shipped"}).content.decode()
    assert ">grace<" in html and ">alan<" not in html
    html = admin_client.get(
        reverse("admin:transmissions_notification_change", args=[keyed.pk])
    ).content.decode()
    assert "order-42:shipped" in html and "Throttle slot" in html


def test_search_leaves_out_an_email_field_the_user_model_does_not_have(admin_client, monkeypatch):
    monkeypatch.setattr(User, "EMAIL_FIELD", "contact")
    DefaultMessage.trigger(make_user("grace"))
    url = reverse("admin:transmissions_notification_changelist")
    assert ">grace<" in admin_client.get(url, {"q": "grace"}).content.decode()


def test_content_of_a_model_that_is_gone_does_not_break_the_pages(admin_client):
    from django.contrib.contenttypes.models import ContentType

    stale = ContentType.objects.create(app_label="uninstalled", model="gadget")
    n = DefaultMessage.trigger(make_user("bob"))
    Notification.objects.filter(pk=n.pk).update(content_type=stale, object_id="7")
    DefaultMessage.trigger(make_user("carol"), content=Article.objects.create(title="fine"))
    for url in (reverse("admin:transmissions_notification_changelist"), change_url(n)):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert "uninstalled.gadget #7 (no such model)" in response.content.decode()


def test_the_reason_shows_on_the_row_and_in_the_list(admin_client):
    nobody = make_user("nobody", email="")
    n = MyEmailMessage.trigger(nobody)
    process_all_notifications()
    page = admin_client.get(reverse("admin:transmissions_notification_change", args=[n.pk])).content.decode()
    assert "the user has no email address" in page
    listing = admin_client.get(reverse("admin:transmissions_notification_changelist")).content.decode()
    assert 'title="the user has no email address; processed' in listing


def test_delivery_timeline_filter_and_tooltip(admin_client):
    n = MyEmailMessage.trigger(make_user("grace"))
    other = MyEmailMessage.trigger(make_user("henry"))
    process_all_notifications()
    n.refresh_from_db()
    t0 = datetime.datetime(2026, 5, 4, 12, 0, tzinfo=datetime.UTC)
    for i, (state, word) in enumerate([("delivered", "Delivery"), ("bounced", "Bounce")]):
        at = t0 + datetime.timedelta(minutes=i)
        record(Event("postmark", f"e{i}", word, state, n.provider_message_id, at, description=f"said {word}"))
    page = admin_client.get(reverse("admin:transmissions_notification_change", args=[n.pk])).content.decode()
    assert n.provider_message_id in page.replace("&lt;", "<").replace("&gt;", ">")
    timeline = page[page.index('class="transmissions-timeline"') :]
    assert "<tr><th>when</th><th>state</th><th>provider</th><th>event</th><th>detail</th></tr>" in timeline
    assert timeline.index("said Delivery") < timeline.index("said Bounce")
    assert "2026-05-04 12:01:00 UTC" in timeline and "postmark" in timeline
    quiet = admin_client.get(reverse("admin:transmissions_notification_change", args=[other.pk]))
    assert "No delivery event yet." in quiet.content.decode()
    url = reverse("admin:transmissions_notification_changelist")
    bounced = admin_client.get(url + "?delivery_state__exact=bounced").content.decode()
    assert "grace" in bounced and "henry" not in bounced
    assert "delivery: bounced" in bounced


def test_suppressions_are_listed_added_by_hand_and_cleared(admin_client, caplog):
    url = reverse("admin:transmissions_suppression_changelist")
    response = admin_client.post(
        reverse("admin:transmissions_suppression_add"),
        {"channel": "email", "address": " Grace@Example.com ", "reason": "asked us by phone"},
    )
    assert response.status_code == 302
    row = Suppression.objects.get()
    assert row.address == "grace@example.com" and row.event is None
    grace = make_user("grace")
    n = MyEmailMessage.trigger(grace)
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.CANCELLED and n.reason.endswith("asked us by phone")
    # The address of a suppression cannot be edited into another one.
    change = admin_client.get(
        reverse("admin:transmissions_suppression_change", args=[row.pk])
    ).content.decode()
    assert 'name="address"' not in change and "grace@example.com" in change
    assert "grace@example.com" in admin_client.get(url + "?q=grace@example.com").content.decode()
    response = admin_client.post(url, {"action": "clear", "_selected_action": [row.pk]}, follow=True)
    assert "1 address cleared." in response.content.decode()
    assert "Suppression of grace@example.com on email cleared in the admin by root." in caplog.text
    assert not Suppression.objects.exists()
    assert processed(MyEmailMessage.trigger(grace)).status == S.SUCCESSFULLY_SENT


def test_a_suppression_links_to_the_notification_of_its_event(admin_client):
    n = processed(MyEmailMessage.trigger(make_user("grace")))
    at = datetime.datetime(2026, 5, 4, 12, 0, tzinfo=datetime.UTC)
    record(
        Event(
            "test",
            "c",
            "complained",
            "complained",
            n.provider_message_id,
            at,
            "grace@example.com",
            suppress=True,
        )
    )
    row = Suppression.objects.get()
    page = admin_client.get(reverse("admin:transmissions_suppression_change", args=[row.pk])).content.decode()
    assert reverse("admin:transmissions_notification_change", args=[n.pk]) in page
    assert "test complained (c)" in page


def test_the_held_filter_finds_opted_out_notifications(admin_client):
    from tests.messages import CommentMemo
    from transmissions.preferences import set_preference

    ada, bob = make_user("ada"), make_user("bob")
    set_preference(bob, "comments", "memo", False)
    CommentMemo.trigger(ada), CommentMemo.trigger(bob)
    process_all_notifications()
    url = reverse("admin:transmissions_notification_changelist")
    page = admin_client.get(url + "?held=opted-out").content.decode()
    assert ">bob<" in page and ">ada<" not in page
    assert ">ada<" in admin_client.get(url).content.decode()
    assert ">bob<" not in admin_client.get(url + "?held=suppressed").content.decode()


def test_preferences_are_listed_and_searched_by_user(admin_client):
    from transmissions.preferences import set_preference

    set_preference(make_user("grace"), "comments", "email", False)
    set_preference(make_user("linus"), "digest", "email", True)
    url = reverse("admin:transmissions_preference_changelist")
    page = admin_client.get(url + "?q=grace").content.decode()
    assert "grace" in page and "linus" not in page
    assert "linus" in admin_client.get(url + "?enabled__exact=1").content.decode()


def test_change_page_shows_the_steps_of_its_escalation_together(admin_client):
    ada = make_user()
    steps = reply.trigger(ada)
    other = reply.trigger(ada)
    response = admin_client.get(reverse("admin:transmissions_notification_change", args=[steps[1].pk]))
    html = response.content.decode()
    links = [html.find(f'<a href="{n.get_admin_url()}">{n.trigger_name}</a>') for n in steps]
    assert -1 not in links and links == sorted(links)  # every step, in step order
    assert other[0].get_admin_url() not in html
    listing = reverse("admin:transmissions_notification_changelist") + f"?escalation={steps[0].escalation}"
    assert listing in html
    page = admin_client.get(listing)
    assert page.status_code == 200
    assert {n.pk for n in page.context["cl"].result_list} == {n.pk for n in steps}
    alone = DefaultMessage.trigger(ada)
    html = admin_client.get(
        reverse("admin:transmissions_notification_change", args=[alone.pk])
    ).content.decode()
    assert "these steps in the list" not in html


def test_digest_frequencies_are_listed_searched_and_changed_only_to_an_offered_one(admin_client):
    from transmissions.models import DigestFrequency
    from transmissions.preferences import set_frequency

    set_frequency(make_user("grace"), "comments", "memo", "daily")
    set_frequency(make_user("linus"), "comments", "memo", "weekly")
    url = reverse("admin:transmissions_digestfrequency_changelist")
    page = admin_client.get(url + "?q=grace").content.decode()
    assert "grace" in page and "linus" not in page and "daily" in page
    assert "linus" in admin_client.get(url + "?frequency=weekly").content.decode()
    assert admin_client.get(reverse("admin:transmissions_digestfrequency_add")).status_code == 403
    row = DigestFrequency.objects.get(frequency="daily")
    change = reverse("admin:transmissions_digestfrequency_change", args=[row.pk])
    page = admin_client.get(change).content.decode()
    assert 'name="frequency"' in page and '<option value="hourly">Hourly</option>' in page
    assert 'name="user"' not in page and 'name="category"' not in page  # read-only
    # Another user, category or channel in the form changes nothing; a name not offered is refused.
    refused = admin_client.post(change, {"frequency": "monthly"})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert DigestFrequency.objects.get(pk=row.pk).frequency == "daily"
    done = admin_client.post(change, {"frequency": "hourly", "user": 999, "category": "x", "channel": "y"})
    assert done.status_code == 302
    row.refresh_from_db()
    assert (row.user.username, row.category, row.channel, row.frequency) == (
        "grace",
        "comments",
        "memo",
        "hourly",
    )
