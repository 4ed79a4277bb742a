"""The checks in front of Rasa's HTTP API (ridgeline_rasa/api_guard.py), without a Rasa server.

Through a real Rasa server (and its Sanic 21.12) they are tested in tests/e2e/test_bad_input.py.
"""

from __future__ import annotations

import json

import pytest

from ridgeline_rasa.api_guard import MAX_JSON_DEPTH, BadBody, authorized, check_json, problem
from tests.support.servers import hs256_jwt

MESSAGES = "conversations/<conversation_id:path>/messages"
EVENTS = "conversations/<conversation_id:path>/tracker/events"


DOMAIN = {"action_names_or_texts": ["action_listen", "utter_greet"], "intents": ["greet"]}


def ask(method: str, route: str, body: bytes, conversation_id: str | None = "c1") -> str | None:
    error = problem(method, route, conversation_id, body, json.loads, DOMAIN.get)
    return None if error is None else str(error)


@pytest.mark.parametrize(("method", "route", "body"), [
    ("POST", "model/parse", b'{"text": "hi"}'),
    ("POST", "/model/parse", b'{"text": "", "message_id": "m1"}'),
    ("POST", MESSAGES, b'{"text": "hi", "sender": "user", "parse_data": {"intent": {"name": "greet"}}}'),
    ("POST", "conversations/<conversation_id:path>/trigger_intent", b'{"name": "greet", "entities": {"a": 1}}'),
    ("POST", "conversations/<conversation_id:path>/trigger_intent",
     b'{"name": "greet", "entities": [{"entity": "order_id", "value": "RG-1"}]}'),
    ("POST", "conversations/<conversation_id:path>/execute", b'{"name": "utter_greet", "confidence": 0.5}'),
    ("POST", EVENTS, b'{"event": "restart"}'),
    ("PUT", EVENTS, b'[{"event": "restart"}]'),
    ("PUT", "model", b'{"model_file": "models/x.tar.gz"}'),
    ("POST", "conversations/<conversation_id:path>/predict", b"\xff not json: no body is read here"),
    ("GET", "status", b""),
])
def test_what_rasa_documents_passes(method, route, body):
    assert ask(method, route, body) is None


@pytest.mark.parametrize(("method", "route", "body", "sentence"), [
    ("POST", "model/parse", b"", "the body is empty; send a JSON object"),
    ("POST", "model/parse", b"  \n", "the body is empty"),
    ("POST", "model/parse", b"{text", "the body is not JSON"),
    ("POST", "model/parse", b"\xff\xfe", "the body is not JSON"),
    ("POST", "model/parse", b'["hi"]', "the body must be a JSON object, got a list"),
    ("POST", "model/parse", b'{"message": "hi"}', "'text' is missing; it must be a string"),
    ("POST", "model/parse", b'{"text": null}', "'text' must be a string, got null"),
    ("POST", "model/parse", b'{"text": 4}', "'text' must be a string, got a number"),
    ("POST", "model/parse", b'{"text": "hi", "message_id": true}', "'message_id' must be a string, got a boolean"),
    ("POST", MESSAGES, b'{"text": "hi", "sender": "user", "parse_data": "greet"}',
     "'parse_data' must be a JSON object"),
    ("POST", MESSAGES, b'{"text": "hi \\ud800", "sender": "user"}', "lone surrogate (\\ud800)"),
    ("POST", "conversations/<conversation_id:path>/trigger_intent", b'{"name": "greet", "entities": [1]}',
     "'entities' must be an object like"),
    ("POST", "conversations/<conversation_id:path>/execute", b'{"name": "x", "confidence": "high"}',
     "'confidence' must be a number, got a string"),
    ("POST", EVENTS, b'"restart"', "must be a JSON event or a non-empty list of events, got a string"),
    ("POST", EVENTS, b"[]", "must be a JSON event or a non-empty list of events, got a list"),
    ("PUT", EVENTS, b'{"event": "restart"}', "the body must be a JSON list of events, got an object"),
    ("POST", "model/predict", b"null", "the body is empty; send a JSON list of events"),
    ("PUT", "model", b'{"model_server": "http://x"}', "'model_server' must be a JSON object, got a string"),
])
def test_a_malformed_body_gets_a_sentence_naming_what_is_wrong(method, route, body, sentence):
    assert sentence in (ask(method, route, body) or "")


def test_nesting_is_limited_and_measured_without_recursion():
    nested = {"a": 1}
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = {"a": nested}
    check_json(nested)
    with pytest.raises(BadBody, match=f"nested more than {MAX_JSON_DEPTH} levels"):
        check_json([nested])
    deep: list = []
    for _ in range(100_000):  # deeper than Python's recursion limit
        deep = [deep]
    with pytest.raises(BadBody, match="nested"):
        check_json(deep)


def test_an_action_or_intent_the_domain_lacks_is_a_404_and_passes_without_a_model():
    route = "conversations/<conversation_id:path>/execute"
    error = problem("POST", route, "c1", b'{"name": "action_nope"}', json.loads, DOMAIN.get)
    assert error is not None and error.status == 404 and "the domain has no action 'action_nope'" in str(error)
    assert problem("POST", route, "c1", b'{"name": "action_nope"}', json.loads) is None  # Rasa says 409
    assert problem("POST", route, "c1", b'{"name": 5}', json.loads).status == 400
    trigger = "conversations/<conversation_id:path>/trigger_intent"
    assert "the domain has no intent 'nope'" in str(problem("POST", trigger, "c1", b'{"name": "nope"}', json.loads,
                                                            DOMAIN.get))


@pytest.mark.parametrize(("conversation_id", "sentence"), [
    ("c" * 256, "longer than 255 characters"),
    ("a\x00b", "control characters"),
    ("a\nb", "control characters"),
])
def test_conversation_ids_the_tracker_store_cannot_key_are_refused(conversation_id, sentence):
    assert sentence in (ask("GET", "conversations/<conversation_id:path>/tracker", b"", conversation_id) or "")
    assert ask("GET", "conversations/<conversation_id:path>/tracker", b"", "🏕️-مرحبا") is None



class _Request:
    def __init__(self, token: str | None = None, authorization: str | None = None) -> None:
        self.args = {"token": token} if token else {}
        self.headers = {"Authorization": authorization} if authorization else {}


def _jwt(secret: str) -> str:
    return hs256_jwt({"user": {"username": "ops", "role": "admin"}}, secret)


@pytest.mark.parametrize("request_, allowed", [
    (_Request(token="api-token"), True),
    (_Request(token="wrong"), False),
    (_Request(), False),
    (_Request(authorization="Bearer garbage"), False),
    (_Request(authorization=f"Bearer {_jwt('jwt-secret')}"), True),
    (_Request(authorization=f"Bearer {_jwt('another-secret')}"), False),
])
def test_only_callers_rasa_lets_in_have_their_bodies_checked(request_, allowed):
    """Anyone else goes on to Rasa's 401: the guard must not tell them which intents exist."""
    env = {"RASA_AUTH_TOKEN": "api-token", "RASA_JWT_SECRET": "jwt-secret"}
    assert authorized(request_, env) is allowed


def test_without_the_token_in_the_environment_nothing_is_checked():
    assert authorized(_Request(token="api-token"), {}) is False
