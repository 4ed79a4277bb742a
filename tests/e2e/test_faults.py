"""Faults in the services behind Rasa: every user turn still gets a reply, and the assistant recovers.

The whole stack runs (tests/e2e/conftest.py); for the LLM's faults the action server is pointed
at a misbehaving OpenAI-compatible server on loopback (tests/support/fake_openai.py) with a 2 s budget.
Rasa restarting on PostgreSQL is tested in tests/stores/test_stores.py; the LLM service's own
back-pressure (429 on a full queue, a disconnect freeing its slot) in tests/llm/test_live_http.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from stack.process import Service
from tests.e2e.conftest import Conversation, service_url
from tests.support.fake_openai import Behaviour, FakeOpenAIServer
from tests.support.servers import wait_until
from tools.procs import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
BUDGET_S = 2.0
# What the budget allows on top: Rasa's own NLU and policies, and a loaded 2-core machine.
SLACK_S = 5.0
OPEN_QUESTION = "how do I keep my feet warm while hiking in snow?"


@contextlib.contextmanager
def actions_using_llm(stack, base_url: str, timeout_s: float = BUDGET_S):
    """Restart the stack's action server against another LLM; put it back afterwards."""
    actions = next(s for s in stack.services if s.name == "actions")
    saved = dict(actions.env)
    stack.stop(["actions"])
    actions.env.update({"ACTIONS_LLM_URL": base_url, "ACTIONS_LLM_TIMEOUT_S": str(timeout_s)})
    stack.start(["actions"])
    try:
        yield
    finally:
        stack.stop(["actions"])
        actions.env.clear()
        actions.env.update(saved)
        stack.start(["actions"])


@pytest.fixture(scope="module")
def fake_llm(stack):
    with FakeOpenAIServer() as server, actions_using_llm(stack, server.base_url):
        yield server


@pytest.fixture
def talk(stack, request):
    rasa = service_url(stack, "rasa")
    return Conversation(rasa, sender=f"fault-{request.node.name}")


def timed_say(conversation: Conversation, text: str) -> tuple[list[str], float]:
    started = time.monotonic()
    replies = conversation.say(text)
    return replies, time.monotonic() - started


@pytest.mark.parametrize("behaviour", [
    Behaviour(mode="ok", delay_s=BUDGET_S + 3),   # slower than the action's budget
    Behaviour(mode="status", status=500),
    Behaviour(mode="status", status=503),
    Behaviour(mode="garbage"),                     # 200 with HTML instead of JSON
    Behaviour(mode="empty"),                       # 200 with an empty completion
    Behaviour(mode="drop"),                        # connection closed mid-request
], ids=["slow", "500", "503", "malformed-json", "empty", "dropped"])
def test_each_llm_fault_gets_the_apology_within_the_budget_then_recovery(fake_llm, talk, responses, behaviour):
    fake_llm.behaviour = behaviour
    replies, took_s = timed_say(talk, OPEN_QUESTION)
    assert replies and replies[-1] in responses["utter_llm_unavailable"], replies
    assert took_s < BUDGET_S + SLACK_S, f"the apology took {took_s:.1f} s"

    fake_llm.behaviour = Behaviour(reply="Wear wool socks and keep a dry pair for the evening.")
    replies, _ = timed_say(talk, "and what about gloves in the snow?")
    assert replies == ["Wear wool socks and keep a dry pair for the evening."], "the assistant did not recover"


def test_llm_killed_mid_request_then_restarted(stack, talk, responses, tmp_path):
    port = free_port()

    def llm_process(delay_s: float) -> Service:
        return Service(name=f"fake-llm-{delay_s:g}", cwd=REPO_ROOT, health_url=f"http://127.0.0.1:{port}/health",
                       url=f"http://127.0.0.1:{port}", startup_timeout_s=30,
                       command=[sys.executable, "-m", "tests.support.fake_openai", "--port", str(port),
                                "--delay", str(delay_s), "--reply", "Back again: layer up."])

    from stack.process import Stack

    with actions_using_llm(stack, f"http://127.0.0.1:{port}/v1", timeout_s=20):
        with Stack([llm_process(60)], log_dir=tmp_path / "a") as hanging:
            pid = hanging.running["fake-llm-60"].process.pid
            killer = threading.Timer(1.5, os.killpg, args=(pid, signal.SIGKILL))
            killer.start()
            replies, took_s = timed_say(talk, OPEN_QUESTION)
            killer.join()
        assert replies and replies[-1] in responses["utter_llm_unavailable"], replies
        assert took_s < 1.5 + SLACK_S, "the turn waited for the budget instead of failing when the LLM died"

        with Stack([llm_process(0)], log_dir=tmp_path / "b"):
            replies, _ = timed_say(talk, "any tips for a first multi-day hike?")
        assert replies == ["Back again: layer up."], "the assistant did not recover once the LLM was back"


def test_action_server_down_gets_a_clear_message_then_the_conversation_goes_on(stack, responses):
    # A sender id with an email in it: Rasa's warning about the silent turn names the sender,
    # and its log must show it masked (ridgeline.privacy, installed by ridgeline_rasa.install).
    talk = Conversation(service_url(stack, "rasa"), sender="fault-anna.berg@example.com")
    assert talk.say("hi")[0] in responses["utter_greet"]
    stack.stop(["actions"])
    try:
        replies = talk.say(OPEN_QUESTION)
        assert replies == responses["utter_no_reply"][:1], replies
        log_path = stack.running["rasa"].log_path
        # Rasa writes the line from its own process; the reply can reach us before the file has it.
        wait_until(lambda: "No reply to a message from <email>" in log_path.read_text(), timeout_s=10,
                   what="Rasa's log line about the silent turn")
        assert "anna.berg@example.com" not in log_path.read_text()
        # scripted turns need no action server and still work
        assert talk.say("what is your return policy?")[0] in responses["utter_faq/returns"]
    finally:
        stack.start(["actions"])
    assert talk.say("I want to check my order")[-1] in responses["utter_ask_order_id"]
    assert talk.say("RG-10421")[-1] in responses["utter_ask_email"]
    assert any("RG-10421" in r for r in talk.say("anna.berg@example.com")), "the form did not finish"
