"""The engine built on transformers: chat template, token accounting, and the batching scheduler.

``submit`` renders the chat template, tokenizes, checks the prompt fits the
context, resolves the sampling parameters (the request's over the model's
``generation_config``, as vLLM does; ``temperature=0`` is greedy) and hands a
``Sequence`` to the ``ContinuousBatchingScheduler``, which runs the model on
its own thread. Nothing here blocks the event loop for longer than
tokenization.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import torch

from llm.config import Prepack, ServiceConfig
from llm.engine.base import Engine, RequestHandle
from llm.engine.loading import load_model
from llm.engine.sampling import SamplingParams, new_generator
from llm.engine.scheduler import ContinuousBatchingScheduler
from llm.engine.sequence import Sequence
from llm.errors import ContextLengthExceeded, ModelLoadError, ModelNotReady
from llm.protocol import ChatCompletionRequest, ChatMessage, Completion

logger = logging.getLogger(__name__)

WARM_UP_REQUEST = ChatCompletionRequest(
    messages=(ChatMessage("user", "Hello!"),), max_tokens=2, temperature=0.0, request_id="warm-up"
)


class TransformersEngine(Engine):
    def __init__(self, config: ServiceConfig) -> None:
        super().__init__(config.served_model_name)
        unresolved = (config.device, config.dtype, config.quantization, config.cpu_prepack)
        if any(value.value == "auto" for value in unresolved):
            cuda = torch.cuda.is_available()
            config = config.resolve(cuda, cuda and torch.cuda.is_bf16_supported())
        self.config = config
        self.model: Any = None
        self.tokenizer: Any = None
        self.context_length = 0
        self.eos_ids: frozenset[int] = frozenset()
        self.scheduler: ContinuousBatchingScheduler | None = None
        self._metrics: Any = None

    # --- start-up -----------------------------------------------------------------------------

    def _load(self) -> None:
        config = self.config
        if config.cpu_threads:
            torch.set_num_threads(config.cpu_threads)
        self.model, self.tokenizer = load_model(
            config.model, config.device, config.dtype, config.quantization, config.adapter
        )
        if config.cpu_prepack is Prepack.ON:
            self._prepack()
        self.context_length = _context_length(self.model, self.tokenizer)
        generation = self.model.generation_config
        eos = generation.eos_token_id if isinstance(generation.eos_token_id, list) else [generation.eos_token_id]
        self.eos_ids = frozenset(i for i in [*eos, self.tokenizer.eos_token_id] if i is not None)
        pad = generation.pad_token_id if generation.pad_token_id is not None else self.tokenizer.pad_token_id
        if pad is None:
            pad = min(self.eos_ids) if self.eos_ids else 0
        suppress = list(generation.suppress_tokens or [])
        self.scheduler = ContinuousBatchingScheduler(
            self.model,
            pad_token_id=int(pad),
            max_batch_size=config.max_batch_size,
            max_queue_size=config.max_queue_size,
            timeout_s=config.request_timeout_s,
            prefill_chunk_tokens=config.prefill_chunk_tokens,
            suppress_ids=torch.tensor(suppress, dtype=torch.long) if suppress else None,
            metrics=self._metrics,
        )

    def _prepack(self) -> None:
        from llm.engine.cpu_kernels import prepack_linears, prepack_supported

        reason = prepack_supported()
        if reason:
            raise ModelLoadError(f"--cpu-prepack on is not possible: {reason}; use --cpu-prepack off.")
        started = time.perf_counter()
        count = prepack_linears(self.model)
        logger.info("Prepacked %d linear layers for oneDNN in %.1fs", count, time.perf_counter() - started)

    def _warm_up(self) -> None:
        """One short greedy generation through the scheduler (blocking)."""
        started = time.perf_counter()
        done = threading.Event()
        outcome: list[Any] = []

        def sink(events: list[Any]) -> None:
            if isinstance(events[-1], (Completion, BaseException)):
                outcome.append(events[-1])
                done.set()

        self.scheduler.submit(self._sequence(WARM_UP_REQUEST, sink))
        done.wait()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        logger.info("Warm-up generation took %.2fs", time.perf_counter() - started)

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

    def render_prompt(self, messages: tuple[ChatMessage, ...]) -> str:
        """The chat template applied to the messages, ending with the assistant's turn header."""
        return self.tokenizer.apply_chat_template(
            [m.to_dict() for m in messages], tokenize=False, add_generation_prompt=True
        )

    def tokenize_prompt(self, messages: tuple[ChatMessage, ...]) -> list[int]:
        # The template already contains any BOS token the model needs.
        return self.tokenizer(self.render_prompt(messages), add_special_tokens=False).input_ids

    def _sequence(self, request: ChatCompletionRequest, sink: Any) -> Sequence:
        prompt_ids = self.tokenize_prompt(request.messages)
        if len(prompt_ids) >= self.context_length:
            raise ContextLengthExceeded(len(prompt_ids), self.context_length)
        return Sequence(
            request=request,
            prompt_ids=prompt_ids,
            max_new_tokens=min(request.max_tokens, self.context_length - len(prompt_ids)),
            params=SamplingParams.resolve(request, self.model.generation_config),
            generator=new_generator(request.seed),
            tokenizer=self.tokenizer,
            eos_ids=self.eos_ids,
            sink=sink,
        )


def _context_length(model: Any, tokenizer: Any) -> int:
    """The longest sequence the model handles: its position limit, or the tokenizer's."""
    length = getattr(model.config, "max_position_embeddings", None)
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if not length and tokenizer_limit and tokenizer_limit < 10**9:
        length = tokenizer_limit
    return int(length or 2048)
