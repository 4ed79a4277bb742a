"""Check the model's reply before the user sees it.

A reply is withheld when it echoes the assistant's instructions (a run of words
from the persona and rules part of the system prompt, or the prompt's secret
canary), contains a secret, or matches a configured blocked pattern. Store facts
may be repeated freely: that is what they are for. Long replies are cut at a
sentence boundary.

A model talked into leaking ("spell it with spaces", "in base64", "backwards") is
caught too: the checks also run on the reply read backwards, with ROT13 undone, and
on every base64 or hex run in it decoded; canary and secrets are also looked for
with everything but letters and digits removed.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from dataclasses import dataclass

ECHO_WORDS = 8  # this many consecutive words of the instructions in a reply count as an echo
MIN_ENCODED_CHARS = 12  # shorter base64/hex runs are ordinary words and numbers

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{%d,}={0,2}" % MIN_ENCODED_CHARS)
_HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2}[\s:]?){%d,}" % (MIN_ENCODED_CHARS // 2))


@dataclass(frozen=True)
class Verdict:
    text: str | None  # what to send; None when the reply is withheld
    reason: str | None = None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _shingles(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


MIN_SQUASHED_CHARS = 8  # a shorter secret, squashed, would match by chance


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _contains(text: str, squashed: str, secret: str) -> bool:
    """``secret`` in ``text`` as written, or with spaces, dashes and other separators between."""
    if secret.lower() in text.lower():
        return True
    bare = _squash(secret)
    return len(bare) >= MIN_SQUASHED_CHARS and bare in squashed


def _decoded_runs(text: str) -> list[str]:
    """Every base64 and hex run of ``text`` that decodes to readable text."""
    decoded = []
    for match in _BASE64_RUN.finditer(text):
        run = match.group(0)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded.append(decode(run + "=" * (-len(run) % 4)).decode("utf-8"))
                break
            except (binascii.Error, ValueError):
                continue
    for match in _HEX_RUN.finditer(text):
        try:
            decoded.append(bytes.fromhex(re.sub(r"[\s:]", "", match.group(0))).decode("utf-8"))
        except ValueError:
            continue
    return decoded


def readings(reply: str) -> list[str]:
    """The reply as written, and the ways a leak could be hidden in it, undone."""
    return [reply, reply[::-1], codecs.decode(reply, "rot13"), *_decoded_runs(reply)]


def cap_length(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    boundary = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "), cut.rfind("\n"))
    return (cut[: boundary + 1] if boundary > max_chars // 2 else cut.rstrip() + "…").strip()


class ReplyGuard:
    def __init__(
        self,
        instructions: str,
        *,
        canary: str | None = None,
        secrets: tuple[str, ...] = (),
        blocked_patterns: tuple[str, ...] = (),
        max_chars: int = 1200,
    ) -> None:
        self._instruction_shingles = _shingles(_words(instructions), ECHO_WORDS)
        self._canary = canary
        self._secrets = tuple(s for s in secrets if s)
        self._blocked = tuple(re.compile(p, re.IGNORECASE) for p in blocked_patterns)
        self._max_chars = max_chars

    def check(self, reply: str) -> Verdict:
        for text in readings(reply):
            squashed = _squash(text)
            if self._canary and _contains(text, squashed, self._canary):
                return Verdict(None, "canary")
            if any(_contains(text, squashed, secret) for secret in self._secrets):
                return Verdict(None, "secret")
            if self._instruction_shingles & _shingles(_words(text), ECHO_WORDS):
                return Verdict(None, "instructions_echo")
        for pattern in self._blocked:
            if pattern.search(reply):
                return Verdict(None, f"blocked_pattern:{pattern.pattern}")
        return Verdict(cap_length(reply, self._max_chars))
