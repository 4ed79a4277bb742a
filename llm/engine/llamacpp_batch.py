"""The running batch of the llama.cpp engine, in the shape the ``ContinuousBatchingScheduler`` drives.

It offers what ``RunningBatch`` offers the transformers engine — ``prefill``
(chunked), ``merge``, ``decode``, ``keep`` — over llama.cpp's unified KV cache,
so the scheduler (queue, admission, deadlines, cancellation, metrics) and the
``Sequence``/sampling code are the same for both engines:

- every request in flight owns a *slot*: a llama.cpp sequence id (1..N);
  ``keep`` frees the slots of rows that left (``seq_rm``);
- a prefill chunk is one ``llama_decode`` over up to ``chunk_tokens`` prompt
  tokens of the group's requests, one after another (no padding); a request's
  last prompt token asks for logits;
- a decode step is one ``llama_decode`` with one token per running request,
  each at its own position in its own sequence;
- ``can_admit`` holds a request back while the KV cells it may need (its new
  prompt tokens plus ``max_tokens``) are not free, so a decode never runs out.

**Prefix cache.** Sequence 0 is reserved: ``warm_prefix`` fills it with a
prompt's KV at start-up (the system prompt every conversation starts with).
A new request's prompt is matched against it (longest common prefix, at least
its last token left to compute, which gives the first token's logits); the
matched positions join the request's sequence with ``seq_cp`` — in a unified
cache that adds the sequence id to the cells, so the shared prefix is stored
once — and only the rest is prefilled. Each lookup counts its prompt tokens
(``llm_prefix_cache_queries_total``) and the tokens it found
(``llm_prefix_cache_hit_tokens_total``), as vLLM counts its own.

**Conversations kept.** A conversation's next turn is its previous prompt,
the reply, and one more question. When a request leaves the batch its slot is
*retained* with the tokens whose KV it holds, instead of being freed; a new
prompt that shares more with a retained sequence than with the warm prefix
joins that sequence's cells (``seq_cp``, as for the warm prefix) and prefills
only the new turn. When that request leaves in turn, the sequence it came from
is dropped: the conversation is kept once, at its latest turn. Retained slots
are evicted, oldest first, when a slot or KV cells are needed, and beyond
``retained_cells`` (a quarter of the cache by default: every decode step
attends over every cell in use, so a cache full of old conversations would
slow the live ones down). The cell count is conservative: cells shared by a
request and the sequence it came from count twice.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch

from llm.engine.llamacpp_runtime import LlamaRuntime, Token

logger = logging.getLogger(__name__)

PREFIX_SEQ = 0


def common_prefix(a: Sequence, b: Sequence) -> int:
    """How many leading items ``a`` and ``b`` (two lists, or two strings) share: a binary search over
    slices, compared in C, instead of a Python loop over ~1,500 tokens for every cached sequence."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


class Kept(NamedTuple):
    """A retained conversation as the tokenizer's thread sees it: its tokens, and its last prompt's length."""

    tokens: list[int]
    prompt_len: int


def continues(kept: Kept, prompt: list[int]) -> int | None:
    """The tokens ``prompt`` shares with ``kept`` if it continues that conversation (it begins with the
    kept sequence's whole prompt: a stranger sharing only the system prompt does not), else ``None``."""
    shared = common_prefix(kept.tokens, prompt)
    return shared if shared >= kept.prompt_len else None


class LlamaBatch:
    def __init__(self, runtime: LlamaRuntime, max_batch_size: int, kv_cells: int,
                 retained_cells: int | None = None) -> None:
        self.runtime = runtime
        self.kv_cells = kv_cells
        self.retained_cells = kv_cells // 4 if retained_cells is None else retained_cells
        self.metrics: Any = None  # a ServiceMetrics; prefix-cache counters
        self.prefix_tokens: list[int] = []  # what sequence 0 holds
        self._free_slots = list(range(max_batch_size, 0, -1))  # seq ids; pop() takes the smallest
        self._reserved: dict[int, int] = {}  # running slot -> KV cells it owns or may fill (past seq 0's)
        self.tokens: dict[int, list[int]] = {}  # slot -> the tokens whose KV it holds, in position order
        self._retained: OrderedDict[int, int] = OrderedDict()  # finished slot -> its own cells; oldest first
        self._source: dict[int, int] = {}  # running slot -> the retained slot its prompt was copied from
        self._prompt_len: dict[int, int] = {}  # slot -> its request's prompt length
        # The retained sequences, replaced whole (their token lists are no longer appended to) whenever
        # they change: the event loop's thread reads it to tokenize a new prompt while this batch's works.
        self.kept: tuple[Kept, ...] = ()
        # The running rows, in the scheduler's order.
        self.slots: list[int] = []
        self.positions: list[int] = []  # position of each row's next token

    @property
    def size(self) -> int:
        return len(self.slots)

    # --- prefix cache -------------------------------------------------------------------------

    def warm_prefix(self, tokens: list[int], chunk_tokens: int, stop: Callable[[], bool] = lambda: False) -> None:
        """Compute ``tokens``' KV into the reserved sequence (before serving: the scheduler is idle)."""
        self.runtime.seq_remove(PREFIX_SEQ)
        self.prefix_tokens = []
        for start in range(0, len(tokens), chunk_tokens):
            if stop():
                self.runtime.seq_remove(PREFIX_SEQ)
                raise RuntimeError("stopped warming the prefix cache: the engine is shutting down")
            chunk = tokens[start:start + chunk_tokens]
            self.runtime.decode([Token(t, start + i, PREFIX_SEQ) for i, t in enumerate(chunk)])
        self.prefix_tokens = list(tokens)

    def prefix_match(self, prompt: list[int]) -> int:
        """How many leading prompt tokens the prefix cache holds (the last prompt token is always computed)."""
        return min(common_prefix(self.prefix_tokens, prompt), len(prompt) - 1) if self.prefix_tokens else 0

    def retained_match(self, prompt: list[int]) -> tuple[int | None, int]:
        """``(slot, tokens)``: the retained conversation ``prompt`` continues (it starts with that
        sequence's whole prompt) sharing the most with it, else ``(None, prefix_match)``."""
        best_slot, best = None, self.prefix_match(prompt)
        for slot in self._retained:
            shared = continues(Kept(self.tokens[slot], self._prompt_len[slot]), prompt)
            if shared is not None and min(shared, len(prompt) - 1) > best:
                best_slot, best = slot, min(shared, len(prompt) - 1)
        return best_slot, best

    @property
    def retained(self) -> int:
        return len(self._retained)

    def _own_cells(self, tokens: list[int]) -> int:
        return len(tokens) - common_prefix(self.prefix_tokens, tokens)

    def _retain(self, slot: int) -> None:
        """A finished row's slot keeps its KV for the conversation's next turn (replacing its last one)."""
        self._reserved.pop(slot, None)
        source = self._source.pop(slot, None)
        if source in self._retained:
            self._evict(source)
        self._retained[slot] = self._own_cells(self.tokens.get(slot, []))
        while self._retained and sum(self._retained.values()) > self.retained_cells:
            self._evict(next(iter(self._retained)))
        self._publish()

    def _publish(self) -> None:
        self.kept = tuple(Kept(self.tokens[slot], self._prompt_len[slot]) for slot in self._retained)

    def forget_conversations(self) -> None:
        """Drop every retained conversation (the warm prefix stays)."""
        for slot in list(self._retained):
            self._evict(slot)

    def _evict(self, slot: int) -> None:
        del self._retained[slot]
        self.runtime.seq_remove(slot)
        self.tokens.pop(slot, None)
        self._prompt_len.pop(slot, None)
        self._publish()
        self._free_slots.append(slot)
        self._free_slots.sort(reverse=True)

    def _make_room(self, cells: int, slots: int, spare: set[int]) -> None:
        """Evict retained conversations, oldest first and ``spare`` last, until ``slots`` slots are free
        and ``cells`` more cells fit in the cache."""
        for slot in sorted(self._retained, key=lambda s: s in spare):  # stable: oldest first within each
            if len(self._free_slots) >= slots and self._cells_in_use() + cells <= self.kv_cells:
                return
            self._evict(slot)

    def _cells_in_use(self) -> int:
        return len(self.prefix_tokens) + sum(self._reserved.values()) + sum(self._retained.values())

    # --- admission ----------------------------------------------------------------------------

    def cells_needed(self, sequence: Any) -> int:
        return len(sequence.prompt_ids) - self.prefix_match(sequence.prompt_ids) + sequence.max_new_tokens

    def can_admit(self, sequences: list[Any]) -> bool:
        """Whether slots and KV cells are free for ``sequences`` on top of everything admitted so far
        (retained conversations count as free: they are evicted to make room)."""
        if len(sequences) > len(self._free_slots) + len(self._retained):
            return False
        used = len(self.prefix_tokens) + sum(self._reserved.values())
        return used + sum(self.cells_needed(s) for s in sequences) <= self.kv_cells

    # --- scheduler interface ------------------------------------------------------------------

    def prefill(self, prompts: list[list[int]], chunk_tokens: int, rows: list[Any] | None = None) -> LlamaPrefill:
        return LlamaPrefill(self, prompts, chunk_tokens, rows)

    def merge(self, slots: list[int], positions: list[int]) -> None:
        self.slots.extend(slots)
        self.positions.extend(positions)

    def decode(self, tokens: list[int]) -> torch.Tensor:
        assert len(tokens) == self.size
        batch = [Token(t, p, s, logits=True) for t, p, s in zip(tokens, self.positions, self.slots)]
        logits = self.runtime.decode(batch)
        self.positions = [p + 1 for p in self.positions]
        for token, slot in zip(tokens, self.slots):
            self.tokens[slot].append(token)
        return torch.from_numpy(logits)

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in this order); the others' slots are retained for their next turn."""
        kept = set(rows)
        for row, slot in enumerate(self.slots):
            if row not in kept:
                self._retain(slot)
        self.slots = [self.slots[row] for row in rows]
        self.positions = [self.positions[row] for row in rows]

    # --- slots --------------------------------------------------------------------------------

    def take_slot(self, reserve: int) -> int:
        slot = self._free_slots.pop()
        self._reserved[slot] = reserve
        self.tokens[slot] = []
        return slot

    def release(self, slot: int) -> None:
        """Free ``slot`` and its cells (a prefill that never finished: nothing worth keeping)."""
        self.runtime.seq_remove(slot)
        self.tokens.pop(slot, None)
        self._source.pop(slot, None)
        self._prompt_len.pop(slot, None)
        if self._reserved.pop(slot, None) is not None:
            self._free_slots.append(slot)
            self._free_slots.sort(reverse=True)

    def count_lookup(self, queried: int, hit: int) -> None:
        if self.metrics is not None:
            self.metrics.observe_prefix_cache(queried, hit)


class LlamaPrefill:
    """The prompts of newly admitted requests, a chunk of at most ``chunk_tokens`` tokens per ``step``."""

    def __init__(self, batch: LlamaBatch, prompts: list[list[int]], chunk_tokens: int, rows: list[Any] | None) -> None:
        self.batch = batch
        self.chunk_tokens = min(chunk_tokens, batch.runtime.n_batch)
        self.rows = list(rows) if rows is not None else list(range(len(prompts)))
        self.prompts = [list(p) for p in prompts]
        self.slots: list[int] = []
        self.done: list[int] = []  # prompt tokens of each row already in its sequence
        self.logits: list[np.ndarray | None] = [None] * len(prompts)
        sources = [batch.retained_match(prompt) for prompt in self.prompts]
        reserves = [len(prompt) - batch.prefix_match(prompt) + getattr(row, "max_new_tokens", 0)
                    for prompt, row in zip(self.prompts, self.rows)]
        # Room first, evicting the conversations these prompts continue last: if one must go, its
        # cells are gone and the prompt falls back to the warm prefix.
        batch._make_room(sum(reserves), len(self.prompts), {slot for slot, _ in sources if slot is not None})
        for prompt, (source, hit), reserve in zip(self.prompts, sources, reserves):
            if source is not None and source not in batch._retained:
                source, hit = None, batch.prefix_match(prompt)
            slot = batch.take_slot(reserve)
            batch._prompt_len[slot] = len(prompt)
            if hit:
                batch.runtime.seq_copy(PREFIX_SEQ if source is None else source, slot, hit)
                batch.tokens[slot] = prompt[:hit]
                if source is not None:
                    batch._source[slot] = source
            batch.count_lookup(len(prompt), hit)
            logger.debug("Prefix cache: %d of %d prompt tokens from %s", hit, len(prompt),
                         "the warm prefix" if source is None else f"kept sequence {source}")
            self.slots.append(slot)
            self.done.append(hit)

    @property
    def finished(self) -> bool:
        return all(logits is not None for logits in self.logits)

    def step(self) -> torch.Tensor | None:
        """Run the next chunk; return ``logits[rows, vocab]`` of each prompt's last token after the last chunk."""
        tokens: list[Token] = []
        finishing: list[int] = []
        budget = self.chunk_tokens
        for index, (prompt, slot) in enumerate(zip(self.prompts, self.slots)):
            if budget == 0:
                break
            start = self.done[index]
            end = min(len(prompt), start + budget)
            if start >= end:
                continue
            for position in range(start, end):
                last = position == len(prompt) - 1
                tokens.append(Token(prompt[position], position, slot, logits=last))
            self.batch.tokens[slot].extend(prompt[start:end])
            if end == len(prompt):
                finishing.append(index)
            self.done[index] = end
            budget -= end - start
        logits = self.batch.runtime.decode(tokens)
        for row, index in enumerate(finishing):
            self.logits[index] = logits[row]
        if not self.finished:
            return None
        return torch.from_numpy(np.stack(self.logits))

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (indices, in this order); free the others' slots."""
        kept = set(rows)
        for index, slot in enumerate(self.slots):
            if index not in kept:
                self.batch.release(slot)
        for name in ("rows", "prompts", "slots", "done", "logits"):
            values = getattr(self, name)
            setattr(self, name, [values[i] for i in rows])

    def discard(self) -> None:
        """The group is dropped as a whole (cancelled, failed or shutting down): free every slot."""
        self.keep([])

    def result(self) -> tuple[list[int], list[int]]:
        """``(slots, next_positions)`` for ``LlamaBatch.merge``, once ``finished``."""
        assert self.finished
        return list(self.slots), [len(p) for p in self.prompts]
