"""internals.py: claimed rows read like the ORM's, with the shortcuts on or off."""

import datetime
import zoneinfo

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models.signals import post_init, pre_init
from django.test.utils import CaptureQueriesContext

from tests.messages import DefaultMessage
from tests.models import Article, Document
from tests.utils import earlier, make_user
from transmissions import internals
from transmissions.models import Notification

pytestmark = pytest.mark.django_db
FIELDS = [f.attname for f in Notification._meta.concrete_fields]


@pytest.fixture
def batch_rows():
    ada, bob = make_user("ada"), make_user("bob")
    article, document = Article.objects.create(title="a"), Document.objects.create(title="d")
    made = [
        DefaultMessage.trigger(ada, datetime_scheduled=earlier(minutes=1)),
        DefaultMessage.trigger(
            bob, trigger_user=ada, content=article, data={"x": [1, 2]}, datetime_scheduled=earlier(minutes=3)
        ),
        DefaultMessage.trigger(
            ada, trigger_user=bob, content=document, datetime_scheduled=earlier(minutes=2)
        ),
    ]
    return made


def test_claimed_batch_reads_like_the_orm(batch_rows):
    batch = Notification.objects.claim(10)
    # Oldest schedule first, as the due-query orders them.
    assert [n.pk for n in batch] == [batch_rows[i].pk for i in (1, 2, 0)]
    for n in batch:
        fresh = Notification.objects.get(pk=n.pk)
        assert [getattr(n, f) for f in FIELDS] == [getattr(fresh, f) for f in FIELDS]
        assert n.status == Notification.Status.PROCESSING and n.attempts == 1
        assert not n._state.adding and n._state.db == "default"
    with CaptureQueriesContext(connection) as ctx:
        seen = [
            (n.target_user.username, n.trigger_user and n.trigger_user.username, n.content) for n in batch
        ]
        data = [n.data for n in batch]
    # Everything was attached in the batch's few queries; the users, on the first read, in one
    # query for the whole batch.
    tables = [q["sql"].split(" FROM ")[1].split()[0].strip('"`') for q in ctx.captured_queries]
    assert tables == (["tests_user"] if internals.enabled() else [])
    assert seen == [
        ("bob", "ada", Article.objects.get()),
        ("ada", "bob", Document.objects.get()),
        ("ada", None, None),
    ]
    assert data == [{"x": [1, 2]}, {}, {}]


@pytest.mark.parametrize("use_tz", [True, False])
def test_claimed_datetimes_are_the_orms_with_the_same_zone(batch_rows, settings, use_tz):
    """load_rows() makes the driver's naive datetimes aware itself (not through the backend's
    converter): the same values and the same tzinfo as the ORM's, with USE_TZ on and off."""
    settings.USE_TZ = use_tz
    fields = Notification._meta.concrete_fields
    names = [f.attname for f in fields if f.get_internal_type() == "DateTimeField"]
    batch = Notification.objects.claim(10)
    assert len(batch) == 3
    for n in batch:
        fresh = Notification.objects.get(pk=n.pk)
        mine = [(getattr(n, f), getattr(getattr(n, f), "tzinfo", None)) for f in names]
        assert mine == [(getattr(fresh, f), getattr(getattr(fresh, f), "tzinfo", None)) for f in names]
        assert (n.datetime_scheduled.tzinfo is not None) is use_tz


@pytest.mark.not_on("mysql")  # MariaDB refuses an offset in a datetime literal
@pytest.mark.parametrize("use_tz", [True, False])
@pytest.mark.parametrize(
    "text",
    [
        "2020-01-02 03:04:05.123456",  # how Django writes it
        "2020-01-02 03:04:05",  # no microseconds
        "2020-01-02T03:04:05.5",  # 0.2, raw SQL or another tool's forms
        "2020-01-02 03:04:05+00:00",
        "2020-01-02 05:04:05+02:00",
    ],
)
def test_claimed_datetimes_in_any_stored_text_form_read_like_the_orm(settings, use_tz, text):
    """SQLite's dialect reads datetime columns back as their text, which load_rows() parses
    (fromisoformat, aware in UTC): a form Django does not write (an offset of its own) goes
    through the backend's converter, and every form gives the ORM's values and zones. (On
    PostgreSQL the server parses the text when it is written: the same values either way.)"""
    settings.USE_TZ = use_tz
    notification = DefaultMessage.trigger(make_user("ada"))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE transmissions_notification SET datetime_created = %s, datetime_scheduled = %s "
            "WHERE id = %s",
            [text, text, notification.pk],
        )
    (claimed,) = Notification.objects.claim(10)
    fresh = Notification.objects.get(pk=notification.pk)
    for name in ("datetime_created", "datetime_scheduled", "claimed_until"):
        mine, orms = getattr(claimed, name), getattr(fresh, name)
        assert (mine, mine.tzinfo) == (orms, orms.tzinfo), name
    assert claimed.datetime_scheduled.replace(tzinfo=None).year == 2020


def test_post_init_listeners_still_run(batch_rows):
    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.pk)

    post_init.connect(listener, sender=Notification)
    try:
        batch = Notification.objects.claim(10)
    finally:
        post_init.disconnect(listener, sender=Notification)
    assert sorted(seen) == sorted(n.pk for n in batch) and len(batch) == 3


def test_a_claimed_row_with_deferred_users_pickles_and_reads_its_users_after(batch_rows):
    import pickle

    batch = Notification.objects.claim(10)
    copy = pickle.loads(pickle.dumps(batch[0]))
    assert copy.pk == batch[0].pk
    assert copy.target_user == Notification.objects.get(pk=copy.pk).target_user


@pytest.mark.only_on("postgresql")
@pytest.mark.parametrize("setting", ["DateStyle = 'SQL, DMY'", "TimeZone = 'Europe/Paris'"])
def test_postgresql_reads_claimed_datetimes_as_text_only_in_an_iso_utc_session(batch_rows, setting):
    """PostgreSQL's dialect reads datetime columns as text (parsed by fromisoformat, not by
    Django's Python loader) while the session writes them in ISO form in UTC, which the
    server reports to the driver; after a SET of either it reads them as timestamps. The
    rows read like the ORM's."""
    from transmissions import db

    dialect = db.dialect("default", Notification)
    fields = Notification._meta.concrete_fields
    names = [f.attname for f in fields if f.get_internal_type() == "DateTimeField"]
    assert dialect.zoned_text() is True
    assert '"datetime_scheduled"::text' in dialect.all_columns("n", dialect.zoned_text())
    variable = setting.split()[0]
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {variable}")
        (before,) = cursor.fetchone()
        cursor.execute(f"SET {setting}")
    try:
        assert dialect.zoned_text() is False
        assert "::text" not in dialect.all_columns("n", dialect.zoned_text())
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"SET {variable} = %s", [before])
    assert dialect.zoned_text() is True
    batch = Notification.objects.claim(10)
    assert len(batch) == 3
    for n in batch:
        fresh = Notification.objects.get(pk=n.pk)
        for name in names:
            mine, orms = getattr(n, name), getattr(fresh, name)
            assert (mine, getattr(mine, "tzinfo", None)) == (orms, getattr(orms, "tzinfo", None)), name


@pytest.fixture
def connection_zone():
    """Set the default connection's own TIME_ZONE (DATABASES["default"]["TIME_ZONE"]) for a test."""
    wrapper = connections["default"]  # the connection itself, not django.db.connection's proxy
    saved = wrapper.settings_dict.get("TIME_ZONE")

    def set_zone(name):
        wrapper.settings_dict["TIME_ZONE"] = name
        for attr in ("timezone", "timezone_name"):
            wrapper.__dict__.pop(attr, None)  # Django caches both per connection

    yield set_zone
    set_zone(saved)


@pytest.mark.only_on("sqlite")
def test_claimed_datetimes_in_a_connection_zone_other_than_utc_read_like_the_orm(connection_zone):
    """A SQLite database whose stored times are local to DATABASES' TIME_ZONE: the text
    load_rows() parses is made aware in that zone, as the backend's converter does."""
    connection_zone("Europe/Paris")
    notification = DefaultMessage.trigger(make_user("ada"), datetime_scheduled=earlier(minutes=5))
    (claimed,) = Notification.objects.claim(10)
    fresh = Notification.objects.get(pk=notification.pk)
    for name in ("datetime_created", "datetime_scheduled", "claimed_until"):
        mine, orms = getattr(claimed, name), getattr(fresh, name)
        assert (mine, str(mine.tzinfo)) == (orms, str(orms.tzinfo)) == (orms, "Europe/Paris"), name
    assert abs(claimed.datetime_scheduled - notification.datetime_scheduled).total_seconds() < 1e-3


AWARE = [
    datetime.datetime(2026, 12, 7, 5, 4, 3, 210987, tzinfo=datetime.UTC),
    datetime.datetime(2026, 12, 7, 5, 4, 3, tzinfo=datetime.UTC),  # no microseconds: str() drops them
    datetime.datetime(2026, 3, 29, 1, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    datetime.datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    datetime.datetime(2026, 6, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=-9, minutes=-30))),
]


@pytest.mark.parametrize("value", AWARE, ids=str)
@pytest.mark.parametrize("db_zone", [None, "America/Sao_Paulo"])
def test_datetime_adapter_writes_what_the_backend_writes(value, db_zone):
    """datetime_adapter() (on SQLite, the app's own adaptation) gives what the backend's
    adapt_datetimefield_value() gives, in the connection's zone, and a trigger stores it."""
    conn = connections[DEFAULT_DB_ALIAS]
    saved = conn.settings_dict["TIME_ZONE"]
    conn.settings_dict["TIME_ZONE"] = db_zone
    conn.__dict__.pop("timezone", None)
    try:
        adapt = internals.datetime_adapter(conn)
        if conn.vendor == "sqlite" and internals.enabled():
            assert adapt != conn.ops.adapt_datetimefield_value  # the shortcut is what is tested
        assert adapt(value) == conn.ops.adapt_datetimefield_value(value)
        assert adapt(None) is None
        user = make_user()
        mine = DefaultMessage.trigger(user, datetime_scheduled=value)
        theirs = Notification.objects.create(
            uuid="x" * 22, trigger_name="default", target_user=user, datetime_scheduled=value
        )
        column = Notification._meta.get_field("datetime_scheduled").column
        with conn.cursor() as cursor:
            table = conn.ops.quote_name(Notification._meta.db_table)
            cursor.execute(
                f"SELECT {column} FROM {table} WHERE id IN (%s, %s) ORDER BY id", [mine.pk, theirs.pk]
            )
            stored = [row[0] for row in cursor.fetchall()]
        assert stored[0] == stored[1]
        assert mine.datetime_scheduled == value
    finally:
        conn.settings_dict["TIME_ZONE"] = saved
        conn.__dict__.pop("timezone", None)


def test_datetime_adapter_follows_use_tz(settings):
    """Without USE_TZ the backend's own adaptation answers (a naive datetime as it is; an aware
    one refused on SQLite, as the ORM refuses it)."""
    settings.USE_TZ = False
    conn = connections[DEFAULT_DB_ALIAS]
    adapt = internals.datetime_adapter(conn)
    naive = datetime.datetime(2026, 12, 7, 5, 4, 3, 2)
    assert adapt(naive) == conn.ops.adapt_datetimefield_value(naive)
    if conn.vendor == "sqlite":
        with pytest.raises(ValueError, match="does not support timezone-aware datetimes"):
            adapt(AWARE[0])
    n = DefaultMessage.trigger(make_user(), datetime_scheduled=naive)
    assert Notification.objects.get(pk=n.pk).datetime_scheduled == naive


def test_listened_follows_connect_and_disconnect():
    """listened() answers from Signal.receivers when nothing is connected, and sees a receiver
    the moment it is connected, for its sender or for every sender, and not after."""

    def receiver(sender, **kwargs):
        pass

    assert not internals.listened(Notification, pre_init, post_init)
    for sender in (Notification, None):
        post_init.connect(receiver, sender=sender)
        try:
            assert internals.listened(Notification, pre_init, post_init)
        finally:
            post_init.disconnect(receiver, sender=sender)
        assert not internals.listened(Notification, pre_init, post_init)
    post_init.connect(receiver, sender=Article)
    try:
        assert not internals.listened(Notification, post_init)
    finally:
        post_init.disconnect(receiver, sender=Article)


@pytest.mark.django_db(transaction=True)
def test_autocommit_reads_the_connection_as_get_autocommit_does():
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        assert other.connection is None
        assert internals.autocommit(other) is True  # opened it, as get_autocommit() does
        assert other.connection is not None
        with transaction.atomic(using=other.alias):
            conn = connections[DEFAULT_DB_ALIAS]
            assert internals.autocommit(conn) is conn.get_autocommit() is False
        other.set_autocommit(False)
        assert internals.autocommit(other) is other.get_autocommit() is False
        other.set_autocommit(True)
    finally:
        other.close()


def test_builder_gives_a_model_that_overrides_from_db_its_own_instances(monkeypatch):
    """from_db() is a documented hook: a model that overrides it gets its instances from it,
    not from the shortcut."""
    from tests.models import User

    made = []
    ada = make_user("ada")
    columns = ", ".join(connection.ops.quote_name(f.column) for f in User._meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {User._meta.db_table} WHERE id = %s", [ada.pk])
        row = cursor.fetchone()

    @classmethod
    def from_db(cls, db, field_names, values):
        made.append(values[0])
        return super(User, cls).from_db(db, field_names, values)

    monkeypatch.setattr(User, "from_db", from_db, raising=False)
    internals._own_from_db.cache_clear()
    internals._builder.cache_clear()
    try:
        [loaded] = internals.load_rows(User, "default", [row])
        assert made == [ada.pk] and loaded.username == "ada" and loaded._state.db == "default"
    finally:
        monkeypatch.undo()
        internals._own_from_db.cache_clear()
    made.clear()
    internals.load_rows(User, "default", [row])
    assert made == []
