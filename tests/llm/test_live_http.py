"""The HTTP layer on a real socket: streaming, disconnects, back-pressure, body limits."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from tests.llm.conftest import ModelFreeEngine, make_config, make_engine, metric_samples
from tests.llm.test_server import USER


def sse_events(lines: list[str]) -> list:
    """The decoded ``data:`` payloads of an SSE stream; ``[DONE]`` stays a string."""
    events = []
    for line in lines:
        if line.startswith("data: "):
            data = line[len("data: "):]
            events.append(data if data == "[DONE]" else json.loads(data))
        else:
            assert line == "", f"unexpected SSE line {line!r}"
    return events


def test_streamed_completion_matches_the_non_streamed_one(engine, live_server):
    server = live_server(engine)
    body = {"messages": USER, "max_tokens": 9, "temperature": 0}
    plain = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30).json()
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", timeout=30,
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        request_id = response.headers["x-request-id"]
        events = sse_events(list(response.iter_lines()))
    *chunks, usage_chunk, done = events
    assert done == "[DONE]"
    assert {c["id"] for c in chunks} == {request_id} and {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "length", "logprobs": None}
    content = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert len(content) > 3
    assert "".join(content) == plain["choices"][0]["message"]["content"]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == plain["usage"]


def test_stream_without_include_usage_has_no_usage_chunk(engine, live_server):
    server = live_server(engine)
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", timeout=30,
        json={"messages": USER, "max_tokens": 3, "stream": True, "ignore_eos": True},
    ) as response:
        events = sse_events(list(response.iter_lines()))
    assert events[-1] == "[DONE]" and events[-2]["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in e for e in events[:-1])


def test_oversize_body_gets_413(engine, live_server):
    server = live_server(engine)
    body = b'{"messages": [{"role": "user", "content": "' + b"x" * (1024 * 1024) + b'"}]}'
    response = httpx.post(f"{server.url}/v1/chat/completions", content=body, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def running_gauge(url: str) -> float:
    return metric_samples(httpx.get(f"{url}/metrics").text)[("llm_requests_running", ())]


@pytest.fixture
def one_slot_engine(new_engine):
    engine = new_engine(max_batch_size=1, max_queue_size=0, max_new_tokens_cap=4000)
    yield engine
    engine.close()


def test_disconnected_stream_frees_its_slot_and_the_next_request_is_served(one_slot_engine, live_server):
    server = live_server(one_slot_engine)
    long = {"messages": USER, "max_tokens": 3000, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=long, timeout=30) as response:
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]  # role chunk and two content chunks, with blank lines
        busy = running_gauge(server.url)
        refused = httpx.post(f"{server.url}/v1/chat/completions", json={"messages": USER, "max_tokens": 1})
    # Leaving the block closed the connection mid-stream.
    deadline = time.monotonic() + 60  # a hang guard: the slot is freed at the next step boundary
    while running_gauge(server.url) and time.monotonic() < deadline:
        time.sleep(0.02)
    after = httpx.post(
        f"{server.url}/v1/chat/completions", json={"messages": USER, "max_tokens": 2, "ignore_eos": True}, timeout=30
    )
    samples = metric_samples(httpx.get(f"{server.url}/metrics").text)
    assert received[0].startswith("data: ") and busy == 1
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "queue_full"
    assert running_gauge(server.url) == 0
    assert after.status_code == 200 and after.json()["usage"]["completion_tokens"] == 2
    assert samples[("llm_requests_total", (("status", "499"),))] == 1
    assert samples[("llm_requests_total", (("status", "429"),))] == 1
    assert samples[("llm_requests_waiting", ())] == 0


def test_disconnected_non_streamed_request_is_cancelled(one_slot_engine, live_server):
    server = live_server(one_slot_engine)

    async def give_up() -> None:
        async with httpx.AsyncClient(timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(
                    f"{server.url}/v1/chat/completions", json={"messages": USER, "max_tokens": 3000, "temperature": 0}
                )

    asyncio.run(give_up())
    deadline = time.monotonic() + 5
    while running_gauge(server.url) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running_gauge(server.url) == 0
    samples = metric_samples(httpx.get(f"{server.url}/metrics").text)
    statuses = {labels: value for (name, labels), value in samples.items() if name == "llm_requests_total"}
    assert statuses == {(("status", "499"),): 1}  # counted once: it was 499 and then 500
    assert samples[("llm_requests_in_progress", ())] == 0


class FailingStreamEngine(ModelFreeEngine):
    """Ready; streams one delta, then fails like a request that ran past its deadline."""

    def __init__(self) -> None:
        super().__init__("failing")

    def submit(self, request):
        from llm.engine.base import RequestHandle
        from llm.errors import DeadlineExceeded
        from llm.protocol import TextDelta

        handle = RequestHandle()
        handle.push([TextDelta("Our tents", 2), DeadlineExceeded(1, "was still generating")])
        return handle


def test_error_after_the_stream_started_is_an_error_event(live_server, tiny_model_dir):
    engine = FailingStreamEngine()
    engine.config = make_config(tiny_model_dir)
    server = live_server(engine)
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json={"messages": USER, "stream": True}, timeout=30
    ) as response:
        events = sse_events(list(response.iter_lines()))
    assert events[1]["choices"][0]["delta"] == {"content": "Our tents"}
    assert events[2]["error"]["code"] == "deadline_exceeded"
    assert events[3] == "[DONE]"
    samples = metric_samples(httpx.get(f"{server.url}/metrics").text)
    assert samples[("llm_requests_total", (("status", "504"),))] == 1
