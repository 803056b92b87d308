"""Detecting likely personal data in a column from a sample of its values.

Each detector answers for one value; a column's result is the share of its sampled, present
values that match. The checks are offline and cheap, and each has a check digit or a parser
behind it where one exists, so that a column of order numbers is not taken for card numbers:

- ``email``: ``local@domain.tld`` (one ``@``, a dotted domain, no spaces);
- ``phone``: parsed and validated by ``phonenumbers`` (numbers without a ``+`` country code
  are read as :data:`DEFAULT_PHONE_REGION` numbers); plain digit strings without a ``+`` or
  a separator are not counted (identifiers look like that); skipped when ``phonenumbers``
  is not installed;
- ``card``: 13 to 19 digits (spaces or dashes allowed) passing the Luhn check, reported only
  when at least half the values pass (one random digit string in ten does);
- ``iban``: a country code, two check digits and up to 30 letters or digits passing the
  ISO 13616 mod-97 check;
- ``ip``: an IPv4 or IPv6 address, as the standard library's :mod:`ipaddress` reads it.

Person names are not detected: telling a name from any other capitalised word needs a named
entity model or a large name list, none of which is small, offline and well kept. Column
*names* that suggest personal data (``email``, ``phone``, ``name``, ``address``, ...) are
reported as hints instead.

Examples
--------
>>> luhn_valid("4111 1111 1111 1111"), luhn_valid("4111 1111 1111 1112")
(True, False)
>>> iban_valid("GB82 WEST 1234 5698 7654 32"), iban_valid("GB82 WEST 1234 5698 7654 33")
(True, False)
>>> detect_values(["ann@example.org", "bob@example.com", "n/a"])
{'email': 0.6667}
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "DEFAULT_PHONE_REGION",
    "MIN_SHARE",
    "column_name_hint",
    "detect_values",
    "iban_valid",
    "luhn_valid",
    "phone_detection_available",
    "suggested_config",
]

# A column is reported when at least this share of its sampled present values match one kind.
MIN_SHARE = 0.05
# One random digit string in ten passes the Luhn check, so a column of ids would show about
# 10% "cards": cards are reported only when most values pass.
MIN_CARD_SHARE = 0.5
DEFAULT_PHONE_REGION = "US"

_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_CARD = re.compile(r"^\d(?:[ -]?\d){12,18}$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_PHONE_SHAPE = re.compile(r"^\+?[\d\s().-]{7,22}$")
# Words in a column's name that suggest it holds personal data.
_NAME_HINTS = (
    "email",
    "e_mail",
    "phone",
    "mobile",
    "name",
    "surname",
    "address",
    "street",
    "zip",
    "postcode",
    "postal",
    "birth",
    "dob",
    "ssn",
    "passport",
    "iban",
    "card",
    "ip_address",
    "latitude",
    "longitude",
)


def luhn_valid(text: str) -> bool:
    """Whether ``text`` is 13-19 digits (spaces or dashes allowed) with a valid Luhn digit."""
    if not _CARD.match(text):
        return False
    digits = [int(character) for character in text if character.isdigit()]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """Whether ``text`` is an IBAN whose check digits pass ISO 13616's mod-97 check."""
    compact = text.replace(" ", "").upper()
    if not _IBAN.match(compact):
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(character, 36)) for character in moved)
    return int(number) % 97 == 1


def _email(text: str) -> bool:
    return len(text) <= 254 and _EMAIL.match(text) is not None


def _ip(text: str) -> bool:
    if not (":" in text or text.count(".") == 3):
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _phone_checker() -> Callable[[str], bool] | None:
    """Return the phone check, or None when ``phonenumbers`` is not installed."""
    try:
        import phonenumbers
    except ImportError:
        return None

    def phone(text: str) -> bool:
        if not _PHONE_SHAPE.match(text) or sum(c.isdigit() for c in text) < 7:
            return False
        if text.isdigit():  # no country code, no separator: as likely an identifier
            return False
        try:
            region = None if text.startswith("+") else DEFAULT_PHONE_REGION
            parsed = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return False
        return bool(phonenumbers.is_valid_number(parsed))

    return phone


def _detectors() -> dict[str, Callable[[str], bool]]:
    found: dict[str, Callable[[str], bool]] = {
        "email": _email,
        "card": luhn_valid,
        "iban": iban_valid,
        "ip": _ip,
    }
    phone = _phone_checker()
    if phone is not None:
        found["phone"] = phone
    return found


def phone_detection_available() -> bool:
    """Whether phone numbers can be checked (``phonenumbers`` is installed)."""
    return _phone_checker() is not None


def detect_values(values: Iterable[Any], min_share: float = MIN_SHARE) -> dict[str, float]:
    """Return ``{kind: share}`` for the kinds of personal data found in ``values``.

    ``values`` is a sample of one column; missing values (None, NaN, empty text) are left
    out of the share. Kinds matched by fewer than ``min_share`` of the values are not
    reported; shares are rounded to 4 places.
    """
    texts = [str(value).strip() for value in values if _present(value)]
    if not texts:
        return {}
    found: dict[str, float] = {}
    for kind, matches in _detectors().items():
        hits = sum(1 for text in texts if matches(text))
        share = hits / len(texts)
        if hits and share >= (max(min_share, MIN_CARD_SHARE) if kind == "card" else min_share):
            found[kind] = round(share, 4)
    return found


def _present(value: Any) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return False
    return bool(str(value).strip())


def column_name_hint(name: str) -> str | None:
    """Return the word of a column's name that suggests personal data, if any."""
    words = re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower().replace("-", "_").replace(" ", "_")
    for hint in _NAME_HINTS:
        if hint in words.split("_") or (("_" in hint) and hint in words):
            return hint
    return None


def suggested_config(columns: Sequence[str]) -> str:
    """Return the config lines that tag ``columns`` as personal data."""
    listed = ", ".join(columns)
    return f"data:\n  personal: [{listed}]\nmonitoring:\n  personal_data: hash"
