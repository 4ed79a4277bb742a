"""The engine built on transformers: chat template, ``model.generate``, token accounting.

Requests run one at a time through ``SerialScheduler`` on a worker thread.
Sampling parameters a request leaves out fall back to the model's own
``generation_config`` (as vLLM does); ``temperature=0`` means greedy decoding.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from llm.config import Device, Dtype, ServiceConfig
from llm.engine.base import Engine
from llm.engine.loading import load_model
from llm.engine.scheduler import SerialScheduler
from llm.errors import ContextLengthExceeded, ModelNotReady, ShuttingDown
from llm.protocol import ChatCompletionRequest, ChatMessage, Completion, FinishReason

logger = logging.getLogger(__name__)

WARM_UP_REQUEST = ChatCompletionRequest(
    messages=(ChatMessage("user", "Hello!"),), max_tokens=2, temperature=0.0, request_id="warm-up"
)


class TransformersEngine(Engine):
    def __init__(self, config: ServiceConfig) -> None:
        super().__init__(config.served_model_name)
        if config.device is Device.AUTO or config.dtype is Dtype.AUTO:
            cuda = torch.cuda.is_available()
            config = config.resolve(cuda, cuda and torch.cuda.is_bf16_supported())
        self.config = config
        self.model: Any = None
        self.tokenizer: Any = None
        self.context_length = 0
        self._eos_ids: set[int] = set()
        self._scheduler = SerialScheduler()
        self._closing = threading.Event()

    # --- start-up -----------------------------------------------------------------------------

    def load(self) -> None:
        if self.config.cpu_threads:
            torch.set_num_threads(self.config.cpu_threads)
        self.model, self.tokenizer = load_model(self.config.model, self.config.device, self.config.dtype)
        self.context_length = _context_length(self.model, self.tokenizer)
        generation_eos = self.model.generation_config.eos_token_id
        eos = generation_eos if isinstance(generation_eos, list) else [generation_eos]
        self._eos_ids = {i for i in [*eos, self.tokenizer.eos_token_id] if i is not None}
        self._loaded = True

    def warm_up(self) -> None:
        if not self._loaded:
            raise ModelNotReady("The model is not loaded.")
        started = time.perf_counter()
        self._scheduler.run_blocking(self._generate_blocking, WARM_UP_REQUEST, threading.Event())
        self._ready = True
        logger.info("Warm-up generation took %.2fs; ready", time.perf_counter() - started)

    def close(self) -> None:
        super().close()
        self._closing.set()
        self._scheduler.shutdown()

    # --- serving ------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return self._scheduler.in_flight

    async def generate(self, request: ChatCompletionRequest) -> Completion:
        if not self._ready:
            raise ModelNotReady()
        cancel = threading.Event()
        try:
            return await self._scheduler.run(self._generate_blocking, request, cancel)
        except asyncio.CancelledError:
            cancel.set()  # the client went away: stop generating for it
            raise

    def render_prompt(self, messages: tuple[ChatMessage, ...]) -> str:
        """The chat template applied to the messages, ending with the assistant's turn header."""
        return self.tokenizer.apply_chat_template(
            [m.to_dict() for m in messages], tokenize=False, add_generation_prompt=True
        )

    def _generate_blocking(self, request: ChatCompletionRequest, cancel: threading.Event) -> Completion:
        prompt = self.render_prompt(request.messages)
        # The template already contains any BOS token the model needs.
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
        prompt_tokens = prompt_ids.shape[1]
        if prompt_tokens >= self.context_length:
            raise ContextLengthExceeded(prompt_tokens, self.context_length)
        max_new_tokens = min(request.max_tokens, self.context_length - prompt_tokens)

        stopping = StoppingCriteriaList([_Interrupt(cancel, self._closing)])
        if request.stop:
            stopping.append(_StopOnText(self.tokenizer, request.stop, prompt_tokens))
        generation_config = self._generation_config(request, max_new_tokens)
        prompt_ids = prompt_ids.to(self.model.device)
        with torch.inference_mode():
            if request.seed is not None:
                torch.manual_seed(request.seed)
            output = self.model.generate(
                input_ids=prompt_ids,
                attention_mask=torch.ones_like(prompt_ids),
                generation_config=generation_config,
                stopping_criteria=stopping,
            )
        if self._closing.is_set():
            raise ShuttingDown()
        new_ids = output[0, prompt_tokens:].tolist()
        # generate pads nothing for a single sequence, but be safe: drop anything after an EOS.
        for position, token in enumerate(new_ids):
            if token in self._eos_ids:
                new_ids = new_ids[: position + 1]
                break
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        finish = FinishReason.STOP if new_ids and new_ids[-1] in self._eos_ids else FinishReason.LENGTH
        cut = _first_stop(text, request.stop)
        if cut is not None:
            text, finish = text[:cut], FinishReason.STOP
        return Completion(
            text=text, prompt_tokens=prompt_tokens, completion_tokens=len(new_ids), finish_reason=finish
        )

    def _generation_config(self, request: ChatCompletionRequest, max_new_tokens: int) -> Any:
        config = copy.deepcopy(self.model.generation_config)
        config.max_new_tokens = max_new_tokens
        config.max_length = None
        config.num_return_sequences = 1
        if config.pad_token_id is None:
            config.pad_token_id = next(iter(sorted(self._eos_ids)), None)
        if request.temperature == 0.0:
            # Greedy. The sampling knobs go back to their neutral values: generate()
            # would refill None from the model's defaults and warn about them.
            config.do_sample = False
            config.temperature, config.top_p, config.top_k = 1.0, 1.0, 50
            return config
        if request.temperature is not None:
            config.do_sample = True
            config.temperature = request.temperature
        if request.top_p is not None:
            config.top_p = request.top_p
        return config


def _context_length(model: Any, tokenizer: Any) -> int:
    """The longest sequence the model handles: its position limit, or the tokenizer's."""
    length = getattr(model.config, "max_position_embeddings", None)
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if not length and tokenizer_limit and tokenizer_limit < 10**9:
        length = tokenizer_limit
    return int(length or 2048)


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    positions = [text.find(s) for s in stops if s in text]
    return min(positions) if positions else None


class _StopOnText(StoppingCriteria):
    """Stops generation once the completion's text contains any of the stop strings.

    It decodes only the last few tokens each step: enough to cover the longest
    stop string, which keeps the check cheap for long completions.
    """

    def __init__(self, tokenizer: Any, stops: tuple[str, ...], prompt_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.prompt_tokens = prompt_tokens
        self.window = max(len(s) for s in stops) + 4

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        start = max(self.prompt_tokens, input_ids.shape[1] - self.window)
        tail = self.tokenizer.decode(input_ids[0, start:], skip_special_tokens=True)
        hit = any(stop in tail for stop in self.stops)
        return torch.full((input_ids.shape[0],), hit, dtype=torch.bool, device=input_ids.device)


class _Interrupt(StoppingCriteria):
    """Stops generation when the request is cancelled or the engine shuts down."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        stop = any(event.is_set() for event in self.events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)
