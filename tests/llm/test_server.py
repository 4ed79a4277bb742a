"""The HTTP layer with Sanic's test client: shapes, statuses, errors, readiness, metrics."""

from __future__ import annotations

import time

import pytest
from sanic_testing.reusable import ReusableClient

from llm.engine.base import RequestHandle
from llm.protocol import ChatCompletionRequest
from llm.server import create_app
from tests.llm.conftest import ModelFreeEngine, make_config

USER = [{"role": "user", "content": "Do you have a warm sleeping bag?"}]


@pytest.fixture
def app(engine, app_name):
    return create_app(engine.config, engine, name=app_name)


class BrokenEngine(ModelFreeEngine):
    """Ready, but every generation hits an unexpected bug."""

    def __init__(self) -> None:
        super().__init__("broken")

    def submit(self, request: ChatCompletionRequest) -> RequestHandle:
        raise RuntimeError("secret internal detail")


class LoadingEngine(ModelFreeEngine):
    """Still loading its weights: never ready."""

    def __init__(self) -> None:
        super().__init__("loading", ready=False)

    def submit(self, request: ChatCompletionRequest) -> RequestHandle:
        raise AssertionError("never called: the server refuses requests before the engine is ready")


def assert_error(response, status: int, error_type: str, fragment: str) -> dict:
    assert response.status == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["type"] == error_type
    assert fragment in error["message"]
    return error


def test_completion_has_the_openai_shape_and_usage(app, engine):
    _, response = app.test_client.post(
        "/v1/chat/completions", json={"messages": USER, "max_tokens": 7, "temperature": 0}
    )
    assert response.status == 200, response.text
    body = response.json
    assert body["id"].startswith("chatcmpl-") and body["id"] == response.headers["x-request-id"]
    assert (body["object"], body["model"]) == ("chat.completion", engine.model_name)
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"].strip()
    assert choice["finish_reason"] == "length"
    usage = body["usage"]
    assert usage["completion_tokens"] == 7
    assert usage["prompt_tokens"] > 10
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_client_request_id_is_used(app):
    _, response = app.test_client.post(
        "/v1/chat/completions", json={"messages": USER, "max_tokens": 1}, headers={"X-Request-ID": "turn-42"}
    )
    assert response.json["id"] == "chatcmpl-turn-42"
    assert response.headers["x-request-id"] == "chatcmpl-turn-42"


def test_default_max_tokens_applies(app, engine):
    _, response = app.test_client.post("/v1/chat/completions", json={"messages": USER, "temperature": 0})
    assert response.json["usage"]["completion_tokens"] == engine.config.default_max_tokens


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"this is not json", "not valid JSON"),
        (b"", "body is empty"),
        (b'{"messages": []}', "'messages' must be a non-empty list"),
        (b'{"messages": [{"role": "robot", "content": "hi"}]}', "must be one of system, user, assistant"),
        (b'{"messages": [{"role": "user", "content": 42}]}', "must be a string"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": -3}', "must be a positive integer"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 65}', "above this server's cap of 64"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 3}', "between 0 and 2"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "stream": 1}', "'stream' must be true or false"),
    ],
)
def test_bad_requests_get_400_with_a_sentence(app, body, fragment):
    _, response = app.test_client.post("/v1/chat/completions", content=body)
    assert_error(response, 400, "invalid_request_error", fragment)


def test_prompt_longer_than_the_context_gets_400(app, engine):
    long_text = "tent " * (engine.context_length + 1)
    _, response = app.test_client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": long_text}], "max_tokens": 1}
    )
    error = assert_error(response, 400, "invalid_request_error", "shorten the messages")
    assert error["code"] == "context_length_exceeded"


def test_not_ready_gets_503_but_health_is_200(app_name):
    app = create_app(make_config("unused"), LoadingEngine(), name=app_name)
    _, health = app.test_client.get("/health")
    assert (health.status, health.json) == (200, {"status": "ok"})
    _, ready = app.test_client.get("/ready")
    assert_error(ready, 503, "service_unavailable", "The model is still loading")
    assert ready.headers["retry-after"] == "5"
    _, completion = app.test_client.post("/v1/chat/completions", json={"messages": USER})
    error = assert_error(completion, 503, "service_unavailable", "still loading")
    assert error["code"] == "model_not_ready"


def test_ready_health_and_models_when_loaded(app, engine):
    _, ready = app.test_client.get("/ready")
    assert (ready.status, ready.json) == (200, {"status": "ready", "model": engine.model_name})
    _, health = app.test_client.get("/health")
    assert health.json == {"status": "ok"}
    _, models = app.test_client.get("/v1/models")
    assert models.status == 200
    assert models.json["object"] == "list"
    assert [m["id"] for m in models.json["data"]] == [engine.model_name]
    assert models.json["data"][0]["object"] == "model"


def test_unknown_route_and_wrong_method_are_json(app):
    # ReusableClient: SanicTestClient swaps in its own handler for MethodNotAllowed.
    with ReusableClient(app, port=None) as client:
        _, missing = client.get("/v1/completions")
        _, wrong = client.get("/v1/chat/completions")
    error = assert_error(missing, 404, "not_found_error", "No route for /v1/completions")
    assert error["code"] == "not_found"
    error = assert_error(wrong, 405, "invalid_request_error", "Method GET not allowed")
    assert error["code"] == "method_not_allowed"


def test_unexpected_error_is_a_generic_500(app_name, caplog):
    app = create_app(make_config("unused"), BrokenEngine(), name=app_name)
    _, response = app.test_client.post("/v1/chat/completions", json={"messages": USER})
    error = assert_error(response, 500, "internal_error", "internal error")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert error["code"] == "internal_error"
    assert "secret internal detail" in caplog.text  # ...but the operator sees it in the log


def test_warm_up_runs_after_the_server_starts(tiny_model_dir, app_name):
    from llm.engine.transformers_engine import TransformersEngine

    engine = TransformersEngine(make_config(tiny_model_dir, cpu_threads=1))
    engine.load()
    assert engine.loaded and not engine.ready
    app = create_app(engine.config, engine, name=app_name)
    statuses = []
    with ReusableClient(app, port=None) as client:
        _, health = client.get("/health")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and statuses[-1:] != [200]:
            _, ready = client.get("/ready")
            statuses.append(ready.status)
            time.sleep(0.02)
    ready_after_start = engine.ready
    engine.close()
    assert health.status == 200
    assert statuses[-1] == 200 and set(statuses) <= {200, 503}
    assert ready_after_start


@pytest.fixture
def secured_app(engine, app_name):
    import dataclasses

    return create_app(dataclasses.replace(engine.config, api_key="s3cret"), engine, name=app_name)


def test_api_key_is_required_on_the_api_but_not_on_probes_and_metrics(secured_app):
    with ReusableClient(secured_app, port=None) as client:
        _, missing = client.post("/v1/chat/completions", json={"messages": USER, "max_tokens": 1})
        _, wrong = client.get("/v1/models", headers={"Authorization": "Bearer nope"})
        _, good = client.post(
            "/v1/chat/completions", json={"messages": USER, "max_tokens": 1},
            headers={"Authorization": "Bearer s3cret"},
        )
        _, models = client.get("/v1/models", headers={"Authorization": "Bearer s3cret"})
        open_statuses = [client.get(path)[1].status for path in ("/health", "/ready", "/metrics")]
    error = assert_error(missing, 401, "authentication_error", "Authorization: Bearer <LLM_API_KEY>")
    assert error["code"] == "invalid_api_key" and missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status == 401
    assert (good.status, models.status) == (200, 200)
    assert open_statuses == [200, 200, 200]
