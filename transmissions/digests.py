"""Digests: the triggers of a message for one user and key within a window become one send.

``@message(..., digest=timedelta(hours=1))`` makes each trigger an *item* (a ``DigestItem``
row: its trigger user, content and data) of the user's *open digest*: a Notification
like any other, scheduled at the window's end, which holds the digest's key in its
``dedup_key`` while it waits. The key is unique among waiting rows (``active_key``) and is
released when a worker claims the digest (the prefix ``behaviors.RELEASED_ON_CLAIM_PREFIX``),
so a trigger after the claim opens a new digest. The claim loads the digest's items with
it (``related.attach_digest_items``), and its channel sends them all as one message.

An item joins a digest only while it waits: the trigger locks the digest's row (the
claim's ``SKIP LOCKED`` passes it by meanwhile) and inserts the item in that transaction;
a digest claimed first is found no longer waiting and a new one is opened. So every item
is in exactly one digest, and a digest is sent at most once, as any notification is.

``lookback=True`` ("first one now, the rest batched"): a digest opened when none of the key
was due within the last window is due at once; later triggers collect until a window
after it. A message in a category takes the window of the digest frequency its recipient
chose for the category and channel (``preferences.set_frequency()``: "instant" is a window
of 0, due at once), where one was chosen.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Callable
from typing import Any

from django.db import transaction

from transmissions import db, preferences
from transmissions.behaviors import RELEASED_ON_CLAIM_PREFIX
from transmissions.exceptions import DuplicateNotification, InvalidTrigger, MessageRegistrationError

MAX_KEY_LENGTH = 255
# Rounds of find the open digest → lock it (or open one), lost to a concurrent claim or
# opener, before giving up.
ATTEMPTS = 20
# What a digest's ``dedup_key`` starts with: released when a worker claims the row.
KEY_PREFIX = f"{RELEASED_ON_CLAIM_PREFIX}digest+"


@dataclasses.dataclass(frozen=True)
class Digest:
    """Collect a message's triggers for ``window`` per user and ``key`` into one send.

    ``key``: None (one digest per user), ``"content"`` (per user and content), or a
    callable ``key(content, data) -> str`` (per user and what it returns). ``lookback``:
    the first trigger after a quiet window is sent at once, the rest batched.
    """

    window: datetime.timedelta
    key: str | Callable[[Any, Any], Any] | None = None
    lookback: bool = False

    @classmethod
    def coerce(cls, value: Any, key: Any, lookback: Any, owner: str) -> Digest | None:
        """Return the Digest for ``@message(digest=value, digest_key=key,
        digest_lookback=lookback)``: None, a Digest, or a timedelta; raise
        MessageRegistrationError otherwise."""
        if value is None:
            if key is not None or lookback:
                raise MessageRegistrationError(f"{owner}: digest_key and digest_lookback need a digest.")
            return None
        if isinstance(value, Digest):
            found = value
            if key is not None or lookback:
                found = dataclasses.replace(
                    found,
                    key=key if key is not None else found.key,
                    lookback=bool(lookback) or found.lookback,
                )
        elif isinstance(value, datetime.timedelta):
            found = cls(value, key, lookback)
        else:
            raise MessageRegistrationError(
                f"{owner}.digest must be a timedelta or a transmissions.digests.Digest, not {value!r}."
            )
        found.validate(owner)
        return found

    def validate(self, owner: str) -> None:
        problem = ""
        if not isinstance(self.window, datetime.timedelta) or self.window <= datetime.timedelta(0):
            problem = f"window must be a positive timedelta, not {self.window!r}"
        elif not (self.key is None or self.key == "content" or callable(self.key)):
            problem = f"key must be None, 'content' or a callable (content, data) -> str, not {self.key!r}"
        elif not isinstance(self.lookback, bool):
            problem = f"lookback must be True or False, not {self.lookback!r}"
        if problem:
            raise MessageRegistrationError(f"{owner}.digest's {problem}.")

    def key_of(self, row: dict[str, Any], content: Any, data: Any) -> str:
        """The digest key of a trigger: "<message>:<user>[:<key>]" (hashed when too long)."""
        parts = [row["trigger_name"], str(row["target_user_id"])]
        if self.key == "content":
            if row["content_type_id"] is None:
                raise InvalidTrigger(
                    f"{row['trigger_name']!r} is digested per content: give it a saved content."
                )
            parts += [str(row["content_type_id"]), str(row["object_id"])]
        elif callable(self.key):
            try:
                value = self.key(content, data)
            except Exception as exc:
                raise InvalidTrigger(f"{row['trigger_name']!r}: its digest key raised {exc!r}.") from exc
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise InvalidTrigger(
                    f"{row['trigger_name']!r}: its digest key must return a string, not {value!r}."
                )
            parts.append(str(value))
        key = ":".join(parts)
        if len(KEY_PREFIX) + len(key) > MAX_KEY_LENGTH:
            key = "#" + hashlib.sha256(key.encode()).hexdigest()
        return key


def write(
    digest: Digest,
    manager: Any,
    row: dict[str, Any],
    content: Any,
    data: Any,
    item_model: Any,
    category: str | None = None,
) -> tuple[Any, bool]:
    """Add the trigger ``row`` (its values as ``trigger.shared_values()`` made them) as an item
    of its user's open digest, opening one if none waits; return the digest and whether
    this call opened it. ``data`` is the trigger's own (``row["data_bytes"]`` holds it
    serialized) and ``content`` its content, for a callable key. A message of a ``category``
    takes the window of the recipient's digest frequency for it, where one was chosen."""
    key = digest.key_of(row, content, data)
    active = KEY_PREFIX + key
    using = manager.db
    dialect = db.dialect(using, manager.model)
    when: datetime.datetime = row["datetime_scheduled"]
    item = {
        "target_user_id": row["target_user_id"],
        "trigger_user_id": row["trigger_user_id"],
        "content_type_id": row["content_type_id"],
        "object_id": row["object_id"],
        "data_bytes": row["data_bytes"],
        "datetime_created": row["datetime_created"],
    }
    for _ in range(ATTEMPTS):
        with transaction.atomic(using=using):
            # Locked, so no worker claims it until the item is in (and a claim that came
            # first leaves nothing to lock: its key is released, a new digest opens).
            found = dialect.lock_open_digest(active)
            opened: Any = None
            if found is None:
                head = {
                    **row,
                    "trigger_user_id": None,
                    "content_type_id": None,
                    "object_id": None,
                    "data_bytes": None,
                    "datetime_scheduled": _due(digest, manager, key, when, _window(digest, row, category)),
                    "dedup_key": active,
                    "digest_key": key,
                }
                made = dialect.insert([head], skip_conflicts=True)
                if not made:
                    continue  # a concurrent trigger opened it: join it next round
                opened = made[0]
            dialect.insert_plain(item_model, {"digest_id": (found or opened).pk, **item})
        if opened is not None:
            return opened, True
        return found, False
    raise DuplicateNotification(f"{row['trigger_name']!r}: gave up joining a digest after {ATTEMPTS} tries.")


def _window(digest: Digest, row: dict[str, Any], category: str | None) -> datetime.timedelta:
    if category is None:
        return digest.window
    chosen = preferences.digest_window(row["target_user_id"], category, row["channel"])
    return digest.window if chosen is None else chosen


def _due(
    digest: Digest, manager: Any, key: str, when: datetime.datetime, window: datetime.timedelta
) -> datetime.datetime:
    """When a digest opened at ``when`` is due: a ``window`` later, or (``lookback``) at once
    when the key's last digest was due a window or more before."""
    if not digest.lookback:
        return when + window
    last: datetime.datetime | None = (
        manager.filter(digest_key=key)
        .order_by("-datetime_scheduled")
        .values_list("datetime_scheduled", flat=True)
        .first()
    )
    if last is None or last + window <= when:
        return when
    return last + window
