"""``mask_personal_data(text)``: personal data and credentials in a log line become placeholders.

Written for log lines, which are full of numbers that are not personal data: timestamps,
dates, durations, prices, IP addresses and ports, HTTP status codes, byte counts, versions.
So a number is masked only when its shape says what it is:

- ``<email>``: ``name@domain.tld``, also percent-encoded as it appears in URLs and access
  logs (``anna%40example.com``, ``anna%2Bshop%40example.com``);
- ``<order-id>``: this shop's order numbers in every form the assistant accepts
  (``ridgeline.shapes.ORDER_ID``: ``rg``, any spaces, dashes and underscores, five digits:
  ``RG-10421``, ``rg10421``, ``RG - 10421``, ``RG--10421``, ``RG_10421``);
- ``<card>``: 13-19 digits, plain or grouped by spaces or dashes, starting with 2-6 (the
  card networks' ranges) and passing the Luhn check;
- ``<phone>``: 7-15 digits that start with ``+`` or ``0`` (international and national
  forms, grouped or not), or three or more groups joined by spaces, dashes or dots
  (``555-123-4567``, ``(555) 123 4567``). Plain digit runs that start with 1-9 (counts,
  epoch seconds, and so also ``5551234567``), two groups (``200 1234`` at the end of an
  access log line, ``2020-2026``), dates, IPv4 addresses and decimals are left alone;
- ``<token>``: credentials, which are not personal data but must not be in logs either:
  ``token=`` query parameters (and ``access_token=``, ``refresh_token=``, ``id_token=``,
  ``auth_token=``), the value of an ``Authorization:`` header or of ``Bearer ...``, and
  JWTs (``eyJ...`` base64url, three parts joined by dots).

Regular expressions, not a named-entity model: names and street addresses are not caught.
Every pattern is linear in the length of the line. Standard library only, so the Rasa
runtime (Python 3.10) can use it too.
"""

from __future__ import annotations

import re

from ridgeline.shapes import EMAIL_OR_URL_ENCODED, luhn_ok
from ridgeline.shapes import ORDER_ID as ORDER_ID_SHAPE

EMAIL = "<email>"
PHONE = "<phone>"
ORDER_ID = "<order-id>"
CARD = "<card>"
TOKEN = "<token>"

# "@" or its percent-encoding "%40"; "%" may be in the local part too ("anna%2Bshop%40...").
EMAIL_PATTERN = re.compile(EMAIL_OR_URL_ENCODED)
_ORDER_ID = re.compile(ORDER_ID_SHAPE)

# Credentials. A JWT starts where a base64url run starts (so a long run is scanned once).
_JWT = re.compile(r"(?<![\w-])eyJ[\w-]+\.[\w-]+\.[\w-]*")
_TOKEN_PARAMETER = re.compile(r"(?<![\w-])((?:access_|refresh_|id_|auth_)?token=)[^\s&#;,\"'<>]+", re.IGNORECASE)
# An Authorization header's value, with its scheme kept: "Authorization: Basic <token>".
_AUTHORIZATION = re.compile(r"(\bauthorization[\"']?\s*[:=][ \t]*[\"']?(?:[A-Za-z]+[ \t]+)?)([^\s\"'<>,;]*)",
                            re.IGNORECASE)
_BEARER = re.compile(r"(\bBearer[ \t]+)[\w~+/.-]+=*")

# A run of digit groups joined by one space, dot or dash, or by an area code in parentheses:
# "+44 (0)20 7946 0321", "(555) 123-4567", "4111-1111-1111-1111", "0301234567".
# It may start with "+" anywhere but a word ("tel:+49..."), and otherwise not right after a
# word, a decimal point, a dash, a colon (times, ports), a slash (paths) or an "@".
# It must not stop in the middle of a number, a time or a date ("12:30", "1.5", "06-11").
_NUMBER = re.compile(
    r"(?:(?<![\w+])\+|(?<![\w.:/@+-]))"
    r"(?:\(\d+\)|\d+)(?:[ .-]?\(\d+\)[ .-]?\d+|[ .-]\d+)*"
    r"(?![\w@:]|[.,/-]\d)"
)
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def _is_card(run: str, digits: str) -> bool:
    return (13 <= len(digits) <= 19 and digits[0] in "23456" and not re.search(r"[+().]", run)
            and luhn_ok(digits))


def _is_phone(run: str, digits: str) -> bool:
    if not 7 <= len(digits) <= 15 or _DATE.fullmatch(run) or _IPV4.fullmatch(run):
        return False
    if run[0] in "+(" or digits[0] == "0":
        return "." not in run or run.count(".") >= 2  # "0.25" and "0123.50" are decimals
    return len(re.split(r"[ .-]", run)) >= 3


def _mask_number(match: re.Match) -> str:
    run = match.group(0)
    digits = re.sub(r"\D", "", run)
    if _is_card(run, digits):
        return CARD
    if _is_phone(run, digits):
        return PHONE
    return run


def _mask_authorization(match: re.Match) -> str:
    return match.group(1) + TOKEN if match.group(2) else match.group(0)  # empty: masked already


def mask_personal_data(text: str) -> str:
    """``text`` with credentials, emails, order ids, card and phone numbers replaced by placeholders.

    Masking masked text changes nothing, so a record that passes two filters is fine.
    """
    text = _JWT.sub(TOKEN, text)
    text = _TOKEN_PARAMETER.sub(rf"\1{TOKEN}", text)
    text = _AUTHORIZATION.sub(_mask_authorization, text)
    text = _BEARER.sub(rf"\1{TOKEN}", text)
    text = EMAIL_PATTERN.sub(EMAIL, text)
    text = _ORDER_ID.sub(ORDER_ID, text)
    return _NUMBER.sub(_mask_number, text)
