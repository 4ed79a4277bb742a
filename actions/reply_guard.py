"""Check the model's reply before the user sees it.

A reply is withheld when it echoes the assistant's instructions (a run of words
from the persona and rules part of the system prompt, or the prompt's secret
canary), contains a secret, or matches a configured blocked pattern. Store facts
may be repeated freely: that is what they are for. Long replies are cut at a
sentence boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ECHO_WORDS = 8  # this many consecutive words of the instructions in a reply count as an echo


@dataclass(frozen=True)
class Verdict:
    text: str | None  # what to send; None when the reply is withheld
    reason: str | None = None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _shingles(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


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
        if self._canary and self._canary.lower() in reply.lower():
            return Verdict(None, "canary")
        if any(secret in reply for secret in self._secrets):
            return Verdict(None, "secret")
        if self._instruction_shingles & _shingles(_words(reply), ECHO_WORDS):
            return Verdict(None, "instructions_echo")
        for pattern in self._blocked:
            if pattern.search(reply):
                return Verdict(None, f"blocked_pattern:{pattern.pattern}")
        return Verdict(cap_length(reply, self._max_chars))
