"""The LLM service logs each completion under the request id its client sent (ridgeline.logs)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from llm.server import create_app
from ridgeline import logs

USER = [{"role": "user", "content": "Do you have a warm sleeping bag?"}]


@pytest.fixture
def json_log():
    """The service's request log lines as the JSON formatter writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter("llm"))
    logger = logging.getLogger("llm.server")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_completions_log_line_carries_the_clients_request_id(engine, app_name, json_log, stream):
    app = create_app(engine.config, engine, name=app_name)
    _, response = app.test_client.post("/v1/chat/completions", headers={"X-Request-ID": "turn-42"},
                                       json={"messages": USER, "max_tokens": 2, "stream": stream})
    assert response.status == 200
    _, other = app.test_client.post("/v1/chat/completions", json={"messages": USER, "max_tokens": 2})
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    first, second = [line for line in lines if line["logger"] == "llm.server" and " status=" in line["message"]]
    assert first["message"].startswith("chatcmpl-turn-42 status=200") and first["request_id"] == "turn-42"
    assert (first["service"], first["sender"]) == ("llm", None)  # the LLM service never learns who asked
    made = other.headers["x-request-id"]
    assert second["request_id"] == made and second["message"].startswith(f"{made} status=200")
