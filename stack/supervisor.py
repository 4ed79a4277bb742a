"""Keep the stack serving: restart a service that dies, with exponential backoff, while the others go on.

One loop on the main thread does everything that changes state (see stack/lifeline.py: services
are forked from the main thread so that they die with the supervisor). A restarted service is
probed for health by a small thread that only sets an event, so waiting for it never blocks
noticing another crash. After more than ``max_restarts`` crashes of one service within
``window_s`` seconds the supervisor gives up (GaveUp) and the caller stops everything.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from stack.process import Stack, StackError, http_ok, tail

logger = logging.getLogger("stack")


class GaveUp(StackError):
    """A service crashed more often than the restart policy allows."""


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5  # restarts of one service allowed within window_s; 0: never restart
    window_s: float = 300.0
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0

    def delay_s(self, crashes: int) -> float:
        """Wait before the restart that follows the ``crashes``-th crash in the window: 1, 2, 4 … s, capped."""
        return min(self.first_delay_s * 2 ** (crashes - 1), self.max_delay_s)


def how_it_ended(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class HealthProbe:
    """Polls a health URL from its own thread until it answers 200 or is cancelled."""

    def __init__(self, url: str, interval_s: float = 0.5) -> None:
        self.url = url
        self.interval_s = interval_s
        self.ready = threading.Event()
        self._cancelled = threading.Event()
        threading.Thread(target=self._run, name=f"probe {url}", daemon=True).start()

    def _run(self) -> None:
        while not self._cancelled.is_set():
            if http_ok(self.url, timeout_s=min(2.0, self.interval_s * 4)):
                self.ready.set()
                return
            self._cancelled.wait(self.interval_s)

    def cancel(self) -> None:
        self._cancelled.set()


@dataclass
class _Starting:
    probe: HealthProbe
    deadline: float


class Supervisor:
    def __init__(self, stack: Stack, policy: RestartPolicy,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stack = stack
        self.policy = policy
        self.clock = clock
        self.restarts: dict[str, int] = {}  # per service, since the start
        self._crashes: dict[str, deque[float]] = {}  # per service, within the window
        self._due: dict[str, float] = {}  # service -> when to start it again
        self._starting: dict[str, _Starting] = {}  # restarted, not yet healthy

    def run(self, stop: threading.Event, interval_s: float = 0.5) -> None:
        """Supervise until ``stop`` is set; raises GaveUp."""
        while not stop.wait(interval_s):
            self.tick()

    @property
    def waiting(self) -> dict[str, float]:
        """Services in backoff, with when they start again."""
        return dict(self._due)

    def tick(self) -> None:
        now = self.clock()
        for name, running in list(self.stack.running.items()):
            starting = self._starting.get(name)
            if not running.alive:
                self._crashed(name, how_it_ended(running.process.returncode))
            elif starting is not None and starting.probe.ready.is_set():
                del self._starting[name]
                logger.info("%s is ready again at %s (restart %d)", name, running.service.url, running.restart)
            elif starting is not None and now > starting.deadline:
                self._crashed(name, f"not ready {running.service.startup_timeout_s:g} s after restart "
                                    f"{running.restart}")
        for name, due in list(self._due.items()):
            if self.clock() >= due:
                del self._due[name]
                self._restart(name)

    def _crashed(self, name: str, how: str) -> None:
        starting = self._starting.pop(name, None)
        if starting is not None:
            starting.probe.cancel()
        log_path = self.stack.running[name].log_path
        self.stack.stop([name])  # reaps it, kills what it left in its process group, closes its log
        now = self.clock()
        crashes = self._crashes.setdefault(name, deque())
        crashes.append(now)
        while crashes and crashes[0] < now - self.policy.window_s:
            crashes.popleft()
        if len(crashes) > self.policy.max_restarts:
            allowed = (f"STACK_MAX_RESTARTS={self.policy.max_restarts} allows no restart" if not self.policy.max_restarts
                       else f"it stopped {len(crashes)} times within {self.policy.window_s:g} s "
                            f"(STACK_MAX_RESTARTS={self.policy.max_restarts}, "
                            f"STACK_RESTART_WINDOW_S={self.policy.window_s:g})")
            raise GaveUp(
                f"{name} stopped ({how}) and {allowed}, so the assistant is stopping: fix what its log shows, "
                f"or allow more restarts with STACK_MAX_RESTARTS / STACK_RESTART_WINDOW_S. "
                f"Last lines of {log_path}:\n{tail(log_path)}"
            )
        delay = self.policy.delay_s(len(crashes))
        self._due[name] = now + delay
        logger.warning("%s stopped (%s); restarting it in %g s (restart %d of at most %d within %g s); log: %s",
                       name, how, delay, len(crashes), self.policy.max_restarts, self.policy.window_s, log_path)

    def _restart(self, name: str) -> None:
        self.restarts[name] = self.restarts.get(name, 0) + 1
        try:
            running = self.stack.spawn(name, restart=self.restarts[name])
        except OSError as error:
            raise GaveUp(f"{name} could not be started again ({error}), so the assistant is stopping.") from error
        self._starting[name] = _Starting(HealthProbe(running.service.health_url),
                                         self.clock() + running.service.startup_timeout_s)

    def close(self) -> None:
        for starting in self._starting.values():
            starting.probe.cancel()
        self._starting.clear()
        self._due.clear()


def supervise(stack: Stack, policy: RestartPolicy, stop: threading.Event) -> int:
    """Keep a started stack serving until ``stop`` is set (0) or a service crashes too often (1);
    stops the stack either way."""
    supervisor = Supervisor(stack, policy)
    try:
        supervisor.run(stop)
        print("\nStopping…", flush=True)
        return 0
    except GaveUp as error:
        print(f"\nerror: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        supervisor.close()
        stack.stop()
