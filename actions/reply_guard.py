"""Check the model's reply before the user sees it.

A reply is withheld when it echoes the assistant's instructions (a run of words
from the persona and rules part of the system prompt, or the prompt's secret
canary), contains a secret, or matches a configured blocked pattern. Store facts
may be repeated freely: that is what they are for. Long replies are cut at a
sentence boundary.

A model talked into leaking ("spell it with spaces", "in base64", "backwards",
"in Cyrillic letters") is caught too. Every check runs on every *reading* of the reply:

- the reply as written;
- the reply normalised: Unicode compatibility forms folded (fullwidth ``ｚｅｂｒａ``,
  ligatures, circled and mathematical letters), accents and other combining marks and
  invisible characters (zero-width spaces, soft hyphens, direction marks) removed, and
  Cyrillic and Greek letters that look like Latin ones (``а е о р с х у і ѕ``,
  ``ο α ε ν ρ τ``) replaced by those;
- the normalised reply read backwards, and with ROT13 undone;
- every base64 and hex run decoded, at each of the 4 (base64) or 2 (hex) alignments, so
  one junk character in front does not hide it, both in the normalised reply and in the
  normalised reply with all whitespace removed (base64 wrapped over lines, or split into
  groups of 4); the decodings are normalised too.

Canary and secrets are also looked for with everything but letters and digits removed.
Each reading is at most a few times as long as the reply and each check is linear in it,
so even an adversarial 100 KB reply is checked in a fraction of a second.

Not caught: any other cipher or encoding (base32, Caesar shifts other than 13, a leak
encoded twice or base64 of the reversed text), look-alike letters from other scripts, and
a model that paraphrases its rules instead of quoting them.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass

ECHO_WORDS = 8  # this many consecutive words of the instructions in a reply count as an echo
MIN_ENCODED_CHARS = 12  # shorter base64/hex runs are ordinary words and numbers
MIN_SQUASHED_CHARS = 8  # a shorter secret, squashed, would match by chance

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{%d,}" % MIN_ENCODED_CHARS)  # "=" padding is put back when decoding
_HEX_RUN = re.compile(r"[0-9a-fA-F](?:[\s:]?[0-9a-fA-F]){%d,}" % (MIN_ENCODED_CHARS - 1))
_HEX_SEPARATORS = re.compile(r"[\s:]+")
_WHITESPACE = re.compile(r"\s+")
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")

# Combining marks (accents, underlines, strike-throughs) and invisible characters: soft hyphen,
# Mongolian vowel separator, zero-width spaces and joiners, direction marks and overrides,
# word joiners, byte order mark.
_MARKS_AND_INVISIBLES = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]+"
)
# Letters that look like Latin ones: Cyrillic, Greek, and a few Latin variants NFKD keeps.
_LOOKALIKES = str.maketrans(
    "аеорсхуіѕјһԁԛԝӏвкмнтьүѵ" "АЕОРСХУІЅЈҺԀԚԜӀВКМНТЬҮѴ"
    "αβγεζηικνορτυχωμϲϳς" "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧϹ"
    "ıȷɑɡɩ",
    "aeopcxyisjhdqwlbkmhtbyv" "AEOPCXYISJHDQWIBKMHTbYV"
    "abyeznikvoptuxwucjs" "ABEZHIKMNOPTYXC"
    "ijagi",
)


@dataclass(frozen=True)
class Verdict:
    text: str | None  # what to send; None when the reply is withheld
    reason: str | None = None


def normalise(text: str) -> str:
    """``text`` folded to plain Latin letters where it only looks different (see the module docstring)."""
    if text.isascii():  # nothing to fold
        return text
    text = _MARKS_AND_INVISIBLES.sub("", unicodedata.normalize("NFKD", text))
    return text.translate(_LOOKALIKES)


def _words(lowered: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", lowered)


def _squash(lowered: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", lowered)


def _contains(lowered: str, squashed: str, secret: str) -> bool:
    """``secret`` (lower case) in the text as written, or with spaces, dashes and other separators between."""
    if secret in lowered:
        return True
    bare = _squash(secret)
    return len(bare) >= MIN_SQUASHED_CHARS and bare in squashed


def _base64_decodings(run: str) -> list[str]:
    run = run.translate(_URLSAFE_TO_STANDARD)
    decoded = []
    for shift in range(4):  # a junk character or three in front shift every group of 4
        chunk = run[shift:]
        if len(chunk) % 4 == 1:  # one character left over holds no whole byte
            chunk = chunk[:-1]
        try:
            decoded.append(base64.b64decode(chunk + "=" * (-len(chunk) % 4)).decode("utf-8", "replace"))
        except (binascii.Error, ValueError):
            continue
    return decoded


def _hex_decodings(run: str) -> list[str]:
    digits = _HEX_SEPARATORS.sub("", run)
    decoded = []
    for shift in range(2):
        chunk = digits[shift:]
        decoded.append(bytes.fromhex(chunk[: len(chunk) // 2 * 2]).decode("utf-8", "replace"))
    return decoded


def _decoded_runs(text: str) -> str:
    """Every base64 and hex run of ``text`` decoded at every alignment, one per line.

    Undecodable bytes become U+FFFD, so a run with junk around the leak still shows the leak;
    the runs are looked for in ``text`` and in ``text`` with all whitespace removed.
    """
    sources = [text]
    compact = _WHITESPACE.sub("", text)
    if compact != text:
        sources.append(compact)
    base64_runs = dict.fromkeys(m.group(0) for source in sources for m in _BASE64_RUN.finditer(source))
    hex_runs = dict.fromkeys(m.group(0) for source in sources for m in _HEX_RUN.finditer(source))
    decoded = [d for run in base64_runs for d in _base64_decodings(run)]
    decoded += [d for run in hex_runs for d in _hex_decodings(run)]
    return "\n".join(decoded)


def readings(reply: str) -> list[str]:
    """The reply as written, and the ways a leak could be hidden in it, undone."""
    text = normalise(reply)
    found = [reply] if text == reply else [reply, text]
    found += [text[::-1], codecs.decode(text, "rot13")]
    decoded = _decoded_runs(text)
    if decoded:
        found.append(normalise(decoded))
    return found


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
        words = _words(normalise(instructions).lower())
        self._instruction_shingles = {tuple(words[i : i + ECHO_WORDS]) for i in range(len(words) - ECHO_WORDS + 1)}
        self._shingle_starts = {shingle[0] for shingle in self._instruction_shingles}
        self._canary = normalise(canary).lower() if canary else None
        self._secrets = tuple(normalise(s).lower() for s in secrets if s)
        self._blocked = tuple(re.compile(p, re.IGNORECASE) for p in blocked_patterns)
        self._max_chars = max_chars

    def _echoes_instructions(self, lowered: str) -> bool:
        words = _words(lowered)
        starts, shingles = self._shingle_starts, self._instruction_shingles
        if starts.isdisjoint(words):
            return False
        return any(
            words[i] in starts and tuple(words[i : i + ECHO_WORDS]) in shingles
            for i in range(len(words) - ECHO_WORDS + 1)
        )

    def _leak(self, text: str) -> str | None:
        lowered = text.lower()
        squashed = _squash(lowered)
        if self._canary and _contains(lowered, squashed, self._canary):
            return "canary"
        if any(_contains(lowered, squashed, secret) for secret in self._secrets):
            return "secret"
        if self._echoes_instructions(lowered):
            return "instructions_echo"
        for pattern in self._blocked:
            if pattern.search(text):
                return f"blocked_pattern:{pattern.pattern}"
        return None

    def check(self, reply: str) -> Verdict:
        for text in readings(reply):
            reason = self._leak(text)
            if reason:
                return Verdict(None, reason)
        return Verdict(cap_length(reply, self._max_chars))
