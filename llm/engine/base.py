"""The engine interface the HTTP layer talks to.

An engine owns the model: ``load()`` and ``warm_up()`` run once at start-up
(blocking), then ``generate()`` serves requests concurrently from the event
loop. How requests share the model (one at a time today, a batching scheduler
later) and how tokens come out (whole completions today, a stream later) are
the engine's business, behind this interface.
"""

from __future__ import annotations

import abc

from llm.protocol import ChatCompletionRequest, Completion


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

    @abc.abstractmethod
    def load(self) -> None:
        """Load the model (blocking); raise ``ModelLoadError`` with an actionable message."""

    @abc.abstractmethod
    def warm_up(self) -> None:
        """Run one short generation (blocking) and mark the engine ready."""

    @abc.abstractmethod
    async def generate(self, request: ChatCompletionRequest) -> Completion:
        """Complete one chat request; raise ``LLMServiceError`` subclasses for client errors."""

    def close(self) -> None:
        """Stop running work and release resources; the engine is not ready afterwards."""
        self._ready = False
