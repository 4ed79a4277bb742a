"""What text from outside may hold: lone surrogates, control characters, characters that hide text.

A JSON string may hold a lone surrogate (``"\\ud800"``): valid JSON, but not Unicode text, so
no tracker store, JSON encoder or tokenizer can take it. Every service that reads JSON asks
``lone_surrogate_at`` and answers with its own error; the channels' gate drops them instead,
with the other characters ``clean_text`` removes.
"""

from __future__ import annotations

import re

# Code points U+D800-U+DFFF, as a range inside a regular expression's character class.
SURROGATE_RANGE = r"\ud800-\udfff"
_SURROGATE = re.compile(f"[{SURROGATE_RANGE}]")

# C0/C1 control characters other than tab and newline, lone surrogates (not text), and the
# invisible characters that only hide or reorder text: zero-width space, word joiner,
# byte-order mark, bidi embeddings, overrides and isolates, and Unicode tag characters (which
# can carry hidden text) unless they follow the black flag of a subdivision flag. Joiners
# (ZWJ/ZWNJ, used by emoji and several scripts) and the right-to-left marks stay.
_HIDING = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u2060\ufeff\u202a-\u202e\u2066-\u2069{SURROGATE_RANGE}]"
                     r"|(?<![\U0001F3F4\U000E0020-\U000E007F])[\U000E0000-\U000E007F]+")


def lone_surrogate_at(text: str) -> int | None:
    """The index of the first lone surrogate in ``text``, or ``None`` when it is Unicode text."""
    match = _SURROGATE.search(text)
    return match.start() if match else None


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a C0 control character (tab and newline included) or a lone surrogate."""
    return any(ord(char) < 32 for char in text) or lone_surrogate_at(text) is not None


def clean_text(text: str, max_chars: int) -> str:
    """``text`` without control or hiding characters, cut to ``max_chars``."""
    return _HIDING.sub("", text)[:max_chars]
