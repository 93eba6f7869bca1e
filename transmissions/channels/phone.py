"""Phone numbers: the E.164 form every SMS provider takes."""

from __future__ import annotations

import re

# E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}\Z")


def is_e164(number: object) -> bool:
    """Return whether ``number`` is a phone number in E.164 form (``+14155552671``)."""
    return isinstance(number, str) and bool(_E164.match(number))
