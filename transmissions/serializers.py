"""Serializers for ``Notification.data``: ``dumps(value) -> bytes``, ``loads(bytes) -> value``.

Pickle is the default, as in the original package. Unpickling can run arbitrary code,
so a project whose notification table can be written by anyone else should use
:class:`JSONSerializer`.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import io
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
    """Store any picklable object. Only for tables that nobody else can write to.

    Reads what transmissions 0.2 stored too: pickles of protocols 0-2 written by
    Python 2 load with ``encoding="latin1"`` (what their ``date``/``datetime`` values
    need; a Python 2 ``str`` of non-ASCII bytes comes back one character per byte,
    ``unicode`` values are unaffected), and their UTC tzinfo (``pytz.utc`` or Django
    1.x's ``timezone.UTC()``) loads as ``datetime.timezone.utc``.
    """

    protocol = 4

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=self.protocol)

    def loads(self, data: bytes) -> Any:
        if data[:1] == b"\x80" and data[1:2] >= b"\x03":
            # Protocol 3 and later: Python 3 wrote it.
            return pickle.loads(data)  # noqa: S301 - documented; JSONSerializer is the safe choice
        return _LegacyUnpickler(io.BytesIO(data), encoding="latin1").load()


def _utc() -> datetime.tzinfo:
    return datetime.UTC


class _LegacyUnpickler(pickle.Unpickler):
    """Unpickle protocols 0-2, mapping Python 2-era UTC tzinfo classes to today's."""

    # Both pickle as a call without arguments: pytz._UTC() and timezone.UTC().
    UTC_CLASSES = {("pytz", "_UTC"), ("django.utils.timezone", "UTC")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.UTC_CLASSES:
            return _utc
        return super().find_class(module, name)


_TAG = "__transmissions__"
_TAG_BYTES = b'"__transmissions__"'


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


def _escape(value: Any) -> Any:
    """Return ``value`` with every dict that has the tag as a key stored as tagged pairs, so
    that it never decodes as another type (``{"__transmissions__": "date", "v": ...}``)."""
    if isinstance(value, dict):
        escaped = {key: _escape(item) for key, item in value.items()}
        if _TAG in value:
            # Pairs, not a dict: the decoder's hook must not see the user's dict as a tag.
            return {_TAG: "dict", "v": [[key, item] for key, item in escaped.items()]}
        return escaped
    if isinstance(value, list | tuple):
        return [_escape(item) for item in value]
    return value


_DECODERS: dict[str, Any] = {
    "dict": dict,
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
    Those types are stored as dicts tagged ``"__transmissions__"``; a dict of the data that
    has that key itself is stored tagged too (as ``"dict"``), so it comes back as it was.
    """

    def dumps(self, value: Any) -> bytes:
        data = json.dumps(value, default=_encode, separators=(",", ":")).encode()
        if _TAG_BYTES in data:
            # A tag, or a user's dict keyed by it: walk the value and escape such dicts.
            # (Rarely: only data holding dates, decimals, UUIDs... or the tag.)
            data = json.dumps(_escape(value), default=_encode, separators=(",", ":")).encode()
        return data

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
