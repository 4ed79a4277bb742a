"""The engine built on llama.cpp (CPU): a GGUF converted once from the checkpoint, several sequences per
``llama_decode``, and the KV of the shared system prompt computed once.

Everything the API promises comes from the shared pieces, exactly as for the
transformers engine: ``ScheduledEngine`` (chat template from the checkpoint's
own tokenizer, context check, sampling parameters from its
``generation_config``), the ``ContinuousBatchingScheduler`` (bounded queue and
429, deadlines and 504, cancellation at every step boundary, chunked prefill,
continuous batching, metrics) and ``Sequence`` (streaming, stop strings,
``max_tokens``). Only the model calls differ: ``LlamaBatch``
(``llamacpp_batch.py``) turns the scheduler's prefill chunks and decode steps
into ``llama_decode`` calls, and the logits come back to the same per-request
sampler (temperature, top-p, seed, repetition penalty).

Start-up: ``_load`` converts the checkpoint to ``--gguf-quant`` (cached under
``--gguf-cache``: minutes the first time, a checksum after) and loads it;
``_warm_up`` computes the warm prompt's KV (``--warm-prompt``: the action
server's system prompt) into the prefix cache, then generates once. An
unmerged ``--adapter`` is refused by the configuration (merge it first).

Not here: stopping a step between two layers (llama.cpp's abort callback would
call into Python from its compute thread on every graph node): a cancelled
request takes part in at most the step under way, a chunk of at most
``--prefill-chunk-tokens`` tokens or one decode step.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from llm.config import ServiceConfig
from llm.engine.prompt_splice import splice
from llm.engine.scheduled import ScheduledEngine, eos_ids
from llm.engine.scheduler import ContinuousBatchingScheduler
from llm.engine.warm_prompt import warm_system_prompt
from llm.errors import ModelLoadError
from llm.protocol import ChatMessage

logger = logging.getLogger(__name__)


def cpu_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class LlamaCppEngine(ScheduledEngine):
    batch_invariant = False  # see Engine.batch_invariant

    def __init__(self, config: ServiceConfig) -> None:
        super().__init__(config.served_model_name)
        self.config = config
        self.runtime: Any = None
        self.batch: Any = None
        self.gguf: Any = None
        self.threads = config.cpu_threads or cpu_cores()

    # --- start-up -----------------------------------------------------------------------------

    def _load(self) -> None:
        import torch
        from transformers import AutoTokenizer, GenerationConfig

        from llm.engine.llamacpp_batch import LlamaBatch
        from llm.engine.llamacpp_runtime import LlamaError, LlamaRuntime
        from llm.gguf.cache import ConversionError, ensure_gguf
        from llm.gguf.tools import ConverterMissing

        from llm.engine.loading import check_model_source

        config = self.config
        check_model_source(config.model)  # the same sentence as the transformers engine for a wrong --model
        # Sampling runs on this process's torch: one thread, so it never competes with llama.cpp's.
        torch.set_num_threads(1)
        try:
            self.gguf = ensure_gguf(config.model, config.gguf_quant.value, root=config.gguf_cache, threads=self.threads)
        except (ConversionError, ConverterMissing) as exc:
            raise ModelLoadError(str(exc)) from exc
        source = self._checkpoint_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        try:
            self.generation_config = GenerationConfig.from_pretrained(source)
        except OSError:
            self.generation_config = GenerationConfig()
        self.eos_ids = eos_ids(self.generation_config, self.tokenizer)
        chunk = max(config.prefill_chunk_tokens, config.max_batch_size)
        try:
            self.runtime = LlamaRuntime(
                self.gguf.path, n_ctx=config.kv_cache_tokens, n_batch=chunk,
                n_seq_max=config.max_batch_size + 1, threads=self.threads,
            )
        except LlamaError as exc:
            raise ModelLoadError(str(exc)) from exc
        self.context_length = min(self.runtime.n_ctx_train, config.kv_cache_tokens)
        self.batch = LlamaBatch(self.runtime, config.max_batch_size, config.kv_cache_tokens)
        self.batch.metrics = self._metrics
        suppress = list(self.generation_config.suppress_tokens or [])
        self.scheduler = ContinuousBatchingScheduler(
            batch=self.batch,
            max_batch_size=config.max_batch_size,
            max_queue_size=config.max_queue_size,
            timeout_s=config.request_timeout_s,
            prefill_chunk_tokens=chunk,
            suppress_ids=torch.tensor(suppress, dtype=torch.long) if suppress else None,
            metrics=self._metrics,
        )
        logger.info(
            "llama.cpp engine: %s (%.0f MiB), %d threads, %d KV cells shared by up to %d sequences",
            self.gguf.path, self.runtime.size_bytes / 2**20, self.threads, config.kv_cache_tokens,
            config.max_batch_size,
        )

    def _checkpoint_dir(self) -> Path:
        """The checkpoint's folder (tokenizer, chat template, generation config); ensure_gguf fetched hub ids."""
        path = Path(self.config.model).expanduser()
        if path.is_dir():
            return path
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(self.config.model, allow_patterns=["*.json", "*.txt", "*.jinja"]))

    def tokenize_prompt(self, messages: tuple[ChatMessage, ...], generation_prompt: bool = True) -> list[int]:
        """The prompt's tokens, starting with as many of a kept conversation's tokens as its text allows
        (``prompt_splice``): the model's last reply comes back as text the tokenizer may split otherwise."""
        text = self.render_prompt(messages, generation_prompt)
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        if self.batch is None or not self.batch.kept:
            return ids
        return splice(self.tokenizer, text, ids, self.batch.kept)

    def _warm_up(self) -> None:
        system = warm_system_prompt(self.config.warm_prompt)
        if system:
            tokens = self.tokenize_prompt((ChatMessage("system", system),), generation_prompt=False)
            if len(tokens) < self.context_length // 2:
                started = time.perf_counter()
                self.batch.warm_prefix(tokens, self.runtime.n_batch, stop=lambda: self.lifecycle.shutting_down)
                logger.info("Prefix cache: the %d-token system prompt computed in %.1fs", len(tokens),
                            time.perf_counter() - started)
            else:
                logger.warning("The warm prompt (%d tokens) is too long for the context; not cached", len(tokens))
        super()._warm_up()

    def attach_metrics(self, metrics: Any) -> None:
        super().attach_metrics(metrics)
        if self.batch is not None:
            self.batch.metrics = metrics

    def _drain(self) -> None:
        super()._drain()
        if self.runtime is not None and (self.scheduler is None or not self.scheduler.alive):
            self.runtime.close()
