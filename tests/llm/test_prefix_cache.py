"""The llama.cpp engine's prefix cache: the warm system prompt's KV is reused, counted, and changes nothing."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from llm.protocol import ChatCompletionRequest, ChatMessage
from tests.llm.conftest import llamacpp_missing, make_engine, metric_samples

pytestmark = pytest.mark.skipif(bool(llamacpp_missing()), reason=llamacpp_missing() or "-")

SYSTEM = "You are the support assistant of an outdoor-gear store. Answer in at most four sentences. " * 6


@pytest.fixture
def engines(tiny_model_dir, tiny_gguf_cache, tmp_path):
    warm_file = tmp_path / "system.txt"
    warm_file.write_text(SYSTEM)
    built = []

    def build(warm_prompt: str):
        engine = make_engine(tiny_model_dir, engine="llamacpp", gguf_cache=str(tiny_gguf_cache),
                             warm_prompt=warm_prompt, prefill_chunk_tokens=32)
        built.append(engine)
        return engine

    yield build, str(warm_file)
    for engine in built:
        engine.close()


def test_requests_sharing_the_warm_prompt_hit_the_cache_and_answer_as_a_cold_engine(engines, live_server):
    build, warm_file = engines
    warm, cold = build(warm_file), build("none")
    prefix = len(warm.batch.prefix_tokens)
    assert prefix > 64  # the system prompt, computed at warm-up
    body = {"messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": "Which tent for two in the rain?"}],
            "max_tokens": 12, "temperature": 0, "ignore_eos": True}
    server = live_server(warm)
    texts, prompt_tokens = [], 0
    for _ in range(2):
        response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)
        assert response.status_code == 200, response.text
        texts.append(response.json()["choices"][0]["message"]["content"])
        prompt_tokens += response.json()["usage"]["prompt_tokens"]
    samples = metric_samples(httpx.get(f"{server.url}/metrics").text)
    assert samples[("llm_prefix_cache_hit_tokens_total", ())] == 2 * prefix
    assert samples[("llm_prefix_cache_queries_total", ())] == prompt_tokens  # (the warm-up ran before the app)

    request = ChatCompletionRequest(messages=(ChatMessage("system", SYSTEM),
                                              ChatMessage("user", "Which tent for two in the rain?")),
                                    max_tokens=12, temperature=0, ignore_eos=True)
    alone = asyncio.run(cold.generate(request))
    assert texts == [alone.text, alone.text]
    assert cold.batch.prefix_tokens == []


def test_a_prompt_that_differs_from_the_first_token_gets_no_hit(engines):
    build, warm_file = engines
    engine = build(warm_file)
    other = engine.tokenize_prompt((ChatMessage("user", "Hello there"),))
    assert engine.batch.prefix_match(other) < 10  # only the template's opening words can match
    same = engine.tokenize_prompt((ChatMessage("system", SYSTEM), ChatMessage("user", "Hi")))
    assert engine.batch.prefix_match(same) == len(engine.batch.prefix_tokens)
    assert engine.batch.prefix_match(engine.batch.prefix_tokens) == len(engine.batch.prefix_tokens) - 1
