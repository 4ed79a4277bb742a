"""A supervisor in its own process, as `python -m stack run` runs one, for the tests of stopping and dying.

``python -m tests.stack.supervised CONFIG.json`` starts the services of CONFIG with a Stack and keeps
them with stack.supervisor.supervise() until SIGINT/SIGTERM/SIGHUP: the same calls as
stack/__main__.py, without Rasa. ``Supervised`` drives it from a test and reads the process tree
from /proc.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from ridgeline.settings import Allowlist
from stack.leftovers import origin_of
from stack.process import Service, Stack, interrupted_by_signal, port_is_free
from stack.supervisor import RestartPolicy, supervise
from tests.support.servers import wait_until

ROOT = Path(__file__).resolve().parent.parent.parent


def parent_and_state(pid: int) -> tuple[int, str] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), fields[0]


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for its reaper counts as gone: it holds no port and runs no code)."""
    found = parent_and_state(pid)
    return found is None or found[1] == "Z"


def descendants(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = parent_and_state(int(entry.name))
            if found is not None and found[1] != "Z":
                parents[int(entry.name)] = found[0]
    tree, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - tree
        tree |= frontier
    return tree


def direct_children(pid: int) -> set[int]:
    return {child for child in descendants(pid) if (parent_and_state(child) or (0, ""))[0] == pid}


class Supervised:
    def __init__(self, root: Path, services: list[Service], policy: RestartPolicy) -> None:
        self.root = root
        self.services = services
        self.config = root / "supervised.json"
        self.config.write_text(json.dumps({
            "services": [{**dataclasses.asdict(s), "cwd": str(s.cwd),
                          "reads": {"names": sorted(s.reads.names), "prefixes": list(s.reads.prefixes)}}
                         for s in services],
            "policy": dataclasses.asdict(policy), "log_dir": str(root / "logs")}))
        self.stdout, self.stderr = root / "supervised.out", root / "supervised.err"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Supervised":
        self.process = subprocess.Popen([sys.executable, "-m", "tests.stack.supervised", str(self.config)],
                                        cwd=ROOT, stdout=self.stdout.open("w"), stderr=self.stderr.open("w"))
        wait_until(lambda: "up" in self.stdout.read_text().split() or self.process.poll() is not None,
                   timeout_s=60, what="the supervised services starting")
        assert self.process.poll() is None, f"the supervisor exited:\n{self.stderr.read_text()}"
        return self

    def pids(self) -> dict[str, int]:
        """The supervisor's children by service name (from the marker every service carries)."""
        named = {}
        for pid in direct_children(self.process.pid):
            origin = origin_of(pid)
            if origin is not None and origin.supervisor == self.process.pid:
                named[origin.service] = pid
        return named

    def wait_for_log(self, text: str, timeout_s: float = 30.0) -> None:
        wait_until(lambda: text in self.stderr.read_text(), timeout_s=timeout_s, what=f"the log line {text!r}")

    def interrupt_and_expect_all_gone(self, services: list[Service]) -> None:
        tree = descendants(self.process.pid)
        assert tree, "the supervisor has no children"
        self.process.send_signal(signal.SIGINT)
        try:
            returncode = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"Ctrl-C did not stop the supervisor within 60 s:\n{self.stderr.read_text()}")
        assert returncode == 0, self.stderr.read_text()
        wait_until(lambda: all(gone(pid) for pid in tree), timeout_s=10, what="every child exiting")
        assert all(port_is_free(s.port) for s in services)

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            clean_up_after(self.process.pid)


def started_by(supervisor: int) -> list[int]:
    """Every process, wherever it now hangs in the tree, that a stack in process ``supervisor`` started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            origin = origin_of(int(entry.name))
            if origin is not None and origin.supervisor == supervisor:
                found.append(int(entry.name))
    return found


def clean_up_after(supervisor: int) -> None:
    """A failed test leaves nothing behind, with or without the fix under test."""
    for pid in started_by(supervisor):
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def main(config_path: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = json.loads(Path(config_path).read_text())
    stop = interrupted_by_signal()
    services = [Service(**{**s, "cwd": Path(s["cwd"]), "reads": Allowlist(**s["reads"])}) for s in config["services"]]
    stack = Stack(services, log_dir=Path(config["log_dir"]), stopping=stop)
    stack.start()
    print("up", flush=True)
    return supervise(stack, RestartPolicy(**config["policy"]), stop)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
