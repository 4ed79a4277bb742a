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
import time
from typing import Any

import torch

from llm.config import Prepack, ServiceConfig
from llm.engine.loading import load_model
from llm.engine.scheduled import WARM_UP_REQUEST, ScheduledEngine, eos_ids
from llm.engine.scheduler import ContinuousBatchingScheduler
from llm.errors import ModelLoadError

logger = logging.getLogger(__name__)

__all__ = ["TransformersEngine", "WARM_UP_REQUEST"]


class TransformersEngine(ScheduledEngine):
    def __init__(self, config: ServiceConfig) -> None:
        super().__init__(config.served_model_name)
        unresolved = (config.device, config.dtype, config.quantization, config.cpu_prepack)
        if any(value.value == "auto" for value in unresolved):
            cuda = torch.cuda.is_available()
            config = config.resolve(cuda, cuda and torch.cuda.is_bf16_supported())
        self.config = config
        self.model: Any = None

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
        self.generation_config = generation = self.model.generation_config
        self.eos_ids = eos_ids(generation, self.tokenizer)
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


def _context_length(model: Any, tokenizer: Any) -> int:
    """The longest sequence the model handles: its position limit, or the tokenizer's."""
    length = getattr(model.config, "max_position_embeddings", None)
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if not length and tokenizer_limit and tokenizer_limit < 10**9:
        length = tokenizer_limit
    return int(length or 2048)
