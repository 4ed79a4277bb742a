"""An engine's life as one explicit state machine: load -> warm-up -> ready -> drain -> close.

::

    NEW --load--> LOADING --> LOADED --warm_up--> WARMING_UP --> READY
                     |                               |
                     +-----------> FAILED <----------+      (the reason is kept for /ready)

    any state but CLOSED --close--> DRAINING --> CLOSED

``Lifecycle`` is the only owner of the state: every transition is one method
that checks and changes the state under one lock, so a transition that lost a
race (a warm-up finishing after ``close()`` began, say) is refused instead of
overwriting the newer state. The refusals are return values, not errors, where
losing the race is a normal outcome (a shutdown under way), and
``RuntimeError`` where it is a programming error (loading twice).
"""

from __future__ import annotations

import threading
from enum import Enum

from llm.errors import ModelNotReady


class EngineState(str, Enum):
    NEW = "new"
    LOADING = "loading"
    LOADED = "loaded"
    WARMING_UP = "warming_up"
    READY = "ready"
    FAILED = "failed"
    DRAINING = "draining"
    CLOSED = "closed"


SHUTTING_DOWN = frozenset({EngineState.DRAINING, EngineState.CLOSED})
# The states in which the weights are in memory and usable.
LOADED_STATES = frozenset({EngineState.LOADED, EngineState.WARMING_UP, EngineState.READY})


class Lifecycle:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = EngineState.NEW
        self._failure = ""

    @property
    def state(self) -> EngineState:
        return self._state

    @property
    def failure(self) -> str:
        """Why loading or warming up failed (``FAILED``); empty otherwise."""
        return self._failure

    @property
    def shutting_down(self) -> bool:
        return self._state in SHUTTING_DOWN

    # --- loading ------------------------------------------------------------------------------

    def start_loading(self) -> None:
        with self._lock:
            if self._state is not EngineState.NEW:
                raise RuntimeError(f"The engine can only be loaded once (it is {self._state.value}).")
            self._state = EngineState.LOADING

    def finish_loading(self) -> bool:
        """LOADING -> LOADED; False when a shutdown began meanwhile."""
        return self._move(EngineState.LOADING, EngineState.LOADED)

    # --- warming up ---------------------------------------------------------------------------

    def start_warm_up(self) -> bool:
        """LOADED -> WARMING_UP. False when there is nothing to do: already warm, or shutting down."""
        with self._lock:
            if self._state is EngineState.LOADED:
                self._state = EngineState.WARMING_UP
                return True
            if self._state in SHUTTING_DOWN or self._state is EngineState.READY:
                return False
            if self._state is EngineState.FAILED:
                raise ModelNotReady(f"The engine failed and cannot warm up: {self._failure}")
            raise ModelNotReady(f"The model is not loaded (the engine is {self._state.value}).")

    def finish_warm_up(self) -> bool:
        """WARMING_UP -> READY; False when a shutdown began meanwhile (the engine stays shutting down)."""
        return self._move(EngineState.WARMING_UP, EngineState.READY)

    def fail(self, reason: str) -> bool:
        """LOADING or WARMING_UP -> FAILED with ``reason``; False when a shutdown began meanwhile."""
        with self._lock:
            if self._state not in (EngineState.LOADING, EngineState.WARMING_UP):
                return False
            self._state, self._failure = EngineState.FAILED, reason
            return True

    # --- shutting down ------------------------------------------------------------------------

    def start_draining(self) -> bool:
        """Any state -> DRAINING; False when a drain already began (only the first caller drains)."""
        with self._lock:
            if self._state in SHUTTING_DOWN:
                return False
            self._state = EngineState.DRAINING
            return True

    def finish_closing(self) -> None:
        self._move(EngineState.DRAINING, EngineState.CLOSED)

    def _move(self, expected: EngineState, target: EngineState) -> bool:
        with self._lock:
            if self._state is not expected:
                return False
            self._state = target
            return True
