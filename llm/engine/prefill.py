"""Chunked prefill: the prompts of newly admitted requests, run through the model a chunk at a time.

A prompt of a few thousand tokens takes seconds to tens of seconds on a CPU.
Run in one forward pass, nothing else can happen meanwhile: running streams
stall, and a request whose client has gone keeps the model busy until the pass
ends. ``ChunkedPrefill`` splits the work into chunks of at most
``chunk_tokens`` tokens (rows x columns, padding included), one chunk per
scheduler step, so the scheduler reaches a step boundary often: there it can
drop rows whose client left (``keep``), run a decode step for the running
batch, or stop for a shutdown.

The prompts are left-padded to a common width (``RunningBatch`` keeps every
row's newest token in the last column); each chunk is the next columns of every row, fed with the cache of the
columns before it, a 2-D attention mask over all columns so far and explicit
position ids. Each row therefore computes what it would compute in one pass
(tested: the same logits and greedy tokens). When the last column is done,
``step`` returns the last position's logits and ``result`` the cache, mask and
next positions that ``RunningBatch.merge`` takes.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache


class ChunkedPrefill:
    def __init__(
        self,
        model: Any,
        cache_kwarg: str,
        pad_token_id: int,
        prompts: list[list[int]],
        chunk_tokens: int,
        rows: list[Any] | None = None,
    ) -> None:
        if chunk_tokens < len(prompts):
            raise ValueError(f"A chunk of {chunk_tokens} tokens cannot hold one column of {len(prompts)} prompts.")
        self.model = model
        self.chunk_tokens = chunk_tokens
        self._cache_kwarg = cache_kwarg
        self.rows = list(rows) if rows is not None else list(range(len(prompts)))  # what each row stands for
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt):] = 1
        device = model.device
        self.ids = ids.to(device)
        self.mask = mask.to(device)
        self.positions = (mask.cumsum(-1) - 1).clamp(min=0).to(device)
        self.cache = DynamicCache()
        self.done_columns = 0

    @property
    def width(self) -> int:
        return self.ids.shape[1]

    @property
    def finished(self) -> bool:
        return self.done_columns >= self.width

    @property
    def columns_per_chunk(self) -> int:
        return max(1, self.chunk_tokens // len(self.rows))

    @torch.inference_mode()
    def step(self) -> torch.Tensor | None:
        """Run the next chunk; return ``logits[rows, vocab]`` of the last position after the last chunk."""
        start, end = self.done_columns, min(self.done_columns + self.columns_per_chunk, self.width)
        out = self.model(
            input_ids=self.ids[:, start:end],
            attention_mask=self.mask[:, :end],
            position_ids=self.positions[:, start:end],
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_kwarg: self.cache},
        )
        self.done_columns = end
        return out.logits[:, -1, :].float() if self.finished else None

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (indices, in this order), e.g. when the others' clients left."""
        index = torch.tensor(rows, dtype=torch.long, device=self.ids.device)
        self.rows = [self.rows[row] for row in rows]
        self.ids = self.ids.index_select(0, index)
        self.mask = self.mask.index_select(0, index)
        self.positions = self.positions.index_select(0, index)
        for layer in self.cache.layers:
            if getattr(layer, "keys", None) is not None and layer.keys.numel():
                layer.keys = layer.keys.index_select(0, index)
                layer.values = layer.values.index_select(0, index)

    def result(self) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
        """``(cache, mask, next_positions)`` for ``RunningBatch.merge``, once ``finished``."""
        assert self.finished
        return self.cache, self.mask, self.mask.sum(-1)
