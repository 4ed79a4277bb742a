"""Conversations -> token ids with an assistant mask: the loss is computed on the assistant's tokens only.

TRL's ``assistant_only_loss=True`` needs a chat template with ``{% generation %}``
markers, which the templates of Qwen2.5, SmolLM2 and Llama 3.2 do not have (TRL
swaps in a marked copy only for templates it knows verbatim). So the mask is
computed here for *any* template: render the conversation with the model's
own template, find each reply's characters by rendering the conversation up to
that reply with and without it, and mark the tokens that overlap those
characters. The reply's end-of-turn token (``<|im_end|>``) is part of the reply,
so the model learns to stop. Templates that render earlier turns differently
once more turns follow (Qwen3 drops old reasoning) are handled by one example
per reply, each with only its last reply marked.

The result (``input_ids`` + ``assistant_masks``) is what ``SFTTrainer`` accepts
as an already-tokenized dataset: it turns the mask into ``labels`` (-100
elsewhere), truncates and pads.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class TemplateError(ValueError):
    """The chat template cannot be used to find the assistant's tokens."""


def read_conversations(path: str | Path) -> list[list[dict[str, str]]]:
    """The ``messages`` of each line of a ``prepare`` output file."""
    conversations = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    conversations.append(json.loads(line)["messages"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise ValueError(f"{path}:{number}: not a line written by `python -m training prepare` "
                                     "(expected {\"messages\": [...]})") from None
    return conversations


def _render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]]) -> list[tuple[str, list[tuple[int, int]]]]:
    """[(rendered text, [(start, end) character span of each reply to learn])].

    One text with every reply marked when the template is prefix-preserving;
    otherwise one text per reply (the conversation up to it), with that reply marked.
    """
    full = _render(tokenizer, messages)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:index], add_generation_prompt=True)
        through = _render(tokenizer, messages[: index + 1])
        if not (through.startswith(prompt) and full.startswith(through)):
            return _per_reply(tokenizer, messages)
        spans.append((len(prompt), len(through.rstrip())))
    return [(full, spans)]


def _per_reply(tokenizer: Any, messages: list[dict[str, str]]) -> list[tuple[str, list[tuple[int, int]]]]:
    texts = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:index], add_generation_prompt=True)
        through = _render(tokenizer, messages[: index + 1])
        if not through.startswith(prompt):
            raise TemplateError(
                "The chat template renders the conversation before a reply differently from the generation "
                "prompt, so the reply's tokens cannot be found; use a model whose template starts each reply "
                "after `add_generation_prompt=True`'s text."
            )
        texts.append((through, [(len(prompt), len(through.rstrip()))]))
    return texts


def tokenize_conversation(tokenizer: Any, messages: list[dict[str, str]]) -> list[dict[str, list[int]]]:
    """[{"input_ids": [...], "assistant_masks": [0/1, ...]}] for one conversation (usually one example)."""
    examples = []
    for text, spans in assistant_spans(tokenizer, messages):
        # The template already holds any BOS token, as in the LLM service.
        encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        mask = [
            int(any(start < span_end and end > span_start for span_start, span_end in spans))
            for start, end in encoding["offset_mapping"]
        ]
        examples.append({"input_ids": list(encoding["input_ids"]), "assistant_masks": mask})
    return examples


def build_dataset(tokenizer: Any, path: str | Path, max_length: int | None = None):
    """A ``datasets.Dataset`` of ``input_ids`` and ``assistant_masks`` from a ``prepare`` output file.

    SFTTrainer cuts examples at ``max_length`` and drops those left with no reply
    token; this says how many, and refuses when none would be left.
    """
    from datasets import Dataset

    rows = [example for messages in read_conversations(path) for example in tokenize_conversation(tokenizer, messages)]
    if not rows:
        raise ValueError(f"{path} holds no conversations; run `python -m training prepare` on more data.")
    if max_length:
        cut = sum(len(row["input_ids"]) > max_length for row in rows)
        lost = sum(1 not in row["assistant_masks"][:max_length] for row in rows)
        if lost == len(rows):
            shortest = min(row["assistant_masks"].index(1) for row in rows if 1 in row["assistant_masks"])
            raise ValueError(
                f"{path}: no example has a reply within --max-length {max_length} tokens (the shortest prompt "
                f"before a reply is {shortest} tokens, most of it the system prompt); raise --max-length."
            )
        if cut:
            logger.warning("%d of %d examples in %s are longer than --max-length %d tokens: they are cut there%s",
                           cut, len(rows), path, max_length,
                           f", and {lost} of them keep no reply and are left out" if lost else "")
    return Dataset.from_list(rows)


def token_stats(dataset) -> dict[str, int]:
    """Tokens, and tokens the loss is computed on, of a dataset before (masks) or after (labels) SFTTrainer."""
    lengths = [len(ids) for ids in dataset["input_ids"]]
    if "labels" in dataset.column_names:
        trained = [sum(label != -100 for label in labels) for labels in dataset["labels"]]
    else:
        trained = [sum(mask) for mask in dataset["assistant_masks"]]
    return {
        "examples": len(lengths),
        "tokens": sum(lengths),
        "assistant_tokens": sum(trained),
        "max_tokens": max(lengths, default=0),
    }
