"""The running batch on the model: one KV cache whose rows requests join and leave between steps.

This is continuous batching over transformers' ``DynamicCache``, the way
text-generation-inference's ``CausalLMBatch`` does it:

- ``prefill`` runs the prompts of newly admitted requests together, left-padded
  to a common length, a chunk of columns per call (``prefill.py``), and returns
  their cache and last-position logits (only the last position goes through
  the LM head);
- ``merge`` appends those rows to the running batch, left-padding whichever
  cache is shorter so every row's newest token sits in the last column;
- ``decode`` runs one token for every row;
- ``keep`` drops finished rows and trims columns that became padding for every
  row, so the cache is as long as its longest live request.

A 2-D attention mask marks the padding and explicit position ids restart at 0
for every row, so each row computes what it would compute alone.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from llm.engine.prefill import ChunkedPrefill


def cache_kwarg(model: Any) -> str:
    """The forward argument that takes the cache: ``cache`` (transformers 5.x) or ``past_key_values``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


class RunningBatch:
    def __init__(self, model: Any, pad_token_id: int) -> None:
        self.model = model
        self.pad_token_id = pad_token_id
        self._cache_kwarg = cache_kwarg(model)
        self.device = model.device
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # [rows, columns], 1 for real tokens
        self.positions: torch.Tensor | None = None  # [rows], position id of each row's next token

    @property
    def size(self) -> int:
        return 0 if self.mask is None else self.mask.shape[0]

    @property
    def columns(self) -> int:
        return 0 if self.mask is None else self.mask.shape[1]

    # --- model calls --------------------------------------------------------------------------

    def prefill(self, prompts: list[list[int]], chunk_tokens: int, rows: list[Any] | None = None) -> ChunkedPrefill:
        """Start prefilling new prompts: call ``step()`` (a chunk each) until it returns the logits of
        their last positions, then ``merge(*prefill.result())``. ``rows``: what each prompt stands for."""
        return ChunkedPrefill(self.model, self._cache_kwarg, self.pad_token_id, prompts, chunk_tokens, rows)

    @torch.inference_mode()
    def decode(self, tokens: list[int]) -> torch.Tensor:
        """One step for every row, fed its latest token; return ``logits[rows, vocab]``."""
        assert self.mask is not None and len(tokens) == self.size
        mask = torch.cat([self.mask, self.mask.new_ones((self.size, 1))], dim=1)
        out = self.model(
            input_ids=torch.tensor(tokens, dtype=torch.long, device=self.device)[:, None],
            attention_mask=mask,
            position_ids=self.positions[:, None],
            use_cache=True,
            **{self._cache_kwarg: self.cache},
        )
        self.mask = mask
        self.positions = self.positions + 1
        return out.logits[:, -1, :].float()

    # --- batch surgery ------------------------------------------------------------------------

    def merge(self, cache: DynamicCache, mask: torch.Tensor, positions: torch.Tensor) -> None:
        """Append prefilled rows (from ``prefill``) below the running ones."""
        if self.cache is None:
            self.cache, self.mask, self.positions = cache, mask, positions
            return
        width = max(self.columns, mask.shape[1])
        ours, theirs = width - self.columns, width - mask.shape[1]
        for mine, new in zip(self.cache.layers, cache.layers):
            mine.keys = torch.cat([_pad_left(mine.keys, ours), _pad_left(new.keys, theirs)], dim=0)
            mine.values = torch.cat([_pad_left(mine.values, ours), _pad_left(new.values, theirs)], dim=0)
        self.mask = torch.cat([F.pad(self.mask, (ours, 0)), F.pad(mask, (theirs, 0))], dim=0)
        self.positions = torch.cat([self.positions, positions])

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in this order); trim the columns that are padding in all of them."""
        if not rows:
            self.cache = self.mask = self.positions = None
            return
        if rows == list(range(self.size)):
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        mask = self.mask.index_select(0, index)
        start = int((mask.sum(0) > 0).nonzero()[0])  # first column some row still uses
        self.mask = mask[:, start:]
        self.positions = self.positions.index_select(0, index)
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, start:]
            layer.values = layer.values.index_select(0, index)[:, :, start:]


def _pad_left(states: torch.Tensor, columns: int) -> torch.Tensor:
    """Pad ``[rows, heads, columns, dim]`` cache states with zeros on the left of the column axis."""
    return F.pad(states, (0, 0, columns, 0)) if columns else states
