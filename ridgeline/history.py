"""The conversation as the LLM sees it: the one rule for the action server's prompt
(``actions.prompt``) and for the review tool, which rebuilds a judged reply's prompt
(``review.verdicts``) for the preference pairs.

- ``merge``: consecutive messages of one role joined (Rasa often sends two bot messages in a row;
  several chat templates, Llama's and Gemma's, reject roles that do not alternate);
- ``window_start``: where the recent history starts, at most ``max_messages`` messages, starting
  with the visitor;
- ``HISTORY_TURNS``: how many messages the LLM gets by default (``ACTIONS_LLM_HISTORY_TURNS``).

Messages are ``{"role": "user" | "assistant", "content": str}``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

HISTORY_TURNS = 8


def merge(turns: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """Consecutive messages of one role joined with a newline, oldest first."""
    merged: list[dict[str, str]] = []
    for turn in turns:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1] = {"role": turn["role"], "content": merged[-1]["content"] + "\n" + turn["content"]}
        else:
            merged.append({"role": turn["role"], "content": turn["content"]})
    return merged


def window_start(merged: Sequence[Mapping[str, str]], max_messages: int) -> int:
    """Where the recent history starts: at most ``max_messages`` messages, starting with the user.

    The oldest messages go in blocks of ``max_messages // 2``, not one turn at a
    time, so the model sees between half and all of ``max_messages`` and the
    start of the history moves every few turns only: until it moves, each turn's
    prompt begins with the previous turn's, and the LLM service computes only
    the new messages (its cache keeps each conversation's last turn). Several
    chat templates reject a conversation that opens with the assistant.
    """
    start = 0
    if len(merged) > max_messages:
        block = max(1, max_messages // 2)
        excess = len(merged) - max_messages
        start = -(-excess // block) * block  # drop the fewest whole blocks that leave max_messages
    while start < len(merged) and merged[start]["role"] != "user":
        start += 1
    return start
