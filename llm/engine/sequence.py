"""One request inside the scheduler: its tokens, its text so far, when it ends, and its timings.

A ``Sequence`` is created on the event loop (prompt already tokenized) and
from then on touched only by the scheduler's thread, except ``cancel()``.
Each generated token goes through ``append``, which

- ends the sequence on an end-of-sequence token (unless ``ignore_eos``), at
  ``max_new_tokens``, or when the text contains a stop string (the text is cut
  before it, as OpenAI does);
- turns tokens into text incrementally (decoding a short window, as TGI and
  vLLM do, so a multi-byte character split over tokens is never emitted
  half-done) and holds back a tail that could be the start of a stop string,
  so a streamed client never sees text a stop string later removes.

Everything the consumer sees goes through ``sink`` (called on the scheduler
thread): ``TextDelta`` events, then exactly one ``Completion`` or exception.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from llm.engine.sampling import SamplingParams
from llm.protocol import ChatCompletionRequest, Completion, FinishReason, TextDelta

Event = TextDelta | Completion | BaseException
Sink = Callable[[list[Event]], None]


@dataclass
class Timings:
    arrival: float = field(default_factory=time.perf_counter)
    admitted: float | None = None
    first_token: float | None = None
    finished: float | None = None

    @property
    def queue_s(self) -> float | None:
        return None if self.admitted is None else self.admitted - self.arrival

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.arrival


class Sequence:
    def __init__(
        self,
        request: ChatCompletionRequest,
        prompt_ids: list[int],
        max_new_tokens: int,
        params: SamplingParams,
        generator: torch.Generator,
        tokenizer: Any,
        eos_ids: frozenset[int],
        sink: Sink,
        deadline: float | None = None,
    ) -> None:
        self.request = request
        self.prompt_ids = prompt_ids
        self.max_new_tokens = max_new_tokens
        self.params = params
        self.generator = generator
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.sink = sink
        self.deadline = deadline  # time.perf_counter() value, or None
        self.timings = Timings()
        self.output_ids: list[int] = []
        self.finish_reason: FinishReason | None = None
        self.done = False
        self._cancelled = threading.Event()
        self.cancelled_at_step: int | None = None  # the scheduler's step index when it was cancelled
        # Distinct ids seen (prompt + output), for the repetition penalty.
        self._seen = set(prompt_ids)
        self._seen_tensor: torch.Tensor | None = None
        # Incremental detokenization (offsets into output_ids) and stop-string state.
        self._prefix_offset = 0
        self._read_offset = 0
        self._text = ""
        self._emitted = 0
        self._stop_max = max((len(s) for s in request.stop), default=0)

    # --- called from any thread ---------------------------------------------------------------

    def cancel(self) -> None:
        """The consumer is gone: the scheduler drops the sequence at its next step."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    # --- scheduler thread ---------------------------------------------------------------------

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    def penalty_ids(self) -> torch.Tensor | None:
        if self.params.repetition_penalty == 1.0:
            return None
        if self._seen_tensor is None or self._seen_tensor.numel() != len(self._seen):
            self._seen_tensor = torch.tensor(sorted(self._seen), dtype=torch.long)
        return self._seen_tensor

    def append(self, token: int, now: float) -> list[Event]:
        """Add one generated token; return the events for the consumer (deltas and maybe the end)."""
        if self.timings.first_token is None:
            self.timings.first_token = now
        self.output_ids.append(token)
        self._seen.add(token)
        if token in self.eos_ids and not self.request.ignore_eos:
            return self._finish(FinishReason.STOP, now)
        self._text += self._decode_increment()
        if self._stop_max and self._find_stop(self._text) is not None:
            return self._finish(FinishReason.STOP, now)
        if len(self.output_ids) >= self.max_new_tokens:
            return self._finish(FinishReason.LENGTH, now)
        safe = len(self._text) - self._held_back(self._text)
        if safe > self._emitted:
            delta = TextDelta(self._text[self._emitted:safe], len(self.output_ids))
            self._emitted = safe
            return [delta]
        return []

    def fail(self, error: BaseException, now: float) -> list[Event]:
        self.done = True
        self.timings.finished = now
        return [error]

    def _finish(self, reason: FinishReason, now: float) -> list[Event]:
        self.done = True
        self.finish_reason = reason
        self.timings.finished = now
        # The whole output decoded at once is the truth; the increments were a preview of it.
        text = self.tokenizer.decode(self.output_ids, skip_special_tokens=True)
        cut = self._find_stop(text)
        if cut is not None:
            text, reason = text[:cut], FinishReason.STOP
        events: list[Event] = []
        emitted = self._text[: self._emitted]
        if len(text) > len(emitted) and text.startswith(emitted):
            events.append(TextDelta(text[len(emitted):], len(self.output_ids)))
        events.append(
            Completion(
                text=text,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=len(self.output_ids),
                finish_reason=reason,
            )
        )
        return events

    def _decode_increment(self) -> str:
        ids = self.output_ids
        decode = self.tokenizer.decode
        prefix = decode(ids[self._prefix_offset : self._read_offset], skip_special_tokens=True)
        text = decode(ids[self._prefix_offset :], skip_special_tokens=True)
        if len(text) > len(prefix) and not text.endswith("\ufffd"):
            self._prefix_offset, self._read_offset = self._read_offset, len(ids)
            return text[len(prefix):]
        return ""

    def _find_stop(self, text: str) -> int | None:
        positions = [text.find(s) for s in self.request.stop if s in text]
        return min(positions) if positions else None

    def _held_back(self, text: str) -> int:
        """Length of the longest tail of ``text`` that is the start of some stop string."""
        for length in range(min(self._stop_max - 1, len(text)), 0, -1):
            tail = text[-length:]
            if any(stop.startswith(tail) for stop in self.request.stop):
                return length
        return 0

    def per_token_s(self) -> float | None:
        t = self.timings
        if t.first_token is None or t.finished is None or len(self.output_ids) < 2:
            return None
        return (t.finished - t.first_token) / (len(self.output_ids) - 1)
