"""The shapes of the store's identifiers, each written once.

Everything that finds, checks, masks or redacts one of them imports it from here, and the Rasa
project's ``data/nlu/regex.yml`` holds the same text (``tests/ridgeline/test_shapes.py`` keeps
them equal). The patterns are plain strings, usable as they are by Python's ``re`` and by Rasa's
regex featurizer and entity extractor, and need no flags.

- ``ORDER_ID``: ``RG`` in any case, then any spaces, dashes and underscores, then exactly five
  digits (group 1), not inside a longer word or number: ``RG-10421``, ``rg10421``,
  ``RG 10421``, ``RG - 10421``, ``RG_10421``. ``canonical_order_id`` writes it ``RG-10421``.
- ``EMAIL``: ``name@domain.tld`` (letters, digits and ``._%+-`` before the ``@``; a dotted
  domain ending in two or more letters), not inside a longer address. ``email_pattern(at)``
  builds the same rule with another spelling of ``@``: ``EMAIL_OR_URL_ENCODED`` also finds
  ``anna%40example.com`` as URLs and access logs write it.
- ``SKU``: a product of the catalog: ``RO-`` then exactly five digits (``RO-10234``), upper case,
  one dash, nothing else: unlike an order number (``RG``) and too short for a phone or card number,
  so log masking and the fine-tuning data's redaction leave it (and prices) as they are.
- Card numbers: ``luhn_ok``, the check payment card numbers pass.
"""

from __future__ import annotations

import re

ORDER_ID = r"(?<![\w-])[Rr][Gg][\s_-]*(\d{5})(?!\w)"
ORDER_ID_PREFIX = "RG-"

SKU = r"(?<![\w-])RO-\d{5}(?![\w-])"

# A whole value that is one order id, as a user types it into the form ("#RG 10421 ").
_WHOLE_ORDER_ID = re.compile(rf"\s*#?\s*{ORDER_ID}\s*")


def email_pattern(at: str = "@") -> str:
    """The email rule, with ``at`` (a regular expression) standing for the ``@``."""
    return rf"(?<![\w.%+-])[\w.%+-]+{at}[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{{2,}}\b"


EMAIL = email_pattern()
EMAIL_OR_URL_ENCODED = email_pattern("(?:@|%40)")

_WHOLE_EMAIL = re.compile(EMAIL)


def canonical_order_id(text: str | None) -> str | None:
    """``rg 10421`` / ``#RG-10421`` -> ``RG-10421``; ``None`` when the whole text is not one order id."""
    match = _WHOLE_ORDER_ID.fullmatch(text or "")
    return f"{ORDER_ID_PREFIX}{match.group(1)}" if match else None


def is_email(text: str) -> bool:
    """Whether the whole of ``text`` is one email address."""
    return _WHOLE_EMAIL.fullmatch(text) is not None


def luhn_ok(digits: str) -> bool:
    """The Luhn check payment card numbers pass (and most other long digit runs do not)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0
