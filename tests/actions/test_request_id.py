"""The request id from Rasa to the LLM service through the action server, and the action server's JSON lines."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pytest

from actions.llm_client import complete_chat
from ridgeline import logs
from stack.process import Service, Stack
from tests.actions.test_server import AUTH, TOKEN, action_call
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.servers import wait_until
from tools.procs import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SALT = "test-deployment-salt"
SENDER = "visitor-anna.berg@example.com"


def test_the_llm_client_sends_the_bound_request_id(fake_llm, llm_config):
    async def call() -> None:
        await complete_chat([{"role": "user", "content": "hi"}], llm_config)

    async def in_a_turn() -> None:
        with logs.bound(request_id="turn-7", sender_id="visitor-7"):
            await call()

    asyncio.run(in_a_turn())
    asyncio.run(call())
    first, second = fake_llm.behaviour.headers
    assert first[logs.REQUEST_ID_HEADER] == "turn-7"
    assert logs.REQUEST_ID_HEADER not in second  # no request, no header


@pytest.fixture(scope="module")
def json_server(tmp_path_factory):
    """The action server process with LOG_FORMAT=json, calling a stand-in LLM service."""
    root = tmp_path_factory.mktemp("action-server-json")
    port = free_port()
    with FakeOpenAIServer() as llm:
        llm.behaviour.reply = "A three-season tent is fine below the tree line."
        service = Service(
            name="actions",
            command=[sys.executable, "-m", "actions.server", "--actions", "actions", "--port", str(port)],
            health_url=f"http://127.0.0.1:{port}/health",
            url=f"http://127.0.0.1:{port}",
            cwd=REPO_ROOT,
            env={"ACTION_SERVER_TOKEN": TOKEN, "ORDERS_DB_URL": f"sqlite:///{root / 'orders.db'}",
                 "ACTIONS_LLM_URL": llm.base_url, "ACTIONS_LLM_TIMEOUT_S": "5", "SANIC_HOST": "127.0.0.1",
                 "LOG_FORMAT": "json", "LOG_SENDER_SALT": SALT},
            startup_timeout_s=60,
        )
        with Stack([service], log_dir=root / "logs") as stack:
            yield stack, llm


def json_lines(path: Path) -> list[dict]:
    found = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_rasas_request_id_reaches_the_llm_and_the_action_servers_json_lines(json_server):
    stack, llm = json_server
    log_path = stack.running["actions"].log_path
    call = action_call("action_llm_response", sender=SENDER, text="which tent for Scotland?")
    reply = httpx.post(f"{stack.services[0].url}/webhook", json=call,
                       headers={**AUTH, logs.REQUEST_ID_HEADER: "turn-abc123"}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert llm.behaviour.headers[-1][logs.REQUEST_ID_HEADER] == "turn-abc123"

    def llm_client_lines() -> list[dict]:
        return [line for line in json_lines(log_path)
                if line["request_id"] == "turn-abc123" and line["logger"] == "actions.llm_client"]
    [line] = wait_until(llm_client_lines, timeout_s=10, what="the LLM client's JSON line for the call")
    assert line["message"].startswith("LLM reply in ") and line["level"] == "INFO"
    assert line["service"] == "actions"
    assert line["sender"] == logs.sender_hash(SENDER, SALT)
    text = log_path.read_text()
    assert "anna.berg@example.com" not in text and SENDER not in text
    # every log line is JSON (a plain print would not be, and the collector could not parse it)
    started = [line for line in text.splitlines() if line.strip()]
    assert started and all(line.startswith("{") for line in started), [l for l in started if l[:1] != "{"][:3]


def test_a_call_without_a_request_id_gets_one_that_the_llm_sees_too(json_server):
    stack, llm = json_server
    call = action_call("action_llm_response", sender="visitor-9", text="any tips for a first hike?")
    reply = httpx.post(f"{stack.services[0].url}/webhook", json=call, headers=AUTH, timeout=30)
    assert reply.status_code == 200, reply.text
    made = llm.behaviour.headers[-1][logs.REQUEST_ID_HEADER]
    assert len(made) == 32 and made != "turn-abc123"
