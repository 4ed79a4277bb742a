"""The engine interface the HTTP layer talks to.

An engine owns the model: ``load()`` and ``warm_up()`` run once at start-up
(blocking), then ``submit()`` takes requests from the event loop, until
``close()`` drains it. Its state (``lifecycle.py``: new, loading, loaded,
warming up, ready or failed, draining, closed) changes only through those
three calls. ``submit``
validates what needs the tokenizer (the prompt's length), queues the request
and returns a ``RequestHandle`` at once, or raises (``QueueFull``,
``ContextLengthExceeded``, ...) before any work is done. The handle is an
async iterator of ``TextDelta`` events ending with one ``Completion``;
``cancel()`` stops the generation and frees its batch slot (call it when the
client goes away; it is a no-op once the request finished). ``generate()`` is
the non-streaming form.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Any, AsyncIterator, Callable

from llm.engine.lifecycle import LOADED_STATES, SHUTTING_DOWN, EngineState, Lifecycle
from llm.errors import LLMServiceError, ModelNotReady, ShuttingDown, StartUpFailed
from llm.protocol import ChatCompletionRequest, Completion, TextDelta

logger = logging.getLogger(__name__)

StreamEvent = TextDelta | Completion


class RequestHandle:
    """The consumer's end of one request: events arrive from the engine's thread via the event loop."""

    def __init__(self, cancel: Callable[[], None] = lambda: None) -> None:
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[list[Any]] = asyncio.Queue()
        self._cancel = cancel
        self._finished = False

    def set_canceller(self, cancel: Callable[[], None]) -> None:
        self._cancel = cancel

    def push(self, events: list[Any]) -> None:
        """Called from any thread with a list of events (deltas, then a ``Completion`` or an exception)."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, events)
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            self._cancel()

    @property
    def finished(self) -> bool:
        return self._finished

    def cancel(self) -> None:
        if not self._finished:
            self._finished = True
            self._cancel()

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamEvent]:
        try:
            while not self._finished:
                for event in await self._events.get():
                    if isinstance(event, BaseException):
                        self._finished = True
                        raise event
                    if isinstance(event, Completion):
                        self._finished = True
                    yield event
        except asyncio.CancelledError:
            self.cancel()
            raise


class Engine(abc.ABC):
    """A causal LM that turns chat requests into completions, with an explicit lifecycle.

    ``load``, ``warm_up`` and ``close`` are the only ways through the lifecycle
    (``lifecycle.py``); subclasses implement the work (``_load``, ``_warm_up``,
    ``_drain``) and never set the state themselves.
    """

    model_name: str
    # Whether a request's logits are bit-for-bit the same whatever else shares its batch (so a seeded
    # sampled text is too). llama.cpp's kernels sum in an order that depends on the batch: not there.
    batch_invariant = True

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.lifecycle = Lifecycle()

    @property
    def state(self) -> EngineState:
        return self.lifecycle.state

    @property
    def loaded(self) -> bool:
        """The weights are in memory and usable (loaded, warming up or ready)."""
        return self.lifecycle.state in LOADED_STATES

    @property
    def ready(self) -> bool:
        """Loaded and warmed up: requests will be served."""
        return self.lifecycle.state is EngineState.READY

    @property
    def num_running(self) -> int:
        """Requests in the running batch."""
        return 0

    @property
    def num_waiting(self) -> int:
        """Requests queued for a batch slot."""
        return 0

    def attach_metrics(self, metrics: Any) -> None:
        """Let the engine observe scheduler metrics (queue time, TTFT, batch size) into ``metrics``."""

    # --- lifecycle ----------------------------------------------------------------------------

    def load(self) -> None:
        """Load the model (blocking); raise ``ModelLoadError`` with an actionable message."""
        self.lifecycle.start_loading()
        try:
            self._load()
        except BaseException as exc:
            self.lifecycle.fail(f"loading the model failed: {exc}")
            raise
        self.lifecycle.finish_loading()

    def warm_up(self) -> bool:
        """Run one short generation (blocking); True when the engine is ready afterwards.

        A shutdown that began before or during the warm-up ends it quietly: False,
        nothing raised. A warm-up that fails for any other reason leaves the engine
        ``FAILED`` with the reason (``failure``) and re-raises.
        """
        if not self.lifecycle.start_warm_up():
            return self.ready
        try:
            self._warm_up()
        except Exception as exc:
            if self.lifecycle.shutting_down:
                logger.info("Warm-up stopped: the engine is shutting down")
                return False
            self.lifecycle.fail(f"{type(exc).__name__}: {exc}")
            raise
        return self.lifecycle.finish_warm_up()

    def not_ready_error(self) -> LLMServiceError | None:
        """Why requests cannot be served now (None when ready): still loading, warming up, failed, shutting down."""
        state = self.lifecycle.state
        if state is EngineState.READY:
            return None
        if state in SHUTTING_DOWN:
            return ShuttingDown()
        if state is EngineState.FAILED:
            return StartUpFailed(self.lifecycle.failure)
        if state in (EngineState.LOADED, EngineState.WARMING_UP):
            return ModelNotReady("The model is loaded and warming up; retry in a few seconds.")
        return ModelNotReady()

    @property
    def failure(self) -> str:
        """Why loading or the warm-up failed; empty unless the engine is ``FAILED``."""
        return self.lifecycle.failure

    def close(self) -> None:
        """Drain (refuse new requests, end queued and running ones) and release resources; idempotent."""
        if not self.lifecycle.start_draining():
            return
        try:
            self._drain()
        finally:
            self.lifecycle.finish_closing()

    @abc.abstractmethod
    def _load(self) -> None:
        """Put the weights in memory."""

    @abc.abstractmethod
    def _warm_up(self) -> None:
        """Generate once, so the first real request pays no one-off costs; raise on failure."""

    def _drain(self) -> None:
        """End queued and running work (they get ``ShuttingDown``) and stop worker threads."""

    # --- serving ------------------------------------------------------------------------------

    @abc.abstractmethod
    def submit(self, request: ChatCompletionRequest) -> RequestHandle:
        """Queue a request (on the event loop); raise ``LLMServiceError`` subclasses for client errors."""

    async def generate(self, request: ChatCompletionRequest) -> Completion:
        """Complete one request without streaming; cancelling the caller cancels the generation."""
        return await collect(self.submit(request))


async def collect(handle: RequestHandle) -> Completion:
    """The completion of a non-streamed request; cancelling the caller cancels the generation."""
    try:
        async for event in handle:
            if isinstance(event, Completion):
                return event
        raise RuntimeError("The engine ended a request without a completion.")
    finally:
        handle.cancel()
