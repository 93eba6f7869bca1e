"""related.py: one notification whose content cannot be loaded never costs the others, in the
worker's batch, the inbox, the open view and the admin."""

import logging

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from tests import messages
from tests.messages import DefaultMessage, InboxMethodMessage
from tests.models import Article, Document
from tests.utils import earlier, make_user
from transmissions import related
from transmissions.models import Notification
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status

# An Article's key is an integer, a Document's a UUID.
MALFORMED = [
    ("article", "abc", "does not fit"),
    ("article", "99999999999999999999", "out of the range"),
    ("document", "not-a-uuid", "does not fit"),
    ("gone", "7", "has no model any more"),
]


def malform(n, kind, object_id):
    if kind == "gone":
        content_type = ContentType.objects.create(app_label="uninstalled", model="gadget")
    else:
        content_type = ContentType.objects.get_for_model(Article if kind == "article" else Document)
    Notification.objects.filter(pk=n.pk).update(content_type=content_type, object_id=object_id)


@pytest.mark.parametrize(("kind", "object_id", "why"), MALFORMED)
def test_one_malformed_row_never_stops_its_batch(user, caplog, kind, object_id, why):
    article = Article.objects.create(title="Queues")
    first = DefaultMessage.trigger(user, content=article, datetime_scheduled=earlier(minutes=3))
    bad = DefaultMessage.trigger(user, content=article, datetime_scheduled=earlier(minutes=2))
    last = DefaultMessage.trigger(
        user, content=Document.objects.create(title="d"), datetime_scheduled=earlier()
    )
    malform(bad, kind, object_id)

    with caplog.at_level(logging.WARNING, logger="transmissions"):
        assert process_all_notifications() == 3

    assert messages.sent == [("default", first.pk), ("default", last.pk)]
    bad.refresh_from_db()
    assert bad.status == S.BROKEN and bad.datetime_processed is not None
    assert bad.reason.startswith("its content cannot be loaded: ") and why in bad.reason
    assert not Notification.objects.filter(status=S.PROCESSING).exists()
    assert any(why in r.getMessage() for r in caplog.records)


def test_a_deleted_content_is_no_problem(user):
    article = Article.objects.create(title="Soon gone")
    n = DefaultMessage.trigger(user, content=article, datetime_scheduled=earlier())
    article.delete()
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.SUCCESSFULLY_SENT
    n = Notification.objects.get(pk=n.pk)
    assert related.content(n) is None and related.content_problem(n) is None


def test_content_reads_none_for_a_malformed_row_and_loads_a_good_one(user):
    article = Article.objects.create(title="Here")
    good = DefaultMessage.trigger(user, content=article)
    bad = DefaultMessage.trigger(user, content=article)
    malform(bad, "article", "abc")
    good, bad = Notification.objects.get(pk=good.pk), Notification.objects.get(pk=bad.pk)
    assert related.content(good) == article and related.content_problem(good) is None
    assert related.content(bad) is None
    assert "does not fit tests.Article's primary key" in related.content_problem(bad)
    assert related.content(Notification.objects.get(pk=DefaultMessage.trigger(user).pk)) is None


@pytest.mark.parametrize(("kind", "object_id", "why"), MALFORMED)
def test_the_inbox_and_the_open_view_show_a_malformed_row(client, kind, object_id, why):
    ada = make_user("ada")
    client.force_login(ada)
    article = Article.objects.create(title="Still here")
    bad = InboxMethodMessage.trigger(ada, content=article, datetime_scheduled=earlier())
    fine = InboxMethodMessage.trigger(ada, content=article, datetime_scheduled=earlier())
    process_all_notifications()
    malform(bad, kind, object_id)

    response = client.get(reverse("transmissions:inbox"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "About Still here for ada" in html and "About nothing for ada" in html
    assert {n.pk for n in response.context["notifications"]} == {bad.pk, fine.pk}

    opened = client.get(reverse("transmissions:open", args=[bad.uuid]))
    assert opened.status_code == 302 and opened["Location"] == reverse("transmissions:inbox")
    bad.refresh_from_db()
    assert bad.datetime_consumed is not None


def test_the_admin_lists_and_shows_a_malformed_row(admin_client, user):
    article = Article.objects.create(title="Fine article")
    fine = DefaultMessage.trigger(user, content=article)
    bad = DefaultMessage.trigger(user, content=article)
    malform(bad, "article", "abc")
    html = admin_client.get(reverse("admin:transmissions_notification_changelist")).content.decode()
    assert str(article) in html and "article #abc (cannot be loaded)" in html
    assert "does not fit tests.Article&#x27;s primary key" in html
    page = admin_client.get(reverse("admin:transmissions_notification_change", args=[bad.pk]))
    assert page.status_code == 200 and "(cannot be loaded)" in page.content.decode()
    assert (
        admin_client.get(reverse("admin:transmissions_notification_change", args=[fine.pk])).status_code
        == 200
    )


# -- a batch's users ---------------------------------------------------------------------


def _fields(user):
    return {
        f.attname: (getattr(user, f.attname), getattr(getattr(user, f.attname), "tzinfo", None))
        for f in type(user)._meta.concrete_fields
    }


def _users_dialect():
    from django.db import connection

    from transmissions import db

    return db.dialect(connection.alias, Notification)


def test_a_batchs_users_read_as_the_orm_reads_them():
    """The dialect's users() (a plain SELECT on PostgreSQL and SQLite, the ORM elsewhere) gives
    what the ORM gives, field by field, datetimes with their zone; a missing id is left out."""
    ada = make_user("ada", email="ada@example.com", phone_number="+15550100")
    bob = make_user("bob", last_login=earlier(hours=3), first_name="Bob")
    gone = make_user("gone")
    gone_id = gone.pk
    gone.delete()
    found = _users_dialect().users({ada.pk, bob.pk, gone_id})
    assert set(found) == {ada.pk, bob.pk}
    for user in (ada, bob):
        assert type(found[user.pk]) is type(user)
        assert found[user.pk]._state.db == "default" and not found[user.pk]._state.adding
        assert _fields(found[user.pk]) == _fields(type(user)._base_manager.get(pk=user.pk))
    assert _users_dialect().users(set()) == {}


def test_a_batchs_users_are_read_in_chunks_within_the_parameter_limit(monkeypatch):
    users = [make_user(f"u{i}", last_login=earlier(minutes=i)) for i in range(7)]
    dialect = _users_dialect()
    monkeypatch.setattr(type(dialect), "max_params", lambda self: 3)
    found = dialect.users({u.pk for u in users})
    expected = {u.pk: _fields(type(u).objects.get(pk=u.pk)) for u in users}
    assert {pk: _fields(u) for pk, u in found.items()} == expected


@pytest.mark.only_on("postgresql")
def test_postgresql_reads_a_batchs_users_as_the_orm_in_any_session_zone():
    """Datetimes come back as text only in a UTC session (parsed with their offset); in another
    zone they come back as timestamps, read as the ORM reads them in that session."""
    from django.db import connection

    bob = make_user("bob", last_login=earlier(hours=3))
    dialect = _users_dialect()
    with connection.cursor() as cursor:
        cursor.execute("SHOW TimeZone")
        (before,) = cursor.fetchone()
        cursor.execute("SET TimeZone = 'Europe/Paris'")
    try:
        assert dialect.zoned_text() is False
        found, orms = dialect.users({bob.pk}), type(bob)._base_manager.in_bulk([bob.pk])
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET TimeZone = %s", [before])
    assert _fields(found[bob.pk]) == _fields(orms[bob.pk])
    assert dialect.zoned_text() is True
    assert _fields(dialect.users({bob.pk})[bob.pk]) == _fields(type(bob).objects.get(pk=bob.pk))


def test_the_portable_path_reads_the_same_users_and_suppressions():
    """The ORM-only dialect (MySQL's, and every other database's) and this database's own give
    the same users and the same suppressed addresses."""
    from django.db import connection

    from transmissions.db.base import Dialect
    from transmissions.models import Suppression
    from transmissions.tracking import suppress

    ada, bob = make_user("ada", last_login=earlier(hours=1)), make_user("bob")
    suppress("email", "ada@example.com", "bounced")
    suppress("sms", "+15550100", "undelivered")
    portable, own = Dialect(connection, Notification), _users_dialect()
    ids = {ada.pk, bob.pk, bob.pk + 1000}
    mine, theirs = own.users(ids), portable.users(ids)
    assert {pk: _fields(u) for pk, u in mine.items()} == {pk: _fields(u) for pk, u in theirs.items()}
    assert set(mine) == {ada.pk, bob.pk}
    asked = ({"email", "sms"}, {"ada@example.com", "bob@example.com", "+15550100"})
    expected = {("email", "ada@example.com"): "bounced", ("sms", "+15550100"): "undelivered"}
    assert own.suppressed(Suppression, *asked) == portable.suppressed(Suppression, *asked) == expected
    assert own.suppressed(Suppression, {"email"}, {"+15550100"}) == {}


@pytest.mark.fast_path
@pytest.mark.not_on("mysql")  # (the portable dialect reads users through the ORM)
def test_a_proxy_user_model_is_read_from_its_concrete_table(monkeypatch):
    """AUTH_USER_MODEL may name a proxy: its users come back as instances of the proxy, read
    with one plain SELECT of the concrete model's table (PostgreSQL's and SQLite's dialect)."""
    from django.db import connection, models
    from django.test.utils import CaptureQueriesContext, isolate_apps

    from tests.models import User
    from transmissions.db import returning

    with isolate_apps("tests"):  # (not in the project's app registry)

        class ProxyUser(User):
            class Meta:
                proxy = True
                app_label = "tests"

    monkeypatch.setattr(returning, "get_user_model", lambda: ProxyUser)
    ada = make_user("ada", last_login=earlier(hours=2))
    with CaptureQueriesContext(connection) as queries:
        found = _users_dialect().users({ada.pk})
    assert type(found[ada.pk]) is ProxyUser and isinstance(found[ada.pk], models.Model)
    assert _fields(found[ada.pk]) == _fields(User.objects.get(pk=ada.pk))
    [query] = queries.captured_queries
    assert User._meta.db_table in query["sql"] and " JOIN " not in query["sql"].upper()
