"""Tokenize a conversation's next prompt so that it starts with the tokens already in the KV cache.

A conversation's next turn carries the model's last reply back as text. The
tokenizer need not split that text into the ids the model generated (a
generated sequence is often not the tokenizer's own split, and a random model's
almost never is), so a token-by-token match with the kept sequence stops early
in the reply and the rest of the history is computed again. ``splice`` matches
on the text instead: it finds the longest run of a kept sequence's tokens whose
decoded text begins the new prompt's text, keeps those ids, and tokenizes only
what follows. Whitespace may differ (the action server strips a reply's ends):
the model then reads its reply with the whitespace it wrote, the rest as sent.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from llm.engine.llamacpp_batch import common_prefix


def _same_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of ``a`` and ``b`` (slices compared in C, log n times)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def matched_end(decoded: str, text: str) -> int | None:
    """Where ``decoded`` ends in ``text`` if it begins ``text`` but for whitespace, else ``None``.
    A ``decoded`` that ends in whitespace also takes the whitespace that follows in ``text``."""
    i = j = _same_prefix(decoded, text)
    while i < len(decoded):
        if decoded[i].isspace():
            i += 1
        elif j < len(text) and text[j].isspace():
            j += 1
        elif j < len(text) and decoded[i] == text[j]:
            i, j = i + 1, j + 1
        else:
            return None
    if decoded[-1:].isspace():
        while j < len(text) and text[j].isspace():
            j += 1
    return j


def text_prefix_tokens(decode: Callable[[list[int]], str], cached: list[int], text: str, known: int) -> tuple[int, int]:
    """``(tokens, end)``: the most leading tokens of ``cached`` whose decoded text begins ``text`` (but
    for whitespace; at least ``known`` tokens, which the caller knows to match) and where that text
    ends in ``text``. A binary search; the answer it returns is checked."""
    low, high = known, len(cached)
    while low < high:
        middle = (low + high + 1) // 2
        if matched_end(decode(cached[:middle]), text) is not None:
            low = middle
        else:
            high = middle - 1
    end = matched_end(decode(cached[:low]), text)
    if end is None:
        return known, len(decode(cached[:known]))
    return low, end


def splice(tokenizer: Any, text: str, ids: list[int], kept: Iterable[tuple[int, ...]], floor: int) -> list[int]:
    """``ids`` (``text``'s own tokens), or a split of ``text`` that starts with more of a kept sequence's
    tokens. Only sequences sharing more than ``floor`` tokens with ``ids`` (more than the warm system
    prompt: the same conversation) are tried."""

    def decode(tokens: list[int]) -> str:
        return tokenizer.decode(tokens, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    best, best_ids = common_prefix_with_any(ids, kept), ids
    for cached in kept:
        shared = common_prefix(list(cached), ids)
        if shared <= floor or shared >= len(cached):
            continue
        matched, end = text_prefix_tokens(decode, list(cached), text, shared)
        if matched <= max(shared, best):
            continue
        best, best_ids = matched, list(cached[:matched]) + tokenizer(text[end:], add_special_tokens=False).input_ids
    return best_ids


def common_prefix_with_any(ids: list[int], kept: Iterable[tuple[int, ...]]) -> int:
    return max((common_prefix(list(cached), ids) for cached in kept), default=0)
