"""Choosing the next token for every row of a batch, each row with its own sampling parameters.

``SamplingParams.resolve`` merges a request's ``temperature``/``top_p`` over the
model's ``generation_config`` (as ``model.generate`` and vLLM do);
``sample_next_tokens`` then applies, in ``generate``'s order, the repetition
penalty and suppressed tokens (also for greedy rows), then temperature,
top-k, top-p and min-p, and draws each sampled row from its own seeded
``torch.Generator``, so a request's seed gives the same text whatever else
shares its batch.

The work is vectorised over the batch: one ``topk`` for all sampled rows
(width: the largest top-k among them, the whole vocabulary when one has
none), masks per row, one softmax; only the draw loops over rows.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from llm.protocol import ChatCompletionRequest


@dataclass(frozen=True)
class SamplingParams:
    greedy: bool
    temperature: float = 1.0
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1.0: off
    min_p: float = 0.0  # 0.0: off
    repetition_penalty: float = 1.0  # 1.0: off

    @classmethod
    def resolve(cls, request: ChatCompletionRequest, defaults: Any) -> SamplingParams:
        """The request's values over the model's ``generation_config`` (``defaults``).

        ``temperature=0`` means greedy; any other temperature means sampling,
        even when the model's default is greedy.
        """
        penalty = float(getattr(defaults, "repetition_penalty", None) or 1.0)
        if request.temperature == 0.0:
            return cls(greedy=True, repetition_penalty=penalty)
        do_sample = bool(getattr(defaults, "do_sample", False)) or request.temperature is not None
        if not do_sample:
            return cls(greedy=True, repetition_penalty=penalty)
        temperature = request.temperature if request.temperature is not None else getattr(defaults, "temperature", None)
        top_p = request.top_p if request.top_p is not None else getattr(defaults, "top_p", None)
        return cls(
            greedy=False,
            temperature=float(temperature if temperature is not None else 1.0),
            top_k=int(getattr(defaults, "top_k", None) or 0),
            top_p=float(top_p if top_p is not None else 1.0),
            min_p=float(getattr(defaults, "min_p", None) or 0.0),
            repetition_penalty=penalty,
        )


def new_generator(seed: int | None) -> torch.Generator:
    """A CPU generator for one request: seeded by the request, else at random."""
    generator = torch.Generator()
    generator.manual_seed(seed if seed is not None else secrets.randbits(63))
    return generator


def sample_next_tokens(
    logits: torch.Tensor,
    params: Sequence[SamplingParams],
    generators: Sequence[torch.Generator],
    penalty_ids: Sequence[torch.Tensor | None],
    suppress_ids: torch.Tensor | None = None,
) -> list[int]:
    """One token per row of ``logits`` (``[batch, vocab]``, float32; modified in place).

    ``penalty_ids[i]`` holds the distinct token ids row ``i`` has seen (prompt and
    output), for its repetition penalty; ``suppress_ids`` are never chosen.
    """
    for row, (p, ids) in enumerate(zip(params, penalty_ids)):
        if p.repetition_penalty != 1.0 and ids is not None and ids.numel():
            scores = logits[row, ids]
            logits[row, ids] = torch.where(
                scores < 0, scores * p.repetition_penalty, scores / p.repetition_penalty
            )
    if suppress_ids is not None and suppress_ids.numel():
        logits[:, suppress_ids] = float("-inf")

    tokens = [0] * len(params)
    greedy_rows = [i for i, p in enumerate(params) if p.greedy]
    if greedy_rows:
        chosen = logits[greedy_rows].argmax(dim=-1).tolist()
        for row, token in zip(greedy_rows, chosen):
            tokens[row] = token
    sampled_rows = [i for i, p in enumerate(params) if not p.greedy]
    if not sampled_rows:
        return tokens

    probs, indices = sampling_distribution(logits[sampled_rows], [params[i] for i in sampled_rows])
    for j, row in enumerate(sampled_rows):
        choice = torch.multinomial(probs[j], 1, generator=generators[row])
        tokens[row] = int(indices[j, choice])
    return tokens


def sampling_distribution(
    logits: torch.Tensor, params: Sequence[SamplingParams]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs, token_ids)``, both ``[rows, width]``: each row's distribution after temperature,
    top-k, top-p and min-p, over its ``width`` best tokens (largest first)."""
    vocab = logits.shape[-1]
    scores = logits / torch.tensor([[max(p.temperature, 1e-5)] for p in params])
    top_ks = [p.top_k if 0 < p.top_k < vocab else vocab for p in params]
    width = max(top_ks)
    values, indices = scores.topk(width, dim=-1)  # sorted, largest first
    rank = torch.arange(width)
    values = values.masked_fill(rank[None, :] >= torch.tensor(top_ks)[:, None], float("-inf"))
    probs = values.softmax(dim=-1)
    top_ps = torch.tensor([p.top_p for p in params])
    if (top_ps < 1.0).any():
        # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
        mass_before = probs.cumsum(dim=-1) - probs
        values = values.masked_fill(mass_before >= top_ps[:, None], float("-inf"))
        probs = values.softmax(dim=-1)
    min_ps = torch.tensor([p.min_p for p in params])
    if (min_ps > 0).any():
        floor = probs[:, :1] * min_ps[:, None]
        values = values.masked_fill(probs < floor, float("-inf"))
        probs = values.softmax(dim=-1)
    return probs, indices
