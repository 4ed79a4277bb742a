"""`make run`'s own supervisor, a real `python -m stack run` with the tiny model on free ports.

kill -9 a service: it is restarted while the others keep serving (issue 11, item 3). SIGKILL the
supervisor: every service and every service's child goes with it and the ports are free; a
leftover holding a port is named in the error (item 7).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.testing.tiny_model import build_tiny_model
from stack.leftovers import Origin, describe_holder, pids_listening_on
from stack.process import port_is_free
from stack.services import DEFAULT_RASA_MODEL
from tests.stack.supervised import clean_up_after, descendants, direct_children, gone
from tests.support.servers import RASA_TOKEN, domain_responses, say, wait_until
from tools.procs import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent.parent
OPEN_QUESTION = "how do I pitch a tent in strong wind?"  # reaches action_llm_response (rasa_project/tests)
PORTS = ("LLM_PORT", "ACTIONS_PORT", "RASA_PORT", "WEBCHAT_PORT")


class MakeRun:
    """`python -m stack run` as `make run` starts it, in a child process, with its output in files."""

    def __init__(self, root: Path, model_dir: Path, **env: str) -> None:
        self.root = root
        self.ports = {name: free_port() for name in PORTS}
        self.env = {**os.environ, "LLM_MODEL": str(model_dir), "STACK_RUN_DIR": str(root / "run"),
                    "RASA_AUTH_TOKEN": RASA_TOKEN, "ORDERS_DB_URL": f"sqlite:///{root / 'orders.db'}",
                    "ACTIONS_LLM_MAX_TOKENS": "24", "LLM_CPU_THREADS": "1", "ACTIONS_LLM_TIMEOUT_S": "15",
                    **{name: str(port) for name, port in self.ports.items()}, **env}
        self.stdout, self.stderr = root / "make-run.out", root / "make-run.err"
        self.process: subprocess.Popen | None = None

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['RASA_PORT']}"

    def start(self) -> "MakeRun":
        self.process = subprocess.Popen([sys.executable, "-m", "stack", "run"], cwd=ROOT, env=self.env,
                                        stdout=self.stdout.open("w"), stderr=self.stderr.open("w"))
        return self

    def wait_up(self, timeout_s: float = 600.0) -> None:
        wait_until(lambda: "The assistant is up" in self.stdout.read_text() or self.process.poll() is not None,
                   timeout_s=timeout_s, interval_s=0.5, what="`python -m stack run` getting the assistant up")
        assert self.process.poll() is None, f"`python -m stack run` exited:\n{self.stderr.read_text()[-3000:]}"

    def service_pid(self, port_name: str) -> int:
        """The service listening on that port: the supervisor's child (its workers may listen too)."""
        pids = pids_listening_on(self.ports[port_name])
        assert pids, f"nothing listens on {port_name}={self.ports[port_name]}"
        return next((pid for pid in pids if pid in direct_children(self.process.pid)), pids[0])

    def kill_service(self, port_name: str) -> int:
        """kill -9 whatever listens on the service's port, as the OOM killer or an operator would."""
        pid = self.service_pid(port_name)
        for holder in pids_listening_on(self.ports[port_name]):
            os.kill(holder, signal.SIGKILL)
        return pid

    def restart_lines(self, name: str) -> list[str]:
        return [line for line in self.stderr.read_text().splitlines() if f" stack: {name} stopped (" in line]

    def close(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            clean_up_after(self.process.pid)


def busy(ports) -> dict[int, str]:
    """Ports that cannot be bound, with what holds them."""
    return {port: f"held {describe_holder(port)}" for port in ports if not port_is_free(port)}


def ports_free(ports) -> None:
    """Within a few seconds: the connections of killed servers may keep their port a moment (FIN_WAIT)."""
    deadline = time.monotonic() + 10
    while (held := busy(ports)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not held, f"ports still taken 10 s after every process exited: {held}"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    if not DEFAULT_RASA_MODEL.exists():
        pytest.fail(f"No trained Rasa model at {DEFAULT_RASA_MODEL}; run `make rasa-model` (make test does).")
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-qwen2", seed=0)


@pytest.fixture(scope="module")
def make_run(tmp_path_factory, tiny_model):
    running = MakeRun(tmp_path_factory.mktemp("make-run"), tiny_model).start()
    try:
        running.wait_up()
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def responses() -> dict[str, list[str]]:
    return domain_responses()


def order_form_works(rasa_url: str, sender: str, responses) -> bool:
    replies = say(rasa_url, sender, "I want to check my order")
    if not replies or replies[-1] not in responses["utter_ask_order_id"]:
        return False
    if not (replies := say(rasa_url, sender, "RG-10421")) or replies[-1] not in responses["utter_ask_email"]:
        return False
    return any("RG-10421" in reply for reply in say(rasa_url, sender, "anna.berg@example.com"))


def test_the_llm_service_killed_is_restarted_while_the_rest_keeps_serving(make_run, responses):
    others = {name: make_run.service_pid(name) for name in ("ACTIONS_PORT", "RASA_PORT", "WEBCHAT_PORT")}
    killed = make_run.kill_service("LLM_PORT")
    url, sender = make_run.rasa_url, "llm-killed"

    replies = say(url, sender, OPEN_QUESTION)
    assert replies and replies[-1] in responses["utter_llm_unavailable"], replies
    assert say(url, sender, "hi")[0] in responses["utter_greet"]

    scripted = {text for texts in responses.values() for text in texts}
    attempt = iter(range(1000))

    def the_llm_answers() -> bool:  # a sender per try: the channel gate limits messages per sender
        replies = say(url, f"{sender}-{next(attempt)}", OPEN_QUESTION)
        return bool(replies) and replies[-1] not in scripted

    wait_until(the_llm_answers, timeout_s=60, interval_s=1, what="the LLM answering again after its restart")
    assert make_run.service_pid("LLM_PORT") != killed
    assert {name: make_run.service_pid(name) for name in others} == others, "another service was restarted"
    lines = make_run.restart_lines("llm")
    assert len(lines) == 1 and lines[0].endswith(
        f"llm stopped (killed by SIGKILL); restarting it in 1 s (restart 1 of at most 5 within 300 s); "
        f"log: {make_run.root / 'run' / 'logs' / 'llm.log'}"), lines


def test_the_action_server_killed_is_restarted_and_the_order_form_works_again(make_run, responses):
    killed = make_run.kill_service("ACTIONS_PORT")
    url = make_run.rasa_url
    assert say(url, "actions-killed", "hi")[0] in responses["utter_greet"]

    attempt = iter(range(1000))
    wait_until(lambda: order_form_works(url, f"actions-killed-{next(attempt)}", responses), timeout_s=60,
               interval_s=1, what="the order form working again after the action server's restart")
    assert make_run.service_pid("ACTIONS_PORT") != killed
    assert len(make_run.restart_lines("actions")) == 1, make_run.restart_lines("actions")


def test_make_run_killed_takes_every_service_and_their_children_with_it(make_run):
    """After the restarts above too: services the supervision loop started again die with it as well."""
    tree = descendants(make_run.process.pid)
    services = direct_children(make_run.process.pid)
    assert len(services) == 5, "four services and the keeper"
    assert tree - services, "no service has children of its own (the action server's Sanic workers): nothing " \
                            "tests that they go too"
    make_run.process.send_signal(signal.SIGKILL)
    make_run.process.wait()
    wait_until(lambda: all(gone(pid) for pid in tree), timeout_s=10,
               what="every service and every service's child exiting after `make run` was SIGKILLed")
    ports_free(make_run.ports.values())


def test_ctrl_c_while_make_run_is_starting_stops_what_has_started(tmp_path, tiny_model):
    running = MakeRun(tmp_path, tiny_model).start()
    try:
        wait_until(lambda: "actions is ready" in running.stderr.read_text() or running.process.poll() is not None,
                   timeout_s=300, interval_s=0.5, what="the LLM service and the action server getting ready")
        tree = descendants(running.process.pid)
        running.process.send_signal(signal.SIGINT)
        assert running.process.wait(timeout=60) == 0, running.stderr.read_text()[-3000:]
        assert "Stopped." in running.stdout.read_text()
        wait_until(lambda: all(gone(pid) for pid in tree), timeout_s=10, what="every service exiting")
        ports_free(running.ports.values())
    finally:
        running.close()


def test_a_leftover_of_an_earlier_make_run_holding_a_port_is_named(tmp_path, tiny_model):
    dead = subprocess.Popen(["true"])
    dead.wait()  # the earlier `make run`'s supervisor, killed
    running = MakeRun(tmp_path, tiny_model)
    port = running.ports["LLM_PORT"]
    leftover = subprocess.Popen(
        [sys.executable, "-c", f"import socket, time\ns = socket.socket(); s.bind(('127.0.0.1', {port})); "
                               "s.listen(); time.sleep(600)"],
        env={**os.environ, **Origin("llm", dead.pid, time.time() - 3600, "`make run`").env()})
    try:
        wait_until(lambda: leftover.pid in pids_listening_on(port), what="the leftover listening")
        running.start()
        assert running.process.wait(timeout=120) == 1
        error = running.stderr.read_text()
        assert (f"port {port} (llm) is held by pid {leftover.pid}, the llm service left over from an earlier "
                f"`make run`") in error, error
        assert f"stop it with `kill {leftover.pid}`" in error
    finally:
        leftover.kill()
        leftover.wait()
        running.close()
