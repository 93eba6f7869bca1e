import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory

from tests.messages import (
    DefaultMessage,
    InboxAttributeMessage,
    InboxMethodMessage,
    MyEmailMessage,
)
from tests.models import Article
from tests.utils import earlier, later, make_user
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db


def render(source, user=None, **context):
    request = RequestFactory().get("/")
    request.user = user or AnonymousUser()
    return Template("{% load transmissions %}" + source).render(Context({"request": request, **context}))


@pytest.fixture
def ada():
    user = make_user("ada")
    for _ in range(3):
        DefaultMessage.trigger(user, datetime_scheduled=earlier())
    process_all_notifications()
    Notification.objects.filter(pk=user.notifications.first().pk).update(datetime_seen=earlier())
    DefaultMessage.trigger(user, datetime_scheduled=later())  # pending: not counted
    DefaultMessage.trigger(make_user("bob"), datetime_scheduled=earlier())
    process_all_notifications()
    return user


def test_unseen_count(ada, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert render("{% unseen_notifications_count as n %}[{{ n }}]", ada) == "[2]"
    assert render("{% unseen_notifications_count %}") == "0"
    # Without a request in the context, the auth context processor's ``user`` is used.
    source = "{% load transmissions %}{% unseen_notifications_count %}"
    assert Template(source).render(Context({"user": ada})) == "2"
    assert Template(source).render(Context({})) == "0"


def test_badge(ada):
    html = render("{% notifications_badge %}", ada)
    assert 'href="/notifications/"' in html and 'data-unseen="2"' in html
    assert '<span class="transmissions-badge-count">2</span>' in html
    ada.notifications.mark_seen()
    html = render("{% notifications_badge %}", ada)
    assert 'data-unseen="0"' in html and "transmissions-badge-count" not in html
    assert render("{% notifications_badge %}").strip() == ""


def test_notification_text():
    user = make_user()
    article = Article.objects.create(title="Queues")
    cases = [
        (InboxMethodMessage.trigger(user, content=article), "About Queues for ada"),
        (InboxAttributeMessage.trigger(user), "A plain attribute"),
        (MyEmailMessage.trigger(user), "Hello world!"),  # the subject
        (DefaultMessage.trigger(user), "default"),  # the trigger name
        (Notification.objects.create(trigger_name="gone", target_user=user), "gone"),
    ]
    for n, text in cases:
        assert render("{% notification_text n %}", n=n) == text
    assert render("{% notification_text n %}", n=cases[0][0]) == "About Queues for ada"


def test_notification_text_of_an_inapp_message_is_what_it_stored():
    from tests.messages import BadgeInApp

    user = make_user()
    n = BadgeInApp.trigger(user, data={"badge": "gold"})
    assert render("{% notification_text n %}", n=n) == "badge-inapp"  # not sent yet
    process_all_notifications()
    n = Notification.objects.get(pk=n.pk)
    assert render("{% notification_text n %}", n=n) == "You earned the gold badge"
    Notification.objects.filter(pk=n.pk).update(data_bytes=b"junk")
    assert render("{% notification_text n %}", n=Notification.objects.get(pk=n.pk)) == "badge-inapp"


def test_time_ago():
    import datetime

    import time_machine

    start = datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.UTC)
    cases = [
        (datetime.timedelta(0), "just now"),
        (datetime.timedelta(seconds=59), "just now"),
        (datetime.timedelta(seconds=-30), "just now"),  # a clock a little ahead
        (datetime.timedelta(minutes=1), "1 minute ago"),
        (datetime.timedelta(minutes=5, seconds=10), "5 minutes ago"),
        (datetime.timedelta(hours=2, minutes=59), "2 hours ago"),
        (datetime.timedelta(days=1, hours=1), "1 day ago"),
    ]
    with time_machine.travel(start, tick=False) as traveller:
        for elapsed, text in cases:
            traveller.move_to(start + elapsed)
            # timesince() puts a no-break space between the number and the unit.
            assert render("{{ when|time_ago }}", when=start).replace("\xa0", " ") == text, elapsed
        assert render("{{ when|time_ago }}", when=None) == ""
        naive = datetime.datetime.now() - datetime.timedelta(hours=3)
        assert render("{{ when|time_ago }}", when=naive) == "3\xa0hours ago"


def test_badge_names_the_count_for_screen_readers(ada):
    html = render("{% notifications_badge %}", ada)
    assert 'aria-label="Notifications, 2 unseen"' in html
    ada.notifications.mark_seen()
    assert "aria-label" not in render("{% notifications_badge %}", ada)
