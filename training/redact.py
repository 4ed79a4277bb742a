"""Replace personal data in conversation text with placeholders: <EMAIL>, <PHONE>, <CARD_NUMBER>, <ORDER_ID>.

Regular expressions, not a named-entity model: they catch the personal data
that support chats are full of (contact details, order and card numbers) and
are predictable enough to test. Names and street addresses are not caught;
docs/training.md says so.

The store's own public contact details (support email and phone from the
store facts) are kept: the model should learn to give them out.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Iterable

from ridgeline.shapes import EMAIL_OR_URL_ENCODED, luhn_ok  # the same email shape and card check as the logs' masking

logger = logging.getLogger(__name__)

EMAIL = "<EMAIL>"
PHONE = "<PHONE>"
CARD_NUMBER = "<CARD_NUMBER>"
ORDER_ID = "<ORDER_ID>"

# A run of digits with the separators people type in phone and card numbers.
_NUMBER_RUN = re.compile(r"(?<![\w+])\+?\(?\d(?:[\d \t().-]*\d)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# "1990-1995", "1914 - 1918": a range of years (in SQuAD passages and history answers), not a phone number.
_YEAR_RANGE = re.compile(r"(?:1[5-9]|20)\d\d\s?[-–]\s?(?:1[5-9]|20)\d\d")
# A price ("£129.00", "€ 89", "129.00 GBP") is the store's, never personal data: it is set aside
# before the number runs are looked at, so "£129.00 (420 g" is not read as one phone number.
_PRICE = re.compile(r"[£€$]\s?\d[\d,]*(?:\.\d{1,2})?|\d[\d,]*(?:\.\d{2})?\s?(?:GBP|EUR|pounds|euros)\b",
                    re.IGNORECASE)
_EMAIL = re.compile(EMAIL_OR_URL_ENCODED)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


class Redactor:
    """``redact(text) -> (text, counts)``, with the counts per placeholder kind."""

    def __init__(self, order_id_pattern: str, keep: Iterable[str] = ()) -> None:
        self._order_id = re.compile(rf"(?<![\w-])(?:{order_id_pattern})(?![\w-])", re.IGNORECASE)
        keep = [value for value in keep if value]
        self._keep_emails = {value.lower() for value in keep if "@" in value}
        self._keep_numbers = {_digits(value) for value in keep if len(_digits(value)) >= 7}

    def redact(self, text: str) -> tuple[str, Counter]:
        counts: Counter = Counter()

        def email(match: re.Match) -> str:
            if match.group(0).lower() in self._keep_emails:
                return match.group(0)
            counts["email"] += 1
            return EMAIL

        def order_id(match: re.Match) -> str:
            counts["order_id"] += 1
            return ORDER_ID

        def number(match: re.Match) -> str:
            run = match.group(0)
            # Trailing separators belong to the sentence, not the number.
            stripped = run.rstrip(" \t.-(")
            tail = run[len(stripped):]
            digits = _digits(stripped)
            if _ISO_DATE.fullmatch(stripped) or _YEAR_RANGE.fullmatch(stripped.lstrip("(")) or digits in self._keep_numbers:
                return run
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                counts["card_number"] += 1
                return CARD_NUMBER + tail
            if 7 <= len(digits) <= 15 and (len(digits) >= 9 or re.search(r"[ ()-]", stripped) or "+" in run):
                counts["phone"] += 1
                return PHONE + tail
            return run

        text = _EMAIL.sub(email, text)
        text = self._order_id.sub(order_id, text)
        prices: list[str] = []

        def set_aside(match: re.Match) -> str:
            prices.append(match.group(0))
            return f"\x00{len(prices) - 1}\x00"

        text = _PRICE.sub(set_aside, text)
        text = _NUMBER_RUN.sub(number, text)
        text = re.sub(r"\x00(\d+)\x00", lambda m: prices[int(m.group(1))], text)
        return text, counts
