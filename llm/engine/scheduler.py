"""How requests share the model: continuous batching on one worker thread.

``ContinuousBatchingScheduler`` owns a bounded FIFO of waiting sequences, the
group of admitted sequences being prefilled, and the running batch. Its thread
loops over *steps*; each step is one model call, either a prefill chunk (at
most ``prefill_chunk_tokens`` prompt tokens, ``prefill.py``) or one decode step
for the whole running batch, alternating while both have work. At every step
boundary, before the model call, it

1. drops waiting, prefilling and running sequences whose client left
   (``cancel``) or whose deadline passed, so a request that was cancelled takes
   part in at most the step that was already under way;
2. admits waiting sequences into free batch slots as a new prefill group (when
   none is in progress);
3. runs the step: a prefill chunk (the last one samples each new row's first
   token and merges the rows into the running batch) or a decode step (one
   token per row), then retires rows that finished.

A step whose every sequence was cancelled (or that a ``close`` caught) does not
run to its end: a hook before each decoder layer ends it there, so abandoned
work stops within one layer's time, not one whole prefill chunk's. Its partial
results are thrown away with the sequences it served.

Requests therefore join and leave the batch between any two steps (iteration-
level scheduling, as in Orca/vLLM/TGI, with chunked prefill as in vLLM and
Sarathi) instead of waiting for a whole batch or a whole long prompt.
``submit`` is called on the event loop and never blocks: with the queue full it
raises ``QueueFull`` at once. Results go back through each sequence's sink.
``close`` stops the loop at the next step boundary and ends every queued and
running sequence with ``ShuttingDown``.

The loop is the only code that touches the model after warm-up, so no lock
guards the model; one lock guards the waiting queue.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable

import torch

from llm.engine.batch import RunningBatch
from llm.engine.prefill import ChunkedPrefill
from llm.engine.sampling import sample_next_tokens
from llm.engine.sequence import Event, Sequence
from llm.errors import DeadlineExceeded, QueueFull, ShuttingDown

logger = logging.getLogger(__name__)

PREFILL_CHUNK = "prefill_chunk"
DECODE = "decode"
ABORTED = "aborted"


class StepAbandoned(Exception):
    """Raised between two decoder layers when nobody waits for the step under way any more."""


def decoder_layers(model: Any) -> list[torch.nn.Module]:
    """The model's transformer blocks (``model.model.layers`` in Llama/Qwen-style models), else none."""
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) and type(module[0]).__name__.endswith(
                ("DecoderLayer", "Block")):
            return list(module)
    return []
# Called on the scheduler thread just before each step's model call: (step index, kind, sequences in it).
StepListener = Callable[[int, str, list[Sequence]], None]


class ContinuousBatchingScheduler:
    def __init__(
        self,
        model: Any = None,
        pad_token_id: int = 0,
        max_batch_size: int = 16,
        max_queue_size: int = 64,
        timeout_s: float = 0.0,
        prefill_chunk_tokens: int = 256,
        suppress_ids: torch.Tensor | None = None,
        metrics: Any = None,
        batch: Any = None,
    ) -> None:
        """Schedule over a transformers ``model`` (a ``RunningBatch`` is built on it), or over ``batch``:
        any object with ``RunningBatch``'s ``prefill``/``decode``/``merge``/``keep`` (the llama.cpp engine's),
        optionally ``can_admit(sequences)`` to hold back requests its memory cannot take yet."""
        if prefill_chunk_tokens < 1:
            raise ValueError(f"prefill_chunk_tokens must be 1 or more, got {prefill_chunk_tokens}.")
        self.max_batch_size = max_batch_size
        self.max_queue_size = max_queue_size
        self.timeout_s = timeout_s
        self.prefill_chunk_tokens = prefill_chunk_tokens
        self.metrics = metrics  # a ServiceMetrics, attached by the HTTP layer; optional
        self.step_index = 0  # step boundaries passed so far; read by ``cancel``
        self._batch = batch if batch is not None else RunningBatch(model, pad_token_id)
        self._can_admit = getattr(self._batch, "can_admit", None)
        self._suppress_ids = suppress_ids
        self._running: list[Sequence] = []
        self._prefilling: ChunkedPrefill | None = None  # its ``rows`` are the sequences being prefilled
        self._prefill_next = True  # which kind of step goes first when both have work
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._lock = threading.Condition()
        self._closing = False
        self._step_listeners: list[StepListener] = []
        self._step_sequences: list[Sequence] = []  # those the step under way serves
        self._step_kind = DECODE
        for layer in decoder_layers(model) if model is not None else []:
            layer.register_forward_pre_hook(self._abandon_if_nobody_waits)
        self._thread = threading.Thread(target=self._loop, name="llm-scheduler", daemon=True)
        self._thread.start()

    # --- event loop side ----------------------------------------------------------------------

    @property
    def num_running(self) -> int:
        """Sequences on the model: the running batch and the group being prefilled."""
        prefilling = self._prefilling
        return len(self._running) + (len(prefilling.rows) if prefilling is not None else 0)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    @property
    def alive(self) -> bool:
        """The worker thread still runs (``close`` joins it, with a time limit)."""
        return self._thread.is_alive()

    def submit(self, sequence: Sequence) -> None:
        """Queue a sequence; raise ``QueueFull`` or ``ShuttingDown`` instead of waiting."""
        with self._lock:
            if self._closing:
                raise ShuttingDown()
            free_slots = self.max_batch_size - self.num_running
            if len(self._waiting) >= self.max_queue_size + max(free_slots, 0):
                raise QueueFull(len(self._waiting))
            if self.timeout_s:
                sequence.deadline = sequence.timings.arrival + self.timeout_s
            self._waiting.append(sequence)
            self._lock.notify()

    def cancel(self, sequence: Sequence) -> None:
        """The sequence's client is gone: it leaves at the next step boundary, queued or running."""
        sequence.cancel()
        # Read after the flag is set: a step that begins later sees the flag, so the sequence
        # takes part in no step after ``cancelled_at_step``.
        sequence.cancelled_at_step = self.step_index
        with self._lock:
            self._lock.notify()

    def add_step_listener(self, listener: StepListener) -> None:
        """Call ``listener(step_index, kind, sequences)`` before each step (on the scheduler thread; keep it quick)."""
        self._step_listeners.append(listener)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop at the next step boundary, failing running and waiting sequences with ``ShuttingDown``."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    # --- scheduler thread ---------------------------------------------------------------------

    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                with self._lock:
                    while not self._closing and not self._waiting and not self._has_work():
                        self._lock.wait()
                    if self._closing:
                        break
                    self.step_index += 1
                    now = time.perf_counter()
                    self._drop_waiting(now)
                    if self._prefilling is None:
                        self._start_prefill(now)
                try:
                    self._drop_running(now)
                    self._step()
                except StepAbandoned:
                    self._abandon_step()
                except Exception as exc:  # a bug or an OOM: fail this batch, keep serving
                    on_model = self._on_model()
                    logger.exception("Generation step failed; failing the %d requests on the model", len(on_model))
                    self._fail_all(on_model, exc)
                    self._running = []
                    self._discard_prefill()
                    self._batch.keep([])
        now = time.perf_counter()
        with self._lock:
            waiting, self._waiting = list(self._waiting), collections.deque()
        self._fail_all(self._on_model() + waiting, ShuttingDown(), now)
        self._running = []
        self._discard_prefill()
        self._batch.keep([])

    def _abandon_if_nobody_waits(self, module: Any, args: Any) -> None:
        """Before each decoder layer (scheduler thread): end the step if all its clients left."""
        sequences = self._step_sequences
        if self._closing or (sequences and all(s.cancelled for s in sequences)):
            raise StepAbandoned()

    def _discard_prefill(self) -> None:
        """Forget the group being prefilled, letting its batch release what it holds (llama.cpp's KV slots)."""
        group, self._prefilling = self._prefilling, None
        discard = getattr(group, "discard", None)
        if discard is not None:
            discard()

    def _has_work(self) -> bool:
        return bool(self._running) or self._prefilling is not None

    def _on_model(self) -> list[Sequence]:
        return self._running + (self._prefilling.rows if self._prefilling is not None else [])

    def _drop_waiting(self, now: float) -> None:
        """Under the lock: drop waiting sequences that were cancelled or ran past their deadline."""
        kept: collections.deque[Sequence] = collections.deque()
        gone: list[tuple[Sequence, list[Event]]] = []
        for sequence in self._waiting:
            if sequence.cancelled:
                gone.append((sequence, []))
            elif sequence.deadline is not None and now >= sequence.deadline:
                error = DeadlineExceeded(self.timeout_s, "waited in the queue for a batch slot")
                gone.append((sequence, sequence.fail(error, now)))
            else:
                kept.append(sequence)
        self._waiting = kept
        for sequence, events in gone:  # after the queue changed, so the counts are right when they arrive
            self._release(sequence, events, now)

    def _start_prefill(self, now: float) -> None:
        """Under the lock: admit waiting sequences into free slots as a new prefill group."""
        room = min(self.max_batch_size - len(self._running), self.prefill_chunk_tokens)
        admitted: list[Sequence] = []
        while self._waiting and len(admitted) < room:
            if self._can_admit is not None and not self._can_admit(admitted + [self._waiting[0]]):
                break  # the engine's memory is full: it waits until running requests finish
            sequence = self._waiting.popleft()
            sequence.timings.admitted = now
            admitted.append(sequence)
        if admitted:
            self._prefilling = self._batch.prefill(
                [s.prompt_ids for s in admitted], self.prefill_chunk_tokens, rows=admitted
            )

    def _drop_running(self, now: float) -> None:
        """Retire prefilling and running sequences that were cancelled or ran past their deadline.

        The rows leave the batch before their clients hear of it, so a client that got its 504
        never sees its request still counted as running.
        """
        gone: list[tuple[Sequence, list[Event]]] = []
        group = self._prefilling
        if group is not None:
            keep = self._live_rows(group.rows, now, gone)
            if len(keep) < len(group.rows):
                if keep:
                    group.keep(keep)
                else:
                    self._discard_prefill()
        keep = self._live_rows(self._running, now, gone)
        if len(keep) < len(self._running):
            self._running = [self._running[row] for row in keep]
            self._batch.keep(keep)
        for sequence, events in gone:
            self._release(sequence, events, now)

    def _live_rows(self, sequences: list[Sequence], now: float, gone: list[tuple[Sequence, list[Event]]]
                   ) -> list[int]:
        """The rows to keep; the others go to ``gone`` (cancelled: silently; past the deadline: a 504)."""
        keep = []
        for row, sequence in enumerate(sequences):
            if sequence.cancelled:
                gone.append((sequence, []))
            elif sequence.deadline is not None and now >= sequence.deadline:
                error = DeadlineExceeded(self.timeout_s, "was still generating")
                gone.append((sequence, sequence.fail(error, now)))
            else:
                keep.append(row)
        return keep

    def _step(self) -> None:
        """One model call: a prefill chunk or a decode step, taking turns when both have work."""
        prefill = self._prefilling is not None and (self._prefill_next or not self._running)
        self._prefill_next = not prefill
        self._step_kind = PREFILL_CHUNK if prefill else DECODE
        try:
            if prefill:
                self._prefill_chunk()
            elif self._running:
                self._decode()
        finally:
            self._step_sequences = []

    def _abandon_step(self) -> None:
        """The step stopped between two layers: drop what it served (its cache is half-written)."""
        if self.metrics is not None:
            self.metrics.observe_engine_step(ABORTED)
        now = time.perf_counter()
        if self._step_kind == PREFILL_CHUNK:
            group = self._prefilling
            sequences = list(group.rows) if group is not None else []
            self._discard_prefill()
        else:
            sequences, self._running = self._running, []
            self._batch.keep([])
        # Cancelled rows leave silently; on close the loop's end fails the rest with ShuttingDown.
        self._fail_all([s for s in sequences if not s.cancelled], ShuttingDown(), now)
        for sequence in sequences:
            if sequence.cancelled and not sequence.done:
                self._release(sequence, [], now)

    def _notify(self, kind: str, sequences: list[Sequence]) -> None:
        self._step_sequences = sequences
        for listener in self._step_listeners:
            listener(self.step_index, kind, sequences)
        if self.metrics is not None:
            self.metrics.observe_engine_step(kind)

    def _prefill_chunk(self) -> None:
        group = self._prefilling
        self._notify(PREFILL_CHUNK, list(group.rows))
        try:
            logits = group.step()
        except StepAbandoned:
            raise
        except Exception as exc:
            logger.exception("Prefill failed for %d requests", len(group.rows))
            rows = list(group.rows)
            self._discard_prefill()
            self._fail_all(rows, exc)
            return
        if logits is None:
            return
        tokens = self._sample(logits, group.rows)
        self._batch.merge(*group.result())
        first_new = len(self._running)
        self._running.extend(group.rows)
        self._prefilling = None
        # Only the new rows got a token; the others keep theirs for the decode step.
        self._deliver(tokens, time.perf_counter(), first_row=first_new)

    def _decode(self) -> None:
        self._notify(DECODE, list(self._running))
        tokens = [s.output_ids[-1] for s in self._running]
        if self.metrics is not None:
            self.metrics.observe_step(len(tokens))
        logits = self._batch.decode(tokens)
        tokens = self._sample(logits, self._running)
        self._deliver(tokens, time.perf_counter())

    def _sample(self, logits: torch.Tensor, sequences: list[Sequence]) -> list[int]:
        return sample_next_tokens(
            logits,
            [s.params for s in sequences],
            [s.generator for s in sequences],
            [s.penalty_ids() for s in sequences],
            self._suppress_ids,
        )

    def _deliver(self, tokens: list[int], now: float, first_row: int = 0) -> None:
        """Hand rows ``first_row...`` their new tokens, then retire the rows that are done."""
        keep = list(range(first_row))
        gone: list[tuple[Sequence, list[Event]]] = []
        for row, token in enumerate(tokens, start=first_row):
            sequence = self._running[row]
            if sequence.cancelled:
                gone.append((sequence, []))
                continue
            events = sequence.append(token, now)
            if not sequence.done and sequence.deadline is not None and now >= sequence.deadline:
                events = events + sequence.fail(DeadlineExceeded(self.timeout_s, "was still generating"), now)
            if sequence.done:
                gone.append((sequence, events))
            else:
                keep.append(row)
                if events:
                    sequence.sink(events)
        if gone:
            self._running = [self._running[row] for row in keep]
            self._batch.keep(keep)
            for sequence, events in gone:
                self._release(sequence, events, now)

    def _release(self, sequence: Sequence, events: list[Event], now: float) -> None:
        sequence.done = True
        if sequence.timings.finished is None:
            sequence.timings.finished = now
        if self.metrics is not None:
            t = sequence.timings
            self.metrics.observe_timings(t.queue_s, t.ttft_s, sequence.per_token_s())
        if events:
            sequence.sink(events)

    def _fail_all(self, sequences: list[Sequence], error: BaseException, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        for sequence in sequences:
            if not sequence.done:
                self._release(sequence, sequence.fail(error, now), now)
