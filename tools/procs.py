"""Server processes for the benchmarks, the load generator and the tests: free loopback ports, the
LLM service alone, and the stack (LLM service, action server, Rasa) on free ports.

Every server process is started, awaited and stopped by the product's own ``stack.process.Stack``,
as ``make run`` starts them (own process group, dies with its parent, log file per service).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from stack.process import RunningService, Service, Stack
from stack.services import StackConfig, build_services


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_bytes(pid: int) -> int | None:
    """The peak resident set size of process ``pid`` (Linux ``VmHWM``), or None where unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class LLMServer:
    """``python -m llm serve --model MODEL ARGS…`` on a free loopback port for a ``with`` block.

    Ready when ``/ready`` answers 200 (``ready_s`` says after how long); the log goes to
    ``log_dir/<name>.log``. ``process`` is the server's ``Popen`` (after the block too: its exit code).
    """

    def __init__(self, model_dir: Path | str, args: list[str], log_dir: Path, *, name: str = "llm",
                 ready_timeout_s: float = 900.0, owner: str = "benchmark") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service = Service(
            name=name,
            command=[sys.executable, "-m", "llm", "serve", "--model", str(model_dir), "--port", str(self.port), *args],
            health_url=f"{self.url}/ready",
            url=self.url,
            cwd=Path.cwd(),  # relative model and cache paths mean what they meant on the command line
            startup_timeout_s=ready_timeout_s,
        )
        self.log_path = log_dir / f"{name}.log"
        self._stack = Stack([self.service], log_dir=log_dir, owner=owner)
        self.running: RunningService | None = None
        self.ready_s = 0.0

    @property
    def process(self) -> subprocess.Popen:
        """The server's process (still there after the block, for its exit code)."""
        assert self.running is not None, "start the server first: with LLMServer(...) as server"
        return self.running.process

    def __enter__(self) -> LLMServer:
        started = time.perf_counter()
        self._stack.__enter__()
        self.ready_s = time.perf_counter() - started
        self.running = self._stack.running[self.service.name]
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stack.__exit__(*exc_info)

    def peak_rss_bytes(self) -> int | None:
        return peak_rss_bytes(self.process.pid)


def loopback_services(root: Path, llm_model: str, *, llm_env: Mapping[str, str] | None = None,
                      llm_max_tokens: int | None = None) -> tuple[StackConfig, list[Service]]:
    """The LLM service (on ``llm_model``), the action server (orders in ``root``) and Rasa, as
    ``make run`` starts them but on free loopback ports and without the webchat."""
    config = StackConfig(llm_model=llm_model, rasa_port=free_port(), actions_port=free_port(),
                         llm_port=free_port(), webchat_port=free_port(), run_dir=root / "run")
    services = [s for s in build_services(config) if s.name != "webchat"]
    by_name = {s.name: s for s in services}
    by_name["llm"].env.update(llm_env or {})
    by_name["actions"].env["ORDERS_DB_URL"] = f"sqlite:///{root / 'orders.db'}"
    if llm_max_tokens is not None:
        by_name["actions"].env["ACTIONS_LLM_MAX_TOKENS"] = str(llm_max_tokens)
    return config, services


def tiny_model_services(root: Path, llm_max_tokens: int = 16) -> tuple[StackConfig, list[Service]]:
    """``loopback_services`` on a tiny random model built in ``root``: what the turn benchmark
    (``tools.bench.turns``) and the load generator (``tools.load``) run."""
    from tools.testing.tiny_model import build_tiny_model  # torch: only for those who ask

    # the tiny model gains nothing from a second core
    return loopback_services(root, str(build_tiny_model(root / "tiny")), llm_env={"LLM_CPU_THREADS": "1"},
                             llm_max_tokens=llm_max_tokens)
