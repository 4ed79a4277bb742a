"""Chunked prefill computes what one whole pass computes: the same logits, the same greedy tokens."""

from __future__ import annotations

import asyncio

import pytest
import torch

from llm.engine.batch import cache_kwarg
from llm.engine.prefill import ChunkedPrefill
from llm.protocol import ChatCompletionRequest, ChatMessage
from tests.llm.conftest import make_engine


def prompts(engine, count: int = 3) -> list[list[int]]:
    """Templated prompts of different lengths (different left padding), 30 to 200 tokens."""
    texts = [("Which tent keeps me dry in the hills? " * (1 + 8 * i)) for i in range(count)]
    return [engine.tokenize_prompt((ChatMessage("user", text),)) for text in texts]


def run(engine, prompt_ids: list[list[int]], chunk_tokens: int) -> tuple[torch.Tensor, int, ChunkedPrefill]:
    prefill = ChunkedPrefill(engine.model, cache_kwarg(engine.model), 0, prompt_ids, chunk_tokens)
    chunks, logits = 0, None
    while logits is None:
        logits = prefill.step()
        chunks += 1
    return logits, chunks, prefill


@pytest.mark.parametrize("chunk_tokens", [3, 16, 100])
def test_chunked_prefill_gives_the_logits_of_one_pass(transformers_engine, chunk_tokens):
    engine = transformers_engine
    prompt_ids = prompts(engine)
    whole, one_pass, _ = run(engine, prompt_ids, chunk_tokens=10**6)
    chunked, chunks, prefill = run(engine, prompt_ids, chunk_tokens=chunk_tokens)
    width = max(len(p) for p in prompt_ids)
    assert one_pass == 1
    assert chunks == -(-width // max(1, chunk_tokens // len(prompt_ids)))  # every chunk within the budget
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-5)
    assert chunked.argmax(-1).tolist() == whole.argmax(-1).tolist()
    cache, mask, positions = prefill.result()
    assert cache.get_seq_length() == width and positions.tolist() == [len(p) for p in prompt_ids]


def test_dropping_a_row_mid_prefill_leaves_the_others_unchanged(transformers_engine):
    engine = transformers_engine
    prompt_ids = prompts(engine)
    whole, _, _ = run(engine, prompt_ids, chunk_tokens=10**6)
    prefill = ChunkedPrefill(engine.model, cache_kwarg(engine.model), 0, prompt_ids, chunk_tokens=24)
    prefill.step()
    prefill.keep([0, 2])  # the client of the middle prompt left after the first chunk
    logits = None
    while logits is None:
        logits = prefill.step()
    torch.testing.assert_close(logits, whole[[0, 2]], rtol=1e-4, atol=1e-5)


def test_a_chunk_budget_below_the_group_size_is_refused(transformers_engine):
    engine = transformers_engine
    with pytest.raises(ValueError, match="cannot hold one column of 3 prompts"):
        ChunkedPrefill(engine.model, cache_kwarg(engine.model), 0, prompts(engine), chunk_tokens=2)


def test_greedy_completions_are_the_same_with_small_prefill_chunks(tiny_model_dir):
    requests = [
        ChatCompletionRequest(messages=(ChatMessage("user", "Which stove for winter? " * (1 + 5 * i)),),
                              max_tokens=8, temperature=0)
        for i in range(4)
    ]

    async def together(on):
        return await asyncio.gather(*(on.generate(r) for r in requests))

    chunked_engine = make_engine(tiny_model_dir, prefill_chunk_tokens=8)  # 2 columns of the 4 prompts a step
    one_pass_engine = make_engine(tiny_model_dir, prefill_chunk_tokens=10**6)
    try:
        chunked, one_pass = asyncio.run(together(chunked_engine)), asyncio.run(together(one_pass_engine))
    finally:
        chunked_engine.close()
        one_pass_engine.close()
    assert chunked == one_pass
    assert all(c.completion_tokens == 8 for c in chunked)
