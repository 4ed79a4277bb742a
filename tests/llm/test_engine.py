"""The transformers engine on a tiny random Qwen2 model: template, limits, sampling, stops."""

from __future__ import annotations

import asyncio
import time

import pytest

from llm.config import ServiceConfig
from llm.engine.transformers_engine import TransformersEngine
from llm.errors import ContextLengthExceeded, ModelNotReady, ShuttingDown
from llm.protocol import ChatCompletionRequest, ChatMessage, FinishReason
from tests.llm.conftest import make_config

QUESTION = (ChatMessage("user", "Which sleeping bag keeps me warm on a cold night?"),)


def complete(engine, messages=QUESTION, **sampling):
    return asyncio.run(engine.generate(ChatCompletionRequest(messages=messages, **sampling)))


def test_prompt_is_the_chat_template_with_a_generation_prompt(engine):
    messages = (ChatMessage("system", "You sell tents."), *QUESTION)
    prompt = engine.render_prompt(messages)
    assert prompt.startswith("<|im_start|>system\nYou sell tents.<|im_end|>\n")
    assert "<|im_start|>user\nWhich sleeping bag keeps me warm on a cold night?<|im_end|>\n" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "You are a helpful assistant." in engine.render_prompt(QUESTION)  # default system message


def test_prompt_tokens_count_the_templated_prompt(engine):
    completion = complete(engine, max_tokens=1, temperature=0)
    prompt_ids = engine.tokenizer(engine.render_prompt(QUESTION), add_special_tokens=False).input_ids
    assert completion.prompt_tokens == len(prompt_ids)
    assert prompt_ids[0] == engine.tokenizer.convert_tokens_to_ids("<|im_start|>")


def test_max_tokens_bounds_the_completion_and_finishes_with_length(engine):
    completion = complete(engine, max_tokens=5, temperature=0)
    assert completion.completion_tokens == 5
    assert completion.finish_reason is FinishReason.LENGTH
    assert len(engine.tokenizer(completion.text, add_special_tokens=False).input_ids) <= 5


def test_random_reply_is_readable_words(engine):
    completion = complete(engine, max_tokens=12, temperature=1.0, seed=1)
    words = completion.text.replace(",", " ").replace(".", " ").split()
    assert len(words) >= 6
    assert all(word.isalpha() for word in words), completion.text


def test_greedy_is_deterministic(engine):
    assert complete(engine, max_tokens=8, temperature=0).text == complete(engine, max_tokens=8, temperature=0).text


def test_same_seed_same_text_at_temperature_one(engine):
    first = complete(engine, max_tokens=16, temperature=1.0, seed=7)
    again = complete(engine, max_tokens=16, temperature=1.0, seed=7)
    other = complete(engine, max_tokens=16, temperature=1.0, seed=8)
    assert first.text == again.text
    assert first.text != other.text


def test_stop_string_cuts_the_text_and_ends_generation(engine):
    free = complete(engine, max_tokens=24, temperature=1.0, seed=3)
    words = free.text.split()
    stop = words[len(words) // 2]  # a word from the middle of the unconstrained reply
    cut = free.text.index(stop)
    stopped = complete(engine, max_tokens=24, temperature=1.0, seed=3, stop=(stop,))
    assert stopped.text == free.text[:cut]
    assert stop not in stopped.text
    assert stopped.finish_reason is FinishReason.STOP
    assert stopped.completion_tokens < free.completion_tokens


def test_prompt_longer_than_the_context_is_a_client_error(engine):
    long_message = (ChatMessage("user", "tent " * (engine.context_length + 10)),)
    with pytest.raises(ContextLengthExceeded) as error:
        complete(engine, messages=long_message, max_tokens=4)
    assert error.value.status == 400
    assert f"the model's context is {engine.context_length} tokens" in error.value.message


def test_max_tokens_is_clamped_to_the_room_left_in_the_context(engine):
    room = 3
    template_tokens = complete(engine, messages=(ChatMessage("user", ""),), max_tokens=1, temperature=0).prompt_tokens
    filler = " ".join(["tent"] * (engine.context_length - template_tokens - room))
    completion = complete(engine, messages=(ChatMessage("user", filler),), max_tokens=50, temperature=0)
    assert completion.completion_tokens == engine.context_length - completion.prompt_tokens < 50
    assert completion.finish_reason is FinishReason.LENGTH


def test_end_of_sequence_token_finishes_with_stop(engine, monkeypatch):
    # Suppress every token but the end-of-turn ones: the model must end its turn at once.
    eos = set(engine.model.generation_config.eos_token_id)
    everything_else = [i for i in range(len(engine.tokenizer)) if i not in eos]
    monkeypatch.setattr(engine.model.generation_config, "suppress_tokens", everything_else)
    completion = complete(engine, max_tokens=10, temperature=0)
    assert (completion.text, completion.completion_tokens) == ("", 1)
    assert completion.finish_reason is FinishReason.STOP


def test_close_interrupts_a_running_generation(tiny_model_dir):
    engine = TransformersEngine(make_config(tiny_model_dir, cpu_threads=1))
    engine.load()
    engine.warm_up()

    async def scenario():
        long_request = ChatCompletionRequest(messages=QUESTION, max_tokens=3000, temperature=0)
        task = asyncio.create_task(engine.generate(long_request))
        await asyncio.sleep(0.2)
        engine.close()
        started = time.monotonic()
        with pytest.raises(ShuttingDown):
            await asyncio.wait_for(task, timeout=5)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 2  # 3000 tokens would take far longer


def test_generation_runs_off_the_event_loop(engine):
    async def scenario():
        ticks = 0
        task = asyncio.create_task(
            engine.generate(ChatCompletionRequest(messages=QUESTION, max_tokens=60, temperature=0))
        )
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.005)
        return ticks, await task

    ticks, completion = asyncio.run(scenario())
    assert completion.completion_tokens == 60
    assert ticks > 3  # the loop kept running while the model generated


def test_concurrent_requests_are_served_one_after_another(engine):
    async def scenario():
        requests = [ChatCompletionRequest(messages=QUESTION, max_tokens=4, temperature=1.0, seed=s) for s in (1, 2, 3)]
        return await asyncio.gather(*(engine.generate(r) for r in requests))

    results = asyncio.run(scenario())
    assert [r.completion_tokens for r in results] == [4, 4, 4]
    assert results == [complete(engine, max_tokens=4, temperature=1.0, seed=s) for s in (1, 2, 3)]


def test_unloaded_engine_is_not_ready(tiny_model_dir):
    engine = TransformersEngine(make_config(tiny_model_dir))
    assert not engine.loaded and not engine.ready
    with pytest.raises(ModelNotReady):
        complete(engine, max_tokens=1)
    engine.close()


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA device")
def test_generates_on_the_gpu_in_half_precision(tiny_model_dir):
    config = ServiceConfig(model=str(tiny_model_dir)).resolve(cuda_available=True, bf16_supported=True)
    engine = TransformersEngine(config)
    try:
        engine.load()
        engine.warm_up()
        assert engine.model.device.type == "cuda"
        assert str(engine.model.dtype) == "torch.bfloat16"
        first = complete(engine, max_tokens=12, temperature=1.0, seed=5)
        again = complete(engine, max_tokens=12, temperature=1.0, seed=5)
        assert first == again and first.completion_tokens == 12
        stop = first.text.split()[3]
        stopped = complete(engine, max_tokens=12, temperature=1.0, seed=5, stop=(stop,))
        assert stopped.text == first.text[: first.text.index(stop)]
        assert stopped.finish_reason is FinishReason.STOP
    finally:
        engine.close()
