"""How requests share the model: continuous batching on one worker thread.

``ContinuousBatchingScheduler`` owns a bounded FIFO of waiting sequences and the
running batch. Its thread loops:

1. drop waiting sequences whose client left or whose deadline passed;
2. admit waiting sequences into free batch slots (up to ``max_batch_size``) and
   prefill them together, which gives each its first token;
3. run one decode step for the whole batch and sample a token per row;
4. retire rows that finished, were cancelled, or ran past their deadline, so
   their slots are free for the next step.

Requests therefore join and leave the batch between any two steps (iteration-
level scheduling, as in Orca/vLLM/TGI) instead of waiting for a whole batch.
``submit`` is called on the event loop and never blocks: with the queue full
it raises ``QueueFull`` at once. Results go back through each sequence's sink.

The loop is the only code that touches the model after warm-up, so no lock
guards the model; one lock guards the waiting queue.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

import torch

from llm.engine.batch import RunningBatch
from llm.engine.sampling import sample_next_tokens
from llm.engine.sequence import Event, Sequence
from llm.errors import DeadlineExceeded, QueueFull, ShuttingDown

logger = logging.getLogger(__name__)


class ContinuousBatchingScheduler:
    def __init__(
        self,
        model: Any,
        pad_token_id: int,
        max_batch_size: int,
        max_queue_size: int,
        timeout_s: float,
        suppress_ids: torch.Tensor | None = None,
        metrics: Any = None,
    ) -> None:
        self.max_batch_size = max_batch_size
        self.max_queue_size = max_queue_size
        self.timeout_s = timeout_s
        self.metrics = metrics  # a ServiceMetrics, attached by the HTTP layer; optional
        self._batch = RunningBatch(model, pad_token_id)
        self._suppress_ids = suppress_ids
        self._running: list[Sequence] = []
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._lock = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="llm-scheduler", daemon=True)
        self._thread.start()

    # --- event loop side ----------------------------------------------------------------------

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    def submit(self, sequence: Sequence) -> None:
        """Queue a sequence; raise ``QueueFull`` or ``ShuttingDown`` instead of waiting."""
        with self._lock:
            if self._closing:
                raise ShuttingDown()
            free_slots = self.max_batch_size - len(self._running)
            if len(self._waiting) >= self.max_queue_size + max(free_slots, 0):
                raise QueueFull(len(self._waiting))
            if self.timeout_s:
                sequence.deadline = sequence.timings.arrival + self.timeout_s
            self._waiting.append(sequence)
            self._lock.notify()

    def wake(self) -> None:
        """Make the loop look at the queue now (after a cancellation, say)."""
        with self._lock:
            self._lock.notify()

    def close(self, timeout_s: float = 10.0) -> None:
        """Fail running and waiting sequences with ``ShuttingDown`` and stop the thread."""
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
                    while not self._closing and not self._waiting and not self._running:
                        self._lock.wait()
                    if self._closing:
                        break
                    admitted = self._admit(time.perf_counter())
                try:
                    if admitted:
                        self._prefill(admitted)
                    if self._running:
                        self._step()
                except Exception as exc:  # a bug or an OOM: fail this batch, keep serving
                    logger.exception("Generation step failed; failing the %d requests in the batch", self.num_running)
                    self._fail_all(self._running, exc)
                    self._running = []
                    self._batch.keep([])
        now = time.perf_counter()
        with self._lock:
            waiting, self._waiting = list(self._waiting), collections.deque()
        self._fail_all(self._running + waiting, ShuttingDown(), now)
        self._running = []
        self._batch.keep([])

    def _admit(self, now: float) -> list[Sequence]:
        """Under the lock: expire and drop waiting sequences, then take as many as fit."""
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
        admitted = []
        while self._waiting and len(self._running) + len(admitted) < self.max_batch_size:
            sequence = self._waiting.popleft()
            sequence.timings.admitted = now
            admitted.append(sequence)
        for sequence, events in gone:  # after the queue changed, so the counts are right when they arrive
            self._release(sequence, events, now)
        return admitted

    def _prefill(self, admitted: list[Sequence]) -> None:
        try:
            cache, mask, positions, logits = self._batch.prefill([s.prompt_ids for s in admitted])
        except Exception as exc:
            logger.exception("Prefill failed for %d requests", len(admitted))
            self._fail_all(admitted, exc)
            return
        tokens = self._sample(logits, admitted)
        self._batch.merge(cache, mask, positions)
        self._running.extend(admitted)
        # Only the new rows got a token; the others keep theirs for the decode step.
        first_new = len(self._running) - len(admitted)
        self._deliver(tokens, time.perf_counter(), first_row=first_new)

    def _step(self) -> None:
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
