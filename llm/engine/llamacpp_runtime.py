"""llama.cpp through llama-cpp-python's low-level API: one model, one context, one reusable token batch.

``LlamaRuntime`` loads a GGUF file and creates a context whose KV cache is
*unified*: one pool of ``n_ctx`` cells shared by all sequences (``n_seq_max``
of them), so a cell holding a shared prefix belongs to several sequences at
once (``seq_cp`` adds a sequence to cells, it copies nothing). ``decode`` runs
one ``llama_decode`` over tokens of any number of sequences, each token with
its own position and sequence id, and returns the logits of the tokens that
asked for them. Everything here runs on the scheduler's thread (the context is
not thread-safe); ``llama_decode`` releases the GIL, so the event loop keeps
serving meanwhile.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

_LOG_WARN = 3  # ggml_log_level: NONE, DEBUG, INFO, WARN, ERROR, CONT
_log_callback = None  # kept alive for as long as llama.cpp may call it


class LlamaError(RuntimeError):
    pass


@dataclass(frozen=True)
class Token:
    """One token of a ``decode`` call."""

    token: int
    position: int
    seq_id: int
    logits: bool = False


def _route_logs() -> None:
    """llama.cpp's own log lines go to this module's logger, warnings and errors only."""
    global _log_callback
    import llama_cpp

    if _log_callback is not None:
        return

    def forward(level: int, text: bytes, user_data: object) -> None:
        if level in (_LOG_WARN, _LOG_WARN + 1) and text:
            logger.warning("llama.cpp: %s", text.decode(errors="replace").rstrip())

    _log_callback = llama_cpp.llama_log_callback(forward)
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


class LlamaRuntime:
    def __init__(self, path: Path, n_ctx: int, n_batch: int, n_seq_max: int, threads: int) -> None:
        import llama_cpp

        self._llama = llama = llama_cpp
        _route_logs()
        llama.llama_backend_init()
        model_params = llama.llama_model_default_params()
        model_params.n_gpu_layers = 0
        self.model = llama.llama_model_load_from_file(str(path).encode(), model_params)
        if not self.model:
            raise LlamaError(f"llama.cpp could not load {path}; convert it again (delete its folder) or check the log.")
        self.vocab = llama.llama_model_get_vocab(self.model)
        self.n_vocab = int(llama.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(llama.llama_model_n_ctx_train(self.model))
        self.size_bytes = int(llama.llama_model_size(self.model))
        params = llama.llama_context_default_params()
        # llama.cpp reserves logits for at least one output per sequence: a batch that small at least.
        n_batch = max(n_batch, n_seq_max)
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = n_seq_max
        params.n_threads = params.n_threads_batch = threads
        params.kv_unified = True
        params.no_perf = True
        self.ctx = llama.llama_init_from_model(self.model, params)
        if not self.ctx:
            llama.llama_model_free(self.model)
            raise LlamaError(
                f"llama.cpp could not create a context of {n_ctx} KV cells for {path}; lower --kv-cache-tokens."
            )
        self.memory = llama.llama_get_memory(self.ctx)
        self.n_batch = n_batch
        self._batch = llama.llama_batch_init(n_batch, 0, 1)

    def decode(self, tokens: list[Token]) -> np.ndarray:
        """Run ``tokens`` (at most ``n_batch``) through the model; ``logits[i]`` for each token that asked."""
        llama = self._llama
        batch = self._batch
        assert 0 < len(tokens) <= self.n_batch
        wanted = []
        for i, t in enumerate(tokens):
            batch.token[i] = t.token
            batch.pos[i] = t.position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = t.seq_id
            batch.logits[i] = 1 if t.logits else 0
            if t.logits:
                wanted.append(i)
        batch.n_tokens = len(tokens)
        status = llama.llama_decode(self.ctx, batch)
        if status != 0:
            reason = {1: "no free KV cells (raise --kv-cache-tokens)", 2: "aborted"}.get(status, "error")
            raise LlamaError(f"llama_decode returned {status}: {reason}")
        out = np.empty((len(wanted), self.n_vocab), dtype=np.float32)
        for row, i in enumerate(wanted):
            pointer = llama.llama_get_logits_ith(self.ctx, i)
            out[row] = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        return out

    def seq_copy(self, source: int, target: int, end: int) -> None:
        """``target`` shares ``source``'s cells for positions ``[0, end)`` (no data is copied)."""
        self._llama.llama_memory_seq_cp(self.memory, source, target, 0, end)

    def seq_remove(self, seq_id: int, start: int = -1) -> None:
        """Forget ``seq_id``'s cells from position ``start`` on (-1: all of them)."""
        self._llama.llama_memory_seq_rm(self.memory, seq_id, start, -1)

    def close(self) -> None:
        llama = self._llama
        if self.ctx:
            llama.llama_batch_free(self._batch)
            llama.llama_free(self.ctx)
            llama.llama_model_free(self.model)
            self.ctx = self.model = None
