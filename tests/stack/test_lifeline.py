"""Services die with their supervisor however it ends, and a leftover holding a port is named (Linux)."""

from __future__ import annotations

import calendar
import os
import signal
import subprocess
import sys
import time

import pytest

from stack.leftovers import Origin, describe_holder, pids_listening_on
from stack.process import Service, Stack, StackError, port_is_free
from stack.supervisor import RestartPolicy
from tests.stack.supervised import Supervised, descendants, gone
from tests.support.servers import wait_until
from tools.procs import free_port

def listener_code(port: int) -> str:
    return ("import socket, time\n"
            f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen()\n"
            "time.sleep(600)\n")


def service_with_a_child(name: str, tmp_path) -> tuple[Service, int]:
    """An HTTP server that first starts a child of its own holding another port (as a worker would)."""
    port, child_port = free_port(), free_port()
    code = ("import os, subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', {listener_code(child_port)!r}])\n"
            f"os.execv(sys.executable, [sys.executable, '-m', 'http.server', '{port}', '--bind', '127.0.0.1'])\n")
    return Service(name=name, command=[sys.executable, "-c", code], health_url=f"http://127.0.0.1:{port}/",
                   url=f"http://127.0.0.1:{port}", cwd=tmp_path), child_port


def test_services_and_their_own_children_die_when_the_supervisor_is_killed(tmp_path):
    (one, one_child_port), (two, two_child_port) = (service_with_a_child("one", tmp_path),
                                                    service_with_a_child("two", tmp_path))
    with Supervised(tmp_path, [one, two], RestartPolicy()) as supervised:
        wait_until(lambda: not port_is_free(one_child_port) and not port_is_free(two_child_port),
                   what="the services' children listening")
        tree = descendants(supervised.process.pid)
        assert len(tree) >= 4, "expected two services and their two children"
        supervised.process.send_signal(signal.SIGKILL)
        supervised.process.wait()
        wait_until(lambda: all(gone(pid) for pid in tree), timeout_s=10,
                   what="every service and every service's child exiting after the supervisor was killed")
        assert all(port_is_free(p) for p in (one.port, two.port, one_child_port, two_child_port))


def test_a_service_dies_with_its_supervisor_even_when_the_keeper_was_killed_first(tmp_path):
    with Supervised(tmp_path, [Service(name="web", command=[sys.executable, "-m", "http.server", str(port := free_port()),
                                                             "--bind", "127.0.0.1"],
                                       health_url=f"http://127.0.0.1:{port}/", url=f"http://127.0.0.1:{port}",
                                       cwd=tmp_path)], RestartPolicy()) as supervised:
        web = supervised.pids()["web"]
        keeper = next(pid for pid in descendants(supervised.process.pid)
                      if b"stack.lifeline" in open(f"/proc/{pid}/cmdline", "rb").read())
        os.kill(keeper, signal.SIGKILL)
        wait_until(lambda: gone(keeper), what="the keeper exiting")
        supervised.process.send_signal(signal.SIGKILL)
        supervised.process.wait()
        wait_until(lambda: gone(web), timeout_s=10, what="the service exiting with its supervisor (PR_SET_PDEATHSIG)")
        assert port_is_free(port)


@pytest.fixture
def holder(tmp_path):
    """Start a process listening on a free port, with the environment given; yields (pid, port)."""
    started = []

    def start(env: dict[str, str]) -> tuple[int, int]:
        port = free_port()
        process = subprocess.Popen([sys.executable, "-c", listener_code(port)], env={**os.environ, **env})
        started.append(process)
        wait_until(lambda: process.pid in pids_listening_on(port), what="the holder listening")
        return process.pid, port

    yield start
    for process in started:
        process.kill()
        process.wait()


def port_error(name: str, port: int, tmp_path) -> str:
    service = Service(name=name, command=["true"], health_url=f"http://127.0.0.1:{port}/",
                      url=f"http://127.0.0.1:{port}", cwd=tmp_path)
    with pytest.raises(StackError) as caught:
        Stack([service], log_dir=tmp_path / "logs").check_ports()
    return str(caught.value)


def test_a_service_left_over_from_an_earlier_run_is_named_with_how_to_stop_it(tmp_path, holder):
    dead = subprocess.Popen(["true"])
    dead.wait()  # the earlier run's supervisor: gone
    started = calendar.timegm((2026, 12, 2, 13, 40, 11, 0, 0, 0))
    pid, port = holder(Origin("llm", dead.pid, started, "`make run`").env())
    assert port_error("llm", port, tmp_path) == (
        f"Port already in use: port {port} (llm) is held by pid {pid}, the llm service left over from an earlier "
        f"`make run` (started 2026-12-02 13:40:11 UTC, its supervisor pid {dead.pid} is gone); stop it with "
        f"`kill {pid}`. Or choose other ports with RASA_PORT / ACTIONS_PORT / LLM_PORT / WEBCHAT_PORT.")


def test_a_service_of_a_run_still_going_is_named_with_its_supervisor(tmp_path, holder):
    pid, port = holder(Origin("actions", os.getpid(), time.time(), "`make run`").env())
    message = port_error("actions", port, tmp_path)
    assert (f"port {port} (actions) is held by pid {pid}, the actions service of the `make run` still running as "
            f"pid {os.getpid()}") in message
    assert f"`kill {os.getpid()}`" in message


def test_any_other_holder_is_named_with_its_command(tmp_path, holder):
    pid, port = holder({})
    message = port_error("webchat", port, tmp_path)
    assert f"port {port} (webchat) is held by pid {pid} (`{sys.executable} -c import socket, time" in message
    assert f"stop it with `kill {pid}`" in message


def test_a_port_kept_only_by_closing_connections_is_said_to_be_free_soon(tmp_path):
    """No process listens, but the connections of a server killed a moment ago still close (FIN_WAIT1)."""
    (tmp_path / "net").mkdir()
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    row = "   0: 0100007F:1F40 0100007F:99C2 04 00000000:00000000 00:00000000 00000000     0        0 0 1\n"
    (tmp_path / "net" / "tcp").write_text(header + row)
    (tmp_path / "net" / "tcp6").write_text(header)
    assert describe_holder(8000, proc=tmp_path) == (
        "by no process: the connections of one that just ended are still closing; try again in a few seconds")
    assert describe_holder(8001, proc=tmp_path).startswith("by a process this user cannot see")
