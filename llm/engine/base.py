"""The engine interface the HTTP layer talks to.

An engine owns the model: ``load()`` and ``warm_up()`` run once at start-up
(blocking), then ``submit()`` takes requests from the event loop. ``submit``
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
from typing import Any, AsyncIterator, Callable

from llm.protocol import ChatCompletionRequest, Completion, TextDelta

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
    """A loaded causal LM that turns chat requests into completions."""

    model_name: str

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self._loaded = False
        self._ready = False

    @property
    def loaded(self) -> bool:
        """The weights are in memory."""
        return self._loaded

    @property
    def ready(self) -> bool:
        """Loaded and warmed up: requests will be served."""
        return self._ready

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

    @abc.abstractmethod
    def load(self) -> None:
        """Load the model (blocking); raise ``ModelLoadError`` with an actionable message."""

    @abc.abstractmethod
    def warm_up(self) -> None:
        """Run one short generation (blocking) and mark the engine ready."""

    @abc.abstractmethod
    def submit(self, request: ChatCompletionRequest) -> RequestHandle:
        """Queue a request (on the event loop); raise ``LLMServiceError`` subclasses for client errors."""

    async def generate(self, request: ChatCompletionRequest) -> Completion:
        """Complete one request without streaming; cancelling the caller cancels the generation."""
        return await collect(self.submit(request))

    def close(self) -> None:
        """Stop running work and release resources; the engine is not ready afterwards."""
        self._ready = False


async def collect(handle: RequestHandle) -> Completion:
    """The completion of a non-streamed request; cancelling the caller cancels the generation."""
    try:
        async for event in handle:
            if isinstance(event, Completion):
                return event
        raise RuntimeError("The engine ended a request without a completion.")
    finally:
        handle.cancel()
