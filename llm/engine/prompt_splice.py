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

from llm.engine.llamacpp_batch import Kept, common_prefix, continues


def matched_end(decoded: str, text: str) -> int | None:
    """Where ``decoded`` ends in ``text`` if it begins ``text`` but for whitespace, else ``None``.
    A ``decoded`` that ends in whitespace also takes the whitespace that follows in ``text``."""
    i = j = common_prefix(decoded, text)
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


def splice(tokenizer: Any, text: str, ids: list[int], kept: Iterable[Kept]) -> list[int]:
    """``ids`` (``text``'s own tokens), or a split of ``text`` that starts with more of a kept
    conversation's tokens. Only the conversations ``ids`` continues are tried (``continues``)."""

    def decode(tokens: list[int]) -> str:
        return tokenizer.decode(tokens, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    shared = [(conversation.tokens, continues(conversation, ids)) for conversation in kept]
    best, best_ids = max((n for _, n in shared if n is not None), default=0), ids
    for tokens, n in shared:
        if n is None or n >= len(tokens):
            continue
        matched, end = text_prefix_tokens(decode, tokens, text, n)
        if matched > best:
            best, best_ids = matched, tokens[:matched] + tokenizer(text[end:], add_special_tokens=False).input_ids
    return best_ids
