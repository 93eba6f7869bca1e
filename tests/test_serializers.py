import base64
import datetime
import decimal
import pickle
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import override_settings

from tests import legacy02
from transmissions.serializers import JSONSerializer, PickleSerializer, get_serializer

VALUE = {
    "dt": datetime.datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC),
    "naive": datetime.datetime(2030, 1, 2, 3, 4),
    "d": datetime.date(2030, 1, 2),
    "t": datetime.time(3, 4, 5),
    "td": datetime.timedelta(days=1, seconds=2, microseconds=3),
    "dec": decimal.Decimal("3.14159265358979323846"),
    "u": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "nested": [{"x": None, "y": True, "z": 1.5}],
}


@pytest.mark.parametrize("serializer", [JSONSerializer(), PickleSerializer()])
def test_round_trip(serializer):
    data = serializer.dumps(VALUE)
    assert isinstance(data, bytes)
    assert serializer.loads(data) == VALUE


def test_json_refuses_what_it_cannot_hold():
    with pytest.raises(TypeError, match="set"):
        JSONSerializer().dumps({"s": {1, 2}})


def test_json_leaves_ordinary_dicts_alone():
    assert JSONSerializer().loads(JSONSerializer().dumps({"v": 1, "w": 2})) == {"v": 1, "w": 2}


@pytest.mark.parametrize(
    "value",
    [
        {"__transmissions__": "date", "v": "2030-01-02"},  # shaped like a tag: stays a dict
        {"__transmissions__": "uuid", "v": "not a uuid"},  # would not even decode
        {"__transmissions__": "nope"},
        {"outer": [{"__transmissions__": "decimal", "v": "1", "when": datetime.date(2030, 1, 2)}]},
        {"__transmissions__": {"__transmissions__": "time", "v": "03:04"}, "v": datetime.time(3, 4)},
    ],
)
def test_json_keeps_a_users_dict_shaped_like_a_tag(value):
    """The tag key is escaped: a user's dict that has it comes back as the same dict, never as
    a date, a decimal or an error."""
    assert JSONSerializer().loads(JSONSerializer().dumps(value)) == value


def test_default_is_pickle():
    assert isinstance(get_serializer(), PickleSerializer)


@override_settings(TRANSMISSIONS_SERIALIZER="no.such.Serializer")
def test_bad_path_names_the_setting():
    with pytest.raises(ImproperlyConfigured, match="TRANSMISSIONS_SERIALIZER = 'no.such.Serializer'"):
        get_serializer()


@override_settings(TRANSMISSION_SERIALIZER="no.such.Serializer")
def test_bad_legacy_path_names_the_legacy_setting():
    with pytest.raises(ImproperlyConfigured, match="TRANSMISSION_SERIALIZER = "):
        get_serializer()


# --- what transmissions 0.2 stored: pickles written by Python 2 (tests/legacy02.py) ----


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_python2_pickles_load(protocol):
    data = base64.b64decode(legacy02.PY2_PICKLES[protocol])
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(data)  # what plain pickle.loads makes of their dates
    assert PickleSerializer().loads(data) == legacy02.PY2_VALUES[protocol]


def test_python2_protocol_0_pickle_holds_a_date_and_text():
    value = PickleSerializer().loads(base64.b64decode(legacy02.PY2_PICKLES[0]))
    assert type(value["day"]) is datetime.date and value["day"] == datetime.date(2016, 10, 27)
    assert value["subject"] == "Hello" and value["name"] == "Zoë"


@pytest.mark.parametrize("key", sorted(legacy02.PY2_AWARE_PICKLES))
def test_python2_aware_datetimes_load_as_utc(key):
    value = PickleSerializer().loads(base64.b64decode(legacy02.PY2_AWARE_PICKLES[key]))
    assert value == legacy02.AWARE_VALUE
    assert value["when"].tzinfo is datetime.UTC


@pytest.mark.parametrize("protocol", [0, 2, 3, 5])
def test_python3_pickles_of_any_protocol_load(protocol):
    value = {"text": "café", "raw": b"\x00\xff", "when": datetime.datetime(2030, 1, 2, tzinfo=datetime.UTC)}
    assert PickleSerializer().loads(pickle.dumps(value, protocol=protocol)) == value


def test_other_classes_still_resolve_in_old_pickles():
    data = pickle.dumps(decimal.Decimal("1.5"), protocol=2)
    assert PickleSerializer().loads(data) == decimal.Decimal("1.5")
