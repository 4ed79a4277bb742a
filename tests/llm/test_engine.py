"""Every engine on a tiny random Qwen2 model: template, limits, sampling, stops, streaming (``engine`` is
parametrized over the engines); and what only the transformers engine promises (equal to ``generate``)."""

from __future__ import annotations

import asyncio

import pytest
import torch

from llm.engine.transformers_engine import TransformersEngine
from llm.errors import ContextLengthExceeded, ModelNotReady, ShuttingDown
from llm.protocol import ChatCompletionRequest, ChatMessage, Completion, FinishReason, TextDelta
from tests.llm.conftest import make_config, make_engine

QUESTION = (ChatMessage("user", "Which sleeping bag keeps me warm on a cold night?"),)


def complete(engine, messages=QUESTION, **sampling):
    return asyncio.run(engine.generate(ChatCompletionRequest(messages=messages, **sampling)))


def stream(engine, messages=QUESTION, **sampling) -> list:
    async def collect():
        return [event async for event in engine.submit(ChatCompletionRequest(messages=messages, **sampling))]

    return asyncio.run(collect())


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


def test_greedy_text_equals_plain_model_generate(transformers_engine):
    engine = transformers_engine
    completion = complete(engine, max_tokens=12, temperature=0)
    prompt = torch.tensor([engine.tokenize_prompt(QUESTION)])
    output = engine.model.generate(
        prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12, do_sample=False,
        temperature=None, top_p=None, top_k=None,
    )
    assert completion.text == engine.tokenizer.decode(output[0, prompt.shape[1]:], skip_special_tokens=True)


def test_random_reply_is_readable_words(engine):
    completion = complete(engine, max_tokens=12, temperature=1.0, seed=1)
    words = "".join(" " if c in ",.?!" else c for c in completion.text).split()  # the tiny model's punctuation
    assert len(words) >= 6
    assert all(word.isalpha() for word in words), completion.text


def test_same_seed_same_text_at_temperature_one(engine):
    first = complete(engine, max_tokens=16, temperature=1.0, seed=7)
    again = complete(engine, max_tokens=16, temperature=1.0, seed=7)
    other = complete(engine, max_tokens=16, temperature=1.0, seed=8)
    assert first.text == again.text
    assert first.text != other.text


def test_top_p_near_zero_is_greedy(engine):
    assert complete(engine, max_tokens=8, temperature=1.0, top_p=1e-6, seed=3).text == complete(
        engine, max_tokens=8, temperature=0
    ).text


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


def test_stream_deltas_add_up_to_the_completion_and_never_show_the_stop_string(engine):
    free = complete(engine, max_tokens=24, temperature=1.0, seed=5)
    stop = free.text.split()[5]
    events = stream(engine, max_tokens=24, temperature=1.0, seed=5, stop=(stop,))
    *deltas, final = events
    assert isinstance(final, Completion) and all(isinstance(d, TextDelta) for d in deltas)
    assert len(deltas) > 2  # token by token, not one lump at the end
    assert "".join(d.text for d in deltas) == final.text == free.text[: free.text.index(stop)]
    assert [d.completion_tokens for d in deltas] == sorted(d.completion_tokens for d in deltas)


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


def test_end_of_sequence_token_finishes_with_stop_unless_ignore_eos(tiny_model_dir, monkeypatch):
    from llm.engine.scheduler import ContinuousBatchingScheduler

    # Suppress every token but the end-of-turn ones: the model must end its turn at once.
    def suppress_all_but_eos(self, model, **kwargs):
        eos = set(model.generation_config.eos_token_id)
        kwargs["suppress_ids"] = torch.tensor([i for i in range(model.config.vocab_size) if i not in eos])
        original_init(self, model, **kwargs)

    original_init = ContinuousBatchingScheduler.__init__
    monkeypatch.setattr(ContinuousBatchingScheduler, "__init__", suppress_all_but_eos)
    engine = make_engine(tiny_model_dir)
    try:
        completion = complete(engine, max_tokens=10, temperature=0)
        ignoring = complete(engine, max_tokens=10, temperature=0, ignore_eos=True)
    finally:
        engine.close()
    assert (completion.text, completion.completion_tokens) == ("", 1)
    assert completion.finish_reason is FinishReason.STOP
    assert (ignoring.text, ignoring.completion_tokens, ignoring.finish_reason) == ("", 10, FinishReason.LENGTH)


def test_close_interrupts_a_running_generation(new_engine):
    engine = new_engine(max_new_tokens_cap=4000)

    async def scenario():
        long_request = ChatCompletionRequest(messages=QUESTION, max_tokens=3000, temperature=0)
        task = asyncio.create_task(engine.generate(long_request))
        await asyncio.sleep(0.2)
        engine.close()
        with pytest.raises(ShuttingDown):  # not a 3000-token completion: close interrupted it
            await asyncio.wait_for(task, timeout=60)  # a guard against a hang, not a measurement

    asyncio.run(scenario())


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


def test_unloaded_engine_is_not_ready(tiny_model_dir):
    engine = TransformersEngine(make_config(tiny_model_dir))
    assert not engine.loaded and not engine.ready
    with pytest.raises(ModelNotReady):
        complete(engine, max_tokens=1)
    engine.close()
