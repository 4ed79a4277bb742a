"""Batched sampling equals transformers' logits processors, row by row, with per-request seeds."""

from __future__ import annotations

import pytest
import torch
from transformers import GenerationConfig
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from llm.engine.sampling import SamplingParams, new_generator, sample_next_tokens, sampling_distribution
from llm.protocol import ChatCompletionRequest, ChatMessage

VOCAB = 50


def hf_distribution(logits: torch.Tensor, p: SamplingParams) -> torch.Tensor:
    scores = logits[None].clone()
    for warper in (
        TemperatureLogitsWarper(p.temperature),
        TopKLogitsWarper(p.top_k) if p.top_k else None,
        TopPLogitsWarper(p.top_p) if p.top_p < 1 else None,
        MinPLogitsWarper(p.min_p) if p.min_p else None,
    ):
        if warper is not None:
            scores = warper(None, scores)
    return scores.softmax(-1)[0]


PARAMS = [
    SamplingParams(greedy=False, temperature=0.7, top_k=20, top_p=0.8),
    SamplingParams(greedy=False, temperature=1.3),
    SamplingParams(greedy=False, temperature=1.0, top_p=0.5),
    SamplingParams(greedy=False, temperature=0.9, top_k=5, min_p=0.2),
]


def test_each_rows_distribution_equals_transformers_warpers():
    torch.manual_seed(0)
    logits = torch.randn(len(PARAMS), VOCAB) * 3
    probs, indices = sampling_distribution(logits.clone(), PARAMS)
    for row, p in enumerate(PARAMS):
        ours = torch.zeros(VOCAB).scatter(0, indices[row], probs[row])
        torch.testing.assert_close(ours, hf_distribution(logits[row], p), atol=1e-6, rtol=1e-5)


def test_repetition_penalty_and_greedy_equal_transformers():
    torch.manual_seed(1)
    logits = torch.randn(2, VOCAB)
    seen = [torch.tensor([3, 7, 11]), torch.tensor([0, 1])]
    params = [SamplingParams(greedy=True, repetition_penalty=1.3), SamplingParams(greedy=True)]
    tokens = sample_next_tokens(logits.clone(), params, [new_generator(0)] * 2, seen)
    penalised = RepetitionPenaltyLogitsProcessor(1.3)(seen[0][None], logits[:1].clone())
    assert tokens == [int(penalised.argmax()), int(logits[1].argmax())]


def test_suppressed_tokens_are_never_chosen():
    logits = torch.zeros(3, VOCAB)
    logits[:, 4] = 10.0
    params = [SamplingParams(greedy=True), SamplingParams(greedy=False), SamplingParams(greedy=False, top_k=2)]
    tokens = sample_next_tokens(logits, params, [new_generator(s) for s in range(3)], [None] * 3,
                                suppress_ids=torch.tensor([4]))
    assert 4 not in tokens


def test_a_seed_gives_the_same_draws_whatever_shares_the_batch():
    torch.manual_seed(2)
    logits = torch.randn(3, VOCAB)
    p = SamplingParams(greedy=False, temperature=1.0)
    alone = sample_next_tokens(logits[1:2].clone(), [p], [new_generator(42)], [None])
    batched = sample_next_tokens(logits.clone(), [p] * 3, [new_generator(1), new_generator(42), new_generator(3)],
                                 [None] * 3)
    assert batched[1] == alone[0]


@pytest.mark.parametrize(
    ("request_values", "expected"),
    [
        ({"temperature": 0.0}, SamplingParams(greedy=True, repetition_penalty=1.05)),
        ({}, SamplingParams(greedy=False, temperature=0.7, top_k=20, top_p=0.8, repetition_penalty=1.05)),
        ({"temperature": 1.2, "top_p": 0.5},
         SamplingParams(greedy=False, temperature=1.2, top_k=20, top_p=0.5, repetition_penalty=1.05)),
    ],
)
def test_request_values_override_the_models_generation_config(request_values, expected):
    defaults = GenerationConfig(do_sample=True, temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05)
    request = ChatCompletionRequest(messages=(ChatMessage("user", "hi"),), max_tokens=1, **request_values)
    assert SamplingParams.resolve(request, defaults) == expected


def test_a_greedy_model_default_samples_when_the_request_sets_a_temperature():
    request = ChatCompletionRequest(messages=(ChatMessage("user", "hi"),), max_tokens=1, temperature=0.5)
    assert SamplingParams.resolve(request, GenerationConfig(do_sample=False)).greedy is False
    plain = ChatCompletionRequest(messages=(ChatMessage("user", "hi"),), max_tokens=1)
    assert SamplingParams.resolve(plain, GenerationConfig(do_sample=False)).greedy is True
