"""A sequence's text: incremental decoding, stop strings held back and cut, end conditions."""

from __future__ import annotations

import pytest
import torch

from llm.engine.sampling import SamplingParams
from llm.engine.sequence import Sequence
from llm.protocol import ChatCompletionRequest, ChatMessage, Completion, FinishReason, TextDelta


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def make_sequence(tokenizer, stop=(), max_new_tokens=50, ignore_eos=False) -> Sequence:
    request = ChatCompletionRequest(
        messages=(ChatMessage("user", "hi"),), max_tokens=max_new_tokens, stop=tuple(stop), ignore_eos=ignore_eos
    )
    eos = frozenset({tokenizer.convert_tokens_to_ids("<|im_end|>")})
    return Sequence(request, [1, 2, 3], max_new_tokens, SamplingParams(greedy=True), torch.Generator(),
                    tokenizer, eos, sink=lambda events: None)


def feed(sequence: Sequence, token_ids: list[int]) -> list:
    events = []
    for token in token_ids:
        events += sequence.append(token, now=0.0)
        if sequence.done:
            break
    return events


TEXT = " The tent keeps you dry when the rain comes in sideways."


def test_deltas_add_up_to_the_text_and_length_ends_it(tokenizer):
    ids = tokenizer(TEXT, add_special_tokens=False).input_ids
    events = feed(make_sequence(tokenizer, max_new_tokens=len(ids)), ids)
    *deltas, final = events
    assert "".join(d.text for d in deltas) == final.text == TEXT
    assert (final.completion_tokens, final.finish_reason) == (len(ids), FinishReason.LENGTH)
    assert len(deltas) >= len(ids) - 1


def test_stop_string_is_held_back_then_cut(tokenizer):
    ids = tokenizer(TEXT, add_special_tokens=False).input_ids
    sequence = make_sequence(tokenizer, stop=["the rain"])
    events = feed(sequence, ids)
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    final = events[-1]
    assert isinstance(final, Completion) and final.finish_reason is FinishReason.STOP
    assert final.text == streamed == " The tent keeps you dry when "
    assert final.completion_tokens < len(ids)


def test_end_of_sequence_ends_with_stop_unless_ignored(tokenizer):
    ids = tokenizer(" warm tent", add_special_tokens=False).input_ids + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    final = feed(make_sequence(tokenizer), ids)[-1]
    assert (final.text, final.finish_reason, final.completion_tokens) == (" warm tent", FinishReason.STOP, len(ids))
    ignoring = make_sequence(tokenizer, ignore_eos=True)
    feed(ignoring, ids)
    assert not ignoring.done


def test_cancel_is_seen_from_another_thread(tokenizer):
    sequence = make_sequence(tokenizer)
    assert not sequence.cancelled
    sequence.cancel()
    assert sequence.cancelled
