"""/metrics counts exactly what was served: N requests (some concurrent, some streamed) -> N."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.llm.conftest import metric_samples
from tests.llm.test_server import USER

SCHEDULER_HISTOGRAMS = (
    "llm_request_queue_time_seconds",
    "llm_time_to_first_token_seconds",
    "llm_time_per_output_token_seconds",
)


async def send_all(url: str) -> tuple[list[dict], int]:
    """Three sequential, five concurrent (two of them streamed), and two bad requests."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def plain(max_tokens: int) -> dict:
            response = await client.post("/v1/chat/completions", json={"messages": USER, "max_tokens": max_tokens})
            assert response.status_code == 200, response.text
            return response.json()["usage"]

        async def streamed(max_tokens: int) -> dict:
            body = {"messages": USER, "max_tokens": max_tokens, "stream": True,
                    "stream_options": {"include_usage": True}}
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                lines = [line async for line in response.aiter_lines() if line.startswith("data: {")]
            return json.loads(lines[-1][len("data: "):])["usage"]

        usages = [await plain(2 + i) for i in range(3)]
        usages += await asyncio.gather(plain(4), plain(6), plain(8), streamed(5), streamed(7))
        for _ in range(2):
            response = await client.post("/v1/chat/completions", json={"messages": []})
            assert response.status_code == 400
        for path in ("/health", "/ready", "/v1/models", "/metrics"):
            await client.get(path)  # not counted
    return usages, 2


def test_counters_equal_the_requests_sent_and_tokens_the_usage(engine, live_server):
    server = live_server(engine)
    usages, bad = asyncio.run(send_all(server.url))
    response = httpx.get(f"{server.url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = metric_samples(response.text)
    ok = len(usages)
    assert ok == 8
    assert samples[("llm_requests_total", (("status", "200"),))] == ok
    assert samples[("llm_requests_total", (("status", "400"),))] == bad
    assert samples[("llm_request_duration_seconds_count", ())] == ok + bad
    assert samples[("llm_generation_tokens_total", ())] == sum(u["completion_tokens"] for u in usages)
    assert samples[("llm_prompt_tokens_total", ())] == sum(u["prompt_tokens"] for u in usages)
    finished = {labels: value for (name, labels), value in samples.items() if name == "llm_request_finish_total"}
    assert sum(finished.values()) == ok  # stop (the model ended its turn) or length
    for name in SCHEDULER_HISTOGRAMS:
        assert samples[(f"{name}_count", ())] == ok, name
    generated_by_steps = samples[("llm_batch_size_requests_sum", ())]
    assert generated_by_steps == sum(u["completion_tokens"] for u in usages) - ok  # first tokens come from prefill
    assert samples[("llm_batch_size_requests_count", ())] < generated_by_steps  # some steps were shared
    for gauge in ("llm_requests_in_progress", "llm_requests_running", "llm_requests_waiting"):
        assert samples[(gauge, ())] == 0, gauge
    assert samples[("llm_model_ready", ())] == 1
    assert samples[("llm_cuda_memory_peak_bytes", ())] == 0


def test_every_metric_is_prefixed_and_unit_suffixed(engine, live_server):
    server = live_server(engine)
    samples = metric_samples(httpx.get(f"{server.url}/metrics").text)
    names = set()
    for name, _ in samples:
        if name.endswith("_created"):
            continue
        for suffix in ("_bucket", "_count", "_sum"):
            name = name.removesuffix(suffix)
        names.add(name)
    ours = {n for n in names if not n.startswith("process_")}
    assert {
        "llm_request_duration_seconds", "llm_request_queue_time_seconds", "llm_time_to_first_token_seconds",
        "llm_time_per_output_token_seconds", "llm_prompt_tokens_total", "llm_generation_tokens_total",
        "llm_requests_running", "llm_requests_waiting", "llm_batch_size_requests", "llm_model_ready",
    } <= ours
    units = ("_total", "_seconds", "_bytes", "_requests", "_ready", "_in_progress", "_running", "_waiting")
    assert all(n.startswith("llm_") and n.endswith(units) for n in ours), ours
