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
    # the first request found the warm prefix; the second, the first one's whole prompt (its slot was kept)
    assert samples[("llm_prefix_cache_hit_tokens_total", ())] == prefix + (prompt_tokens // 2 - 1)
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


def _request(*messages: tuple[str, str], max_tokens: int = 10) -> ChatCompletionRequest:
    return ChatCompletionRequest(messages=tuple(ChatMessage(role, text) for role, text in messages),
                                 max_tokens=max_tokens, temperature=0, ignore_eos=True)


def test_a_conversations_next_turn_reuses_its_previous_turn_and_answers_as_a_cold_engine(engines):
    build, warm_file = engines
    warm, cold = build(warm_file), build("none")
    first = _request(("system", SYSTEM), ("user", "Which tent for two in the rain?"))
    kept_before = warm.batch.retained  # (the warm-up's own request is kept too)
    reply = asyncio.run(warm.generate(first)).text
    assert warm.batch.retained == kept_before + 1
    second = _request(("system", SYSTEM), ("user", "Which tent for two in the rain?"), ("assistant", reply),
                      ("user", "And a sleeping bag for the same trip?"))
    prompt = warm.tokenize_prompt(second.messages)
    slot, hit = warm.batch.retained_match(prompt)
    assert slot is not None
    # the whole first prompt and (at least) the reply's first tokens are reused, not just the system prompt
    assert hit >= len(warm.tokenize_prompt(first.messages)) > len(warm.batch.prefix_tokens)
    assert asyncio.run(warm.generate(second)).text == asyncio.run(cold.generate(second)).text
    # a stranger's question (the same system prompt, another first question) starts from the warm prefix
    # and leaves the conversation kept
    stranger = _request(("system", SYSTEM), ("user", "Do you ship to Norway?"))
    assert warm.batch.retained_match(warm.tokenize_prompt(stranger.messages)) == (
        None, len(warm.batch.prefix_tokens))
    assert asyncio.run(warm.generate(stranger)).text == asyncio.run(cold.generate(stranger)).text
    third = _request(*[(m.role, m.content) for m in second.messages], ("assistant", "A warm one."),
                     ("user", "Thanks!"))
    assert warm.batch.retained_match(warm.tokenize_prompt(third.messages))[0] is not None


def test_kept_conversations_make_way_for_new_requests_when_the_cache_is_full(tiny_model_dir, tiny_gguf_cache):
    # 512 cells: room for the warm-less prompts below one or two at a time, never for all the kept ones
    engine = make_engine(tiny_model_dir, engine="llamacpp", gguf_cache=str(tiny_gguf_cache), warm_prompt="none",
                         kv_cache_tokens=512, max_batch_size=4, prefill_chunk_tokens=32)
    try:
        texts = []
        for n in range(12):
            request = _request(("user", f"Question number {n}: " + "which pack for a long walk? " * 8))
            texts.append(asyncio.run(engine.generate(request)).text)
        assert all(texts)
        assert engine.batch.retained <= 4
        assert engine.batch._cells_in_use() <= 512
    finally:
        engine.close()
