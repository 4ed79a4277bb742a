"""What every engine built on the ``ContinuousBatchingScheduler`` shares: chat template, token accounting,
the warm-up generation, submission and cancellation.

A subclass loads its model in ``_load`` and sets ``tokenizer``, ``generation_config``,
``context_length``, ``eos_ids`` and ``scheduler``; the rest is here, so the API
behaves the same whatever runs the model (``transformers_engine.py``,
``llamacpp_engine.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from llm.engine.base import Engine, RequestHandle
from llm.engine.sampling import SamplingParams, new_generator
from llm.engine.scheduler import ContinuousBatchingScheduler
from llm.engine.sequence import Sequence
from llm.errors import ContextLengthExceeded
from llm.protocol import ChatCompletionRequest, ChatMessage, Completion

logger = logging.getLogger(__name__)

WARM_UP_REQUEST = ChatCompletionRequest(
    messages=(ChatMessage("user", "Hello!"),), max_tokens=2, temperature=0.0, request_id="warm-up"
)


class ScheduledEngine(Engine):
    def __init__(self, model_name: str) -> None:
        super().__init__(model_name)
        self.tokenizer: Any = None
        self.generation_config: Any = None
        self.context_length = 0
        self.eos_ids: frozenset[int] = frozenset()
        self.scheduler: ContinuousBatchingScheduler | None = None
        self._metrics: Any = None

    # --- start-up -----------------------------------------------------------------------------

    def _warm_up(self) -> None:
        self._generate_once(WARM_UP_REQUEST)

    def _generate_once(self, request: ChatCompletionRequest) -> Completion:
        """One generation through the scheduler, blocking (start-up only)."""
        started = time.perf_counter()
        done = threading.Event()
        outcome: list[Any] = []

        def sink(events: list[Any]) -> None:
            if isinstance(events[-1], (Completion, BaseException)):
                outcome.append(events[-1])
                done.set()

        self.scheduler.submit(self._sequence(request, sink))
        done.wait()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        logger.info("Warm-up generation took %.2fs", time.perf_counter() - started)
        return outcome[0]

    def attach_metrics(self, metrics: Any) -> None:
        self._metrics = metrics
        if self.scheduler is not None:
            self.scheduler.metrics = metrics

    def _drain(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()

    # --- serving ------------------------------------------------------------------------------

    @property
    def num_running(self) -> int:
        return self.scheduler.num_running if self.scheduler else 0

    @property
    def num_waiting(self) -> int:
        return self.scheduler.num_waiting if self.scheduler else 0

    def submit(self, request: ChatCompletionRequest) -> RequestHandle:
        error = self.not_ready_error()
        if error is not None:
            raise error
        handle = RequestHandle()
        sequence = self._sequence(request, handle.push)
        scheduler = self.scheduler

        def cancel() -> None:
            scheduler.cancel(sequence)

        handle.set_canceller(cancel)
        scheduler.submit(sequence)
        return handle

    def render_prompt(self, messages: tuple[ChatMessage, ...], generation_prompt: bool = True) -> str:
        """The chat template applied to the messages, ending with the assistant's turn header."""
        return self.tokenizer.apply_chat_template(
            [m.to_dict() for m in messages], tokenize=False, add_generation_prompt=generation_prompt
        )

    def tokenize_prompt(self, messages: tuple[ChatMessage, ...], generation_prompt: bool = True) -> list[int]:
        # The template already contains any BOS token the model needs.
        return self.tokenizer(self.render_prompt(messages, generation_prompt), add_special_tokens=False).input_ids

    def _sequence(self, request: ChatCompletionRequest, sink: Any) -> Sequence:
        prompt_ids = self.tokenize_prompt(request.messages)
        if len(prompt_ids) >= self.context_length:
            raise ContextLengthExceeded(len(prompt_ids), self.context_length)
        return Sequence(
            request=request,
            prompt_ids=prompt_ids,
            max_new_tokens=min(request.max_tokens, self.context_length - len(prompt_ids)),
            params=SamplingParams.resolve(request, self.generation_config),
            generator=new_generator(request.seed),
            tokenizer=self.tokenizer,
            eos_ids=self.eos_ids,
            sink=sink,
        )


def eos_ids(generation_config: Any, tokenizer: Any) -> frozenset[int]:
    """The model's end-of-sequence ids: its generation config's and its tokenizer's."""
    eos = generation_config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos]
    return frozenset(i for i in [*eos, tokenizer.eos_token_id] if i is not None)
