"""Run a set of services as child processes: start, wait until healthy, stop cleanly.

Each service runs in its own process group (Ctrl-C in the terminal reaches only the supervisor,
which stops them in order) and dies with the supervisor however it ends (stack/lifeline.py).
Start services from the main thread: see stack/lifeline.py for why.

A child is given of the supervisor's environment only what its service reads (``Service.reads``)
and the process basics (``ridgeline.settings``), with the service's own ``env`` over it:
``child_env``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Mapping

from ridgeline.settings import Allowlist
from stack.leftovers import Origin, describe_holder
from stack.lifeline import Lifeline, die_with_parent

logger = logging.getLogger(__name__)


class StackError(RuntimeError):
    """A service could not start; the message says which and why."""


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str
    url: str
    cwd: Path
    # Set for the child, over what it is given of the supervisor's environment:
    env: dict[str, str] = field(default_factory=dict)
    # What the child is given of the supervisor's environment besides the process basics
    # (its settings module's READS); by default nothing more.
    reads: Allowlist = field(default_factory=Allowlist)
    startup_timeout_s: float = 180.0

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])


def child_env(service: Service, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment ``service``'s process starts with: what it reads of ``environ`` (default: the
    supervisor's), the process basics, and ``service.env`` over them."""
    environ = os.environ if environ is None else environ
    return {**service.reads.select(environ), **service.env, "PYTHONUNBUFFERED": "1"}


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class RunningService:
    def __init__(self, service: Service, log_dir: Path, echo: IO[str] | None, *, origin: Origin | None = None,
                 lifeline: Lifeline | None = None, restart: int = 0) -> None:
        self.service = service
        self.restart = restart
        self.log_path = log_dir / f"{service.name}.log"
        self._echo = echo
        self._lifeline = lifeline
        # A restart appends: the crashed run's last lines stay in the log.
        self._log = self.log_path.open("a" if restart else "w", encoding="utf-8")
        if restart:
            self._log.write(f"--- restart {restart} at {time.strftime('%Y-%m-%d %H:%M:%S %Z')} ---\n")
            self._log.flush()
        env = {**child_env(service), **(origin.env() if origin else {})}
        self.process = subprocess.Popen(
            service.command,
            cwd=service.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # our own process group: Ctrl-C reaches us, we stop it
            preexec_fn=die_with_parent(),
        )
        if lifeline is not None:
            lifeline.watch(self.process.pid)
        self._pump = threading.Thread(target=self._copy_output, daemon=True)
        self._pump.start()

    def _copy_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._log.write(line)
            self._log.flush()
            if self._echo is not None:
                self._echo.write(f"[{self.service.name}] {line}")
                self._echo.flush()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace_s: float = 15.0) -> int | None:
        if self.alive:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in %.0f s; killing it", self.service.name, grace_s)
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        try:  # whatever the service started and left behind in its group (it may hold the port)
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self._lifeline is not None:
            self._lifeline.forget(self.process.pid)
        self._pump.join(timeout=5)
        self._log.close()
        return self.process.returncode


class Stack:
    """Services started together; use as a context manager or call start()/stop().

    ``stopping``, when given, is checked while waiting for a service to get healthy: setting it
    (Ctrl-C) ends the wait with a StackError. ``owner`` names, in the error of a later run that
    finds one of these services still holding its port, what started it.
    """

    def __init__(self, services: list[Service], log_dir: Path, echo: IO[str] | None = None, *,
                 stopping: threading.Event | None = None, owner: str = "test stack") -> None:
        self.services = services
        self.log_dir = log_dir
        self.echo = echo
        self.stopping = stopping
        self.owner = owner
        self.started_at = time.time()
        self.running: dict[str, RunningService] = {}
        self._lifeline: Lifeline | None = None

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def check_ports(self) -> None:
        busy = [s for s in self.services if not port_is_free(s.port)]
        if busy:
            held = "; ".join(f"port {s.port} ({s.name}) is held {describe_holder(s.port)}" for s in busy)
            raise StackError(
                f"Port already in use: {held}. "
                "Or choose other ports with RASA_PORT / ACTIONS_PORT / LLM_PORT / WEBCHAT_PORT."
            )

    def spawn(self, name: str, restart: int = 0) -> RunningService:
        """Start one service without waiting for it to get healthy."""
        if self._lifeline is None and sys.platform.startswith("linux"):
            self._lifeline = Lifeline()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        origin = Origin(name, os.getpid(), self.started_at, self.owner)
        running = RunningService(self.service(name), self.log_dir, self.echo, origin=origin,
                                 lifeline=self._lifeline, restart=restart)
        self.running[name] = running
        return running

    def start(self, names: list[str] | None = None) -> None:
        chosen = [s for s in self.services if names is None or s.name in names]
        for service in chosen:
            self.spawn(service.name)
        for service in chosen:
            self._wait_healthy(self.running[service.name])

    def _wait_healthy(self, running: RunningService) -> None:
        service = running.service
        deadline = time.monotonic() + service.startup_timeout_s
        while time.monotonic() < deadline:
            if self.stopping is not None and self.stopping.is_set():
                raise StackError(f"Stopped while {service.name} was starting.")
            if not running.alive:
                raise StackError(
                    f"{service.name} exited with code {running.process.returncode} while starting. "
                    f"Last lines of {running.log_path}:\n{tail(running.log_path)}"
                )
            if http_ok(service.health_url):
                logger.info("%s is ready at %s", service.name, service.url)
                return
            time.sleep(0.5)
        raise StackError(
            f"{service.name} was not ready at {service.health_url} after {service.startup_timeout_s:.0f} s. "
            f"Last lines of {running.log_path}:\n{tail(running.log_path)}"
        )

    def stop(self, names: list[str] | None = None) -> None:
        for name in reversed(list(self.running)):
            if names is None or name in names:
                self.running.pop(name).stop()
        if names is None and self._lifeline is not None:
            self._lifeline.close()
            self._lifeline = None

    def first_dead(self) -> RunningService | None:
        return next((r for r in self.running.values() if not r.alive), None)

    def __enter__(self) -> "Stack":
        try:
            self.check_ports()
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def interrupted_by_signal() -> threading.Event:
    """An event set on SIGINT/SIGTERM/SIGHUP, so the main loop can stop the children in order."""
    event = threading.Event()

    def handler(signum, frame) -> None:
        if event.is_set():  # a second Ctrl-C: stop waiting politely
            sys.exit(130)
        event.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)  # the terminal closed
    return event
