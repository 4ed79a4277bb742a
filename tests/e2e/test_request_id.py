"""One turn followed through the JSON logs of Rasa, the action server and the LLM service by its request id.

A stack of its own (module scope), started as tests/e2e/conftest.py starts one but with
``LOG_FORMAT=json`` and one ``LOG_SENDER_SALT`` for all three services.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from ridgeline import logs
from stack.process import Stack
from stack.services import DEFAULT_RASA_MODEL, StackConfig, build_services
from tests.support.servers import RASA_TOKEN, wait_until
from tools.procs import free_port
from tools.testing.tiny_model import build_tiny_model

SERVICES = ("rasa", "actions", "llm")
SALT = "e2e-deployment-salt"
SENDER = "follow-anna.berg@example.com"  # an email in the sender id: it must show nowhere, only its hash
OPEN_QUESTION = "what sleeping bag should I take for a winter camp in the Alps?"


@pytest.fixture(scope="module")
def json_stack(tmp_path_factory):
    if not DEFAULT_RASA_MODEL.exists():
        pytest.fail(f"No trained Rasa model at {DEFAULT_RASA_MODEL}; run `make rasa-model` (make test does).")
    root = tmp_path_factory.mktemp("json-stack")
    config = StackConfig(
        llm_model=str(build_tiny_model(root / "tiny-qwen2", seed=0)),
        rasa_port=free_port(), actions_port=free_port(), llm_port=free_port(), webchat_port=free_port(),
        venv=Path(os.environ.get("VENV", StackConfig.venv)).absolute(),
        rasa_venv=Path(os.environ.get("RASA_VENV", StackConfig.rasa_venv)).absolute(),
        run_dir=root / "run", llm_timeout_s=15.0, rasa_auth_token=RASA_TOKEN,
    )
    services = [s for s in build_services(config) if s.name in SERVICES]
    for service in services:
        service.env.update({"LOG_FORMAT": "json", "LOG_SENDER_SALT": SALT})
    by_name = {s.name: s for s in services}
    by_name["actions"].env["ORDERS_DB_URL"] = f"sqlite:///{root / 'orders.db'}"
    by_name["actions"].env["ACTIONS_LLM_MAX_TOKENS"] = "24"
    by_name["llm"].env["LLM_CPU_THREADS"] = "1"
    with Stack(services, log_dir=root / "logs") as running:
        yield running


def json_lines(path: Path) -> list[dict]:
    """The service's JSON log lines (Rasa and TensorFlow print a few plain lines before the channels load)."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict) and "service" in parsed:
                found.append(parsed)
    return found


def request_ids(stack: Stack, name: str) -> set[str]:
    return {line["request_id"] for line in json_lines(stack.running[name].log_path) if line["request_id"]}


def test_one_request_id_is_in_the_json_logs_of_all_three_services(json_stack):
    rasa = next(s for s in json_stack.services if s.name == "rasa")
    reply = httpx.post(f"http://127.0.0.1:{rasa.port}/webhooks/rest/webhook",
                       json={"sender": SENDER, "message": OPEN_QUESTION}, timeout=60)
    reply.raise_for_status()
    assert reply.json() and all("text" in m for m in reply.json()), reply.json()
    turn_id = reply.headers[logs.REQUEST_ID_HEADER]

    # each service writes its lines from its own process: the reply can reach us before the files have them
    common = wait_until(lambda: set.intersection(*(request_ids(json_stack, name) for name in SERVICES)),
                        timeout_s=15, what="a request id in the JSON logs of Rasa, the action server and the LLM service")
    assert common == {turn_id}, (common, turn_id)

    by_service = {name: [line for line in json_lines(json_stack.running[name].log_path) if line["request_id"] == turn_id]
                  for name in SERVICES}
    assert all(line["service"] == name for name, lines in by_service.items() for line in lines)
    assert any(line["logger"] == "ridgeline_rasa.channels.gate" and line["message"].startswith("Turn on rest")
               for line in by_service["rasa"])
    assert any(line["logger"] == "actions.llm_client" for line in by_service["actions"])
    assert any(line["message"].startswith(f"chatcmpl-{turn_id} status=200") for line in by_service["llm"])
    # the sender by its salted hash, the same in Rasa and the action server; the LLM service never learns it
    sender = logs.sender_hash(SENDER, SALT)
    assert {line["sender"] for name in ("rasa", "actions") for line in by_service[name]} == {sender}
    assert {line["sender"] for line in by_service["llm"]} == {None}
    for name in SERVICES:
        text = json_stack.running[name].log_path.read_text(encoding="utf-8")
        assert "anna.berg@example.com" not in text, f"{name}'s log names the sender"
