import datetime
import decimal
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import override_settings

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
