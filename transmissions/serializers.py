"""Serializers for ``Notification.data``: ``dumps(value) -> bytes``, ``loads(bytes) -> value``.

Pickle is the default, as in the original package. Unpickling can run arbitrary code,
so a project whose notification table can be written by anyone else should use
:class:`JSONSerializer`.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import json
import pickle
import uuid
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from transmissions.conf import conf
from transmissions.exceptions import DataSerializationError


class Serializer(Protocol):
    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class PickleSerializer:
    """Store any picklable object. Only for tables that nobody else can write to."""

    protocol = 4

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=self.protocol)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # noqa: S301 - documented; JSONSerializer is the safe choice


_TAG = "__transmissions__"


def _encode(value: Any) -> Any:
    # datetime before date: a datetime is a date.
    if isinstance(value, datetime.datetime):
        return {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, datetime.date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, datetime.time):
        return {_TAG: "time", "v": value.isoformat()}
    if isinstance(value, datetime.timedelta):
        return {_TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, decimal.Decimal):
        return {_TAG: "decimal", "v": str(value)}
    if isinstance(value, uuid.UUID):
        return {_TAG: "uuid", "v": str(value)}
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_DECODERS: dict[str, Any] = {
    "datetime": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
    "timedelta": lambda v: datetime.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "decimal": decimal.Decimal,
    "uuid": uuid.UUID,
}


def _decode(obj: dict[str, Any]) -> Any:
    tag = obj.get(_TAG)
    if tag is not None and len(obj) == 2 and "v" in obj:
        return _DECODERS[tag](obj["v"])
    return obj


class JSONSerializer:
    """Store JSON; dates, datetimes, times, timedeltas, decimals and UUIDs round-trip.

    Tuples come back as lists; anything else JSON cannot hold is refused at trigger time.
    """

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, default=_encode, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data, object_hook=_decode)


# Keyed by the path itself, so a changed setting needs no cache clearing.
@functools.cache
def _load(path: str) -> Serializer:
    try:
        serializer: Serializer = import_string(path)()
        return serializer
    except Exception as exc:
        name, _ = conf.serializer_setting()
        raise ImproperlyConfigured(f"{name} = {path!r} cannot be loaded: {exc}") from exc


def get_serializer() -> Serializer:
    """Return the serializer the settings name (``ImproperlyConfigured`` if it cannot load)."""
    return _load(conf.TRANSMISSIONS_SERIALIZER)


def dump_data(value: Any) -> bytes | None:
    """Return ``value`` serialized for ``Notification.data`` (None for no data).

    Raise DataSerializationError when the serializer cannot store it; a bad serializer
    setting stays ImproperlyConfigured.
    """
    if value is None or (isinstance(value, dict) and not value):
        return None
    serializer = get_serializer()
    try:
        return serializer.dumps(value)
    except Exception as exc:
        raise DataSerializationError(
            f"The serializer cannot store this data ({type(exc).__name__}: {exc})."
        ) from exc
