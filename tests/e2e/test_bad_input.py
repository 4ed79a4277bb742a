"""Bad input to every HTTP endpoint of the three services: a clear 4xx or a sensible answer.

The cases are data (bad_input.yml, its header says the format). Each is sent to the real stack
with a client timeout (a timeout is a hang); then the service must still be alive and serve a
normal request.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import yaml

from tests.e2e.conftest import service_url
from tests.support.servers import RASA_TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CORPUS = Path(__file__).with_name("bad_input.yml")
CASES: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["cases"]
TIMEOUT_S = 30.0
WRONG_TOKEN = "not-the-token"

# Every endpoint the corpus must exercise: (service, method, path with {id} for a conversation).
ENDPOINTS = {
    ("rasa", "POST", "/webhooks/rest/webhook"),
    ("rasa", "POST", "/model/parse"),
    ("rasa", "POST", "/conversations/{id}/messages"),
    ("rasa", "POST", "/conversations/{id}/tracker/events"),
    ("rasa", "PUT", "/conversations/{id}/tracker/events"),
    ("rasa", "POST", "/conversations/{id}/trigger_intent"),
    ("rasa", "POST", "/conversations/{id}/predict"),
    ("rasa", "POST", "/conversations/{id}/execute"),
    ("rasa", "GET", "/conversations/{id}/tracker"),
    ("rasa", "GET", "/conversations/{id}/story"),
    ("rasa", "GET", "/status"),
    ("rasa", "GET", "/version"),
    ("rasa", "GET", "/domain"),
    ("rasa", "PUT", "/model"),
    ("rasa", "POST", "/model/predict"),
    ("actions", "POST", "/webhook"),
    ("actions", "GET", "/actions"),
    ("actions", "GET", "/health"),
    ("llm", "POST", "/v1/chat/completions"),
    ("llm", "POST", "/v1/completions"),  # not offered: must be a clear 404
    ("llm", "GET", "/v1/models"),
    ("llm", "GET", "/health"),
    ("llm", "GET", "/ready"),
    ("llm", "GET", "/metrics"),
}
# Endpoints behind a token: each needs a case without it (and one with it, which every other case is).
PROTECTED = {("rasa", "/model/parse"), ("rasa", "/status"), ("rasa", "/conversations/{id}/tracker"),
             ("rasa", "/model"), ("rasa", "/conversations/{id}/messages"),
             ("actions", "/webhook"), ("actions", "/actions")}


def endpoint(case: dict[str, Any]) -> tuple[str, str, str]:
    return case["service"], case["method"], case["path"].split("?", 1)[0].replace("{sender}", "{id}")


# ---------------------------------------------------------------- building a request


class _Raw:
    """A piece of JSON text that json.dumps cannot produce (too deep, too many digits)."""

    def __init__(self, text: str) -> None:
        self.text = text


def expand(value: Any, sender: str) -> Any:
    if isinstance(value, dict):
        if "$repeat" in value:
            return value["$repeat"] * value["times"]
        if "$nested" in value:
            return _Raw("[" * value["$nested"] + "]" * value["$nested"])
        if "$digits" in value:
            return _Raw("9" * value["$digits"])
        if "$zeros" in value:
            return _Raw("[" + ",".join("0" * value["$zeros"]) + "]")
        return {key: expand(item, sender) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item, sender) for item in value]
    if isinstance(value, str):
        return value.replace("{sender}", sender)
    return value


def dumps(value: Any) -> str:
    raws: dict[str, str] = {}

    def placeholder(raw: _Raw) -> str:
        key = f"@@raw{len(raws)}@@"
        raws[key] = raw.text
        return key

    text = json.dumps(value, ensure_ascii=False, default=placeholder)
    for key, raw in raws.items():
        text = text.replace(f'"{key}"', raw)
    return text


def case_sender(case: dict[str, Any]) -> str:
    return expand(case["sender"], "") if "sender" in case else f"bad-input-{case['id']}"


def build_request(case: dict[str, Any], urls: dict[str, str], action_token: str) -> httpx.Request:
    sender = case_sender(case)
    path = case["path"].replace("{sender}", quote(sender, safe=""))
    headers = {str(k): str(v) for k, v in (case.get("headers") or {}).items()}
    params: dict[str, str] = {}
    auth = case.get("auth", "token")
    service = case["service"]
    if service == "rasa" and not path.startswith("/webhooks/") and auth != "none":
        params["token"] = RASA_TOKEN if auth == "token" else WRONG_TOKEN
    if service == "actions" and auth != "none":
        headers["Authorization"] = f"Bearer {action_token if auth == 'token' else WRONG_TOKEN}"

    content: bytes | None = None
    if "json" in case:
        content = dumps(expand(case["json"], sender)).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
    elif "text" in case:
        content = case["text"].replace("{sender}", sender).encode("utf-8", "surrogatepass")
    elif "body_base64" in case:
        content = base64.b64decode(case["body_base64"])
    url = urls[service] + path
    if params:  # after the case's own (possibly malformed) query string
        url += ("&" if "?" in path else "?") + urlencode(params)
    return httpx.Request(case["method"], url, content=content, headers=headers)


# ---------------------------------------------------------------- the stack


@pytest.fixture(scope="module")
def urls(stack) -> dict[str, str]:
    return {name: service_url(stack, name) for name in ("rasa", "actions", "llm")}


@pytest.fixture(scope="module")
def action_token(stack) -> str:
    return next(s for s in stack.services if s.name == "actions").env["ACTION_SERVER_TOKEN"]


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=TIMEOUT_S) as client:
        yield client


def say(client: httpx.Client, rasa_url: str, sender: str, text: str) -> list[str]:
    response = client.post(f"{rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert response.status_code == 200, f"a normal message got {response.status_code}: {response.text[:300]}"
    return [m.get("text") for m in response.json() if m.get("text")]


def assert_still_serving(stack, client: httpx.Client, urls: dict[str, str], action_token: str,
                         service: str, after: str) -> None:
    running = stack.running[service]
    assert running.alive, f"{service} exited (code {running.process.returncode}); see {running.log_path}"
    if service == "rasa":
        assert say(client, urls["rasa"], f"after-{after}", "hi"), "Rasa no longer answers a normal message"
    elif service == "actions":
        assert client.get(f"{urls['actions']}/health").status_code == 200
        listed = client.get(f"{urls['actions']}/actions", headers={"Authorization": f"Bearer {action_token}"})
        assert listed.status_code == 200 and listed.json(), listed.text[:300]
    else:
        completion = client.post(f"{urls['llm']}/v1/chat/completions",
                                 json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert completion.status_code == 200, completion.text[:300]


def check_expectation(case: dict[str, Any], response: httpx.Response, failure_texts: list[str]) -> None:
    expect = case["expect"]
    status, body = response.status_code, response.text
    shown = f"{case['method']} {case['path']} -> {status}: {body[:500]}"
    assert status < 500, f"a server error for bad input: {shown}"
    if expect["status"] == "4xx":
        assert 400 <= status < 500, f"expected a 4xx: {shown}"
    else:
        assert status == expect["status"], f"expected {expect['status']}: {shown}"
    if "says" in expect:
        assert expect["says"].lower() in body.lower(), f"expected the body to say {expect['says']!r}: {shown}"
    if expect.get("reply"):
        texts = [m.get("text") for m in response.json() if isinstance(m, dict)]
        assert any(isinstance(t, str) and t.strip() for t in texts), f"no bot message: {shown}"
        assert not set(texts) <= set(failure_texts), f"Rasa failed on it and said it could not answer: {shown}"


def _param(case: dict[str, Any]):
    marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if case.get("xfail") else []
    return pytest.param(case, id=case["id"], marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case, stack, urls, action_token, client, responses):
    if case.get("conversation") == "started":
        assert say(client, urls["rasa"], case_sender(case), "hi")
    request = build_request(case, urls, action_token)
    try:
        response = client.send(request)
    except httpx.TimeoutException:
        pytest.fail(f"{case['service']} did not answer within {TIMEOUT_S:.0f} s (a hang)")
    # utter_no_reply is what the channels say when Rasa failed on a message: not a sensible reply.
    check_expectation(case, response, responses["utter_no_reply"])
    assert_still_serving(stack, client, urls, action_token, case["service"], case["id"])


# ---------------------------------------------------------------- the corpus itself


def test_the_corpus_is_large_with_unique_ids():
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 50
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids)


def test_every_case_is_well_formed():
    for case in CASES:
        assert case["service"] in {"rasa", "actions", "llm"}, case["id"]
        assert case["method"] in {"GET", "POST", "PUT"}, case["id"]
        assert sum(k in case for k in ("json", "text", "body_base64")) <= 1, case["id"]
        assert case.get("auth", "token") in {"token", "none", "wrong"}, case["id"]
        status = case["expect"]["status"]
        assert status == "4xx" or 200 <= status < 500, case["id"]
        assert not case["expect"].get("reply") or status == 200, case["id"]


def test_the_corpus_covers_every_endpoint():
    covered = {endpoint(c) for c in CASES}
    assert ENDPOINTS - covered == set(), "endpoints without a bad-input case"
    without_token = {(s, p) for s, _, p in map(endpoint, (c for c in CASES if c.get("auth") in {"none", "wrong"}))}
    assert PROTECTED - without_token == set(), "protected endpoints never called without the right token"


def test_the_corpus_covers_every_kind_of_bad_input():
    def has(predicate) -> bool:
        return any(predicate(c) for c in CASES)

    text = json.dumps(CASES, ensure_ascii=False)
    assert has(lambda c: c.get("text") == ""), "an empty body"
    assert has(lambda c: isinstance(c.get("json"), dict) and isinstance(c["json"].get("message"), str)
               and c["json"]["message"] and not c["json"]["message"].strip()), "a whitespace-only message"
    assert has(lambda c: c.get("expect", {}).get("reply") and "$repeat" in json.dumps(c.get("json"))), "100 KB"
    assert has(lambda c: "body_base64" in c), "invalid UTF-8"
    assert "\\u0000" in text and "\u200b" in text, "control and zero-width characters"
    assert "🏕" in text and "مرحبا" in text, "emoji and right-to-left text"
    assert has(lambda c: "$nested" in json.dumps(c.get("json"))), "deeply nested JSON"
    assert has(lambda c: isinstance(c.get("json"), dict) and isinstance(c["json"].get("max_tokens"), int)
               and c["json"]["max_tokens"] > 10**9), "huge max_tokens"
    assert "wizard" in text, "unknown roles"
    for service in ("rasa", "actions", "llm"):
        assert has(lambda c: c["service"] == service and isinstance(c.get("json"), list)), f"a list to {service}"
