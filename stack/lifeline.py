"""Services die with their supervisor, however it ends (SIGKILL, a closed terminal, a crash).

Two mechanisms, because either alone leaves something behind (Linux; elsewhere neither applies):

- each service is started with ``PR_SET_PDEATHSIG = SIGKILL``: the kernel kills it when the
  *thread* that forked it ends. So only the main thread, which lives as long as the supervisor,
  asks for it (a service forked from another thread would die with that thread);
- a keeper process (``python -m stack.lifeline``) reads the services' process groups from a pipe
  whose only writer is the supervisor. When the pipe closes, the supervisor is gone, and the keeper
  kills those groups: the services' own children, which PDEATHSIG does not reach, go too.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Iterable

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
_KILL = int(signal.SIGKILL)
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when this thread ends, or None where that
    cannot be done (not Linux, or not the main thread)."""
    if _libc is None or threading.current_thread() is not threading.main_thread():
        return None
    prctl = _libc.prctl  # looked up before the fork: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, _KILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the supervisor died before prctl: nobody would kill us later
            os.kill(os.getpid(), _KILL)

    return preexec


class Lifeline:
    """The supervisor's end of the keeper: tell it each service's process group as it starts and stops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keeper = subprocess.Popen(
            [sys.executable, "-m", "stack.lifeline"],
            cwd=Path(__file__).resolve().parent.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # Ctrl-C in the terminal reaches the supervisor, not the keeper
        )

    @property
    def pid(self) -> int:
        return self._keeper.pid

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}")

    def forget(self, pgid: int) -> None:
        self._send(f"-{pgid}")

    def _send(self, line: str) -> None:
        with self._lock:
            stdin = self._keeper.stdin
            if stdin is None or stdin.closed:
                return
            try:
                stdin.write(line + "\n")
                stdin.flush()
            except (BrokenPipeError, ValueError):
                logger.warning("The keeper process (pid %d) is gone: if this supervisor is killed, its services'"
                               " own children may outlive it.", self._keeper.pid)
                stdin.close()

    def close(self) -> None:
        """The supervisor stops: the keeper kills what is still watched (nothing, after a clean stop)."""
        with self._lock:
            if self._keeper.stdin is not None and not self._keeper.stdin.closed:
                try:
                    self._keeper.stdin.close()
                except BrokenPipeError:
                    pass
        try:
            self._keeper.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._keeper.kill()
            self._keeper.wait()


def keep(lines: Iterable[str]) -> set[int]:
    """The keeper: follow the groups until the supervisor is gone, then kill those left."""
    groups: set[int] = set()
    for line in lines:  # ends when the supervisor closes the pipe or dies
        line = line.strip()
        if line[:1] == "+":
            groups.add(int(line[1:]))
        elif line[:1] == "-":
            groups.discard(int(line[1:]))
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return groups


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    keep(sys.stdin)
