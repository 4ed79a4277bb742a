"""The action server process (python -m actions.server) over HTTP: only Rasa gets in, bad calls get a 400."""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import httpx
import pytest

from actions.server import BadActionCall, validate_action_call
from stack.process import Service, Stack
from tools.procs import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-action-token"


def action_call(next_action: str = "action_human_handoff", sender: str = "visitor-1", text: str = "a human please"):
    return {
        "next_action": next_action,
        "version": "3.6.21",
        "domain": {"responses": {}},
        "tracker": {
            "sender_id": sender,
            "slots": {},
            "latest_message": {"text": text, "intent": {"name": "human_handoff"}, "entities": []},
            "events": [{"event": "user", "text": text}],
            "active_loop": {},
            "latest_action": {},
        },
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("action-server")
    port = free_port()
    service = Service(
        name="actions",
        command=[sys.executable, "-m", "actions.server", "--actions", "actions", "--port", str(port)],
        health_url=f"http://127.0.0.1:{port}/health",
        url=f"http://127.0.0.1:{port}",
        cwd=REPO_ROOT,
        env={"ACTION_SERVER_TOKEN": TOKEN, "ORDERS_DB_URL": f"sqlite:///{root / 'orders.db'}",
             "ACTIONS_LLM_URL": "http://127.0.0.1:9/v1", "ACTIONS_LLM_TIMEOUT_S": "1", "SANIC_HOST": "127.0.0.1"},
        startup_timeout_s=60,
    )
    with Stack([service], log_dir=root / "logs") as stack:
        stack.log_path = stack.running["actions"].log_path
        yield stack


def url(server, path: str) -> str:
    return f"{server.services[0].url}{path}"


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_health_is_open(server):
    assert httpx.get(url(server, "/health")).json() == {"status": "ok"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}])
@pytest.mark.parametrize("method, path", [("POST", "/webhook"), ("GET", "/actions")])
def test_only_callers_with_the_token_get_in(server, headers, method, path):
    reply = httpx.request(method, url(server, path), json=action_call(), headers=headers)
    assert reply.status_code == 401
    assert "ACTION_SERVER_TOKEN" in reply.json()["error"]
    assert reply.headers["WWW-Authenticate"] == "Bearer"


def test_rasa_with_the_token_runs_the_action(server):
    reply = httpx.post(url(server, "/webhook"), json=action_call(), headers=AUTH)
    assert reply.status_code == 200, reply.text
    assert reply.json()["responses"][0]["response"] == "utter_handoff"


def test_a_deflated_call_as_rasa_can_send_it_is_accepted(server):
    body = zlib.compress(httpx.Request("POST", "/", json=action_call()).read())
    reply = httpx.post(url(server, "/webhook"), content=body,
                       headers={**AUTH, "Content-Encoding": "deflate", "Content-Type": "application/json"})
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[1, 2]", b'"text"', b"null", b'{"next_action": 5}',
    b'{"next_action": "action_human_handoff"}',
    b'{"next_action": "action_human_handoff", "tracker": []}',
    b'{"next_action": "action_human_handoff", "tracker": {"sender_id": 7}}',
    b'{"next_action": "action_human_handoff", "tracker": {"sender_id": "a", "events": {}}}',
    b'{"next_action": "action_human_handoff", "tracker": {"sender_id": "a", "events": [1]}}',
    b'{"next_action": "action_human_handoff", "tracker": {"sender_id": "a", "slots": []}}',
    b"\xff\xfe\x00garbage",
    b'{"next_action": "action_llm_response", "tracker": {"sender_id": "a", "events": [{"event": "user", "text": 5}]}}',
    b'{"next_action": "action_llm_response", "tracker": {"sender_id": "a", "latest_message": {"text": 5}}}',
    b'{"next_action": "validate_order_status_form", "tracker": {"sender_id": "a"}, "domain": {"forms": []}}',
    b'{"next_action": "action_llm_response", "tracker": {"sender_id": "a", "events": [{"event": "user", '
    b'"text": "\\ud800"}]}}',
    pytest.param(b'{"next_action": "action_human_handoff", "tracker": {"sender_id": "a", "slots": {"x": '
                 + b"[" * 100_000 + b"]" * 100_000 + b"}}}", id="nested-100000-deep"),
])
def test_malformed_calls_get_a_400_that_says_what_is_wrong(server, body):
    reply = httpx.post(url(server, "/webhook"), content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert reply.status_code == 400, reply.text
    assert "Not an action call" in reply.json()["error"]
    assert httpx.post(url(server, "/webhook"), json=action_call(), headers=AUTH).status_code == 200


def test_an_unknown_action_is_a_404_naming_it(server):
    reply = httpx.post(url(server, "/webhook"), json=action_call("action_nope"), headers=AUTH)
    assert reply.status_code == 404 and "action_nope" in reply.text


def test_a_corrupt_deflate_body_is_a_400(server):
    reply = httpx.post(url(server, "/webhook"), content=b"not deflate",
                       headers={**AUTH, "Content-Encoding": "deflate"})
    assert reply.status_code == 400


def test_personal_data_is_masked_in_the_log(server):
    email = "anna.berg@example.com"
    call = action_call("action_llm_response", sender=email, text=f"my email is {email}, call +44 20 7946 0958")
    reply = httpx.post(url(server, "/webhook"), json=call, headers=AUTH)
    assert reply.status_code == 200
    log = server.log_path.read_text()
    assert "LLM unavailable for" in log, "the action did not log the failure it is tested with"
    assert email not in log and "7946 0958" not in log


def test_the_validator_accepts_what_rasa_sends():
    validate_action_call(action_call())
    with pytest.raises(BadActionCall, match="tracker.events\\[0\\].event"):
        validate_action_call({**action_call(), "tracker": {"sender_id": "a", "events": [{"text": "x"}]}})


def apologies(server) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    reply = httpx.get(url(server, "/metrics"))  # open, like /health: scraped from inside the cluster
    assert reply.status_code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(reply.text) for s in family.samples}
    assert samples[("action_llm_replies_total", (("outcome", "whole"),))] >= 0
    return samples[("action_llm_replies_total", (("outcome", "apology"),))]


def test_metrics_count_the_apology_of_an_open_turn_whose_llm_is_unreachable(server):
    before = apologies(server)
    reply = httpx.post(url(server, "/webhook"), json=action_call("action_llm_response", text="which stove?"),
                       headers=AUTH, timeout=30)
    assert reply.status_code == 200
    assert [r.get("response") for r in reply.json()["responses"]] == ["utter_llm_unavailable"]
    assert apologies(server) == before + 1
