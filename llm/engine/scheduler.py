"""How requests share the model: today, one generation at a time on one worker thread.

``SerialScheduler`` runs blocking generation calls in arrival order on a single
dedicated thread, so the event loop stays free for ``/health``, ``/ready`` and
``/metrics`` while the model works. A later batching scheduler replaces this
class (and only this class and its caller in the engine).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class SerialScheduler:
    """A FIFO queue in front of one generation thread."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-generate")
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Requests submitted and not finished (running + waiting)."""
        return self._in_flight

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        self._in_flight += 1
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        finally:
            self._in_flight -= 1

    def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run on the generation thread from synchronous code (start-up, tests)."""
        return self._executor.submit(fn, *args).result()

    def shutdown(self) -> None:
        """Drop waiting work; the running call finishes (the engine asks it to stop early)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
