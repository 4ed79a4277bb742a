"""Continuous batching: requests join and leave the running batch, limits, deadlines, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from llm.errors import DeadlineExceeded, QueueFull
from llm.metrics import ServiceMetrics
from llm.protocol import ChatCompletionRequest, ChatMessage, Completion
from tests.llm.conftest import make_engine


def request(i: int, **sampling) -> ChatCompletionRequest:
    # Prompts of different lengths, so rows are padded differently in the batch.
    text = f"Is tent {i} warm enough for a night in the hills?" + " Really?" * (i % 4)
    return ChatCompletionRequest(messages=(ChatMessage("user", text),), **sampling)


def test_concurrent_greedy_requests_match_their_sequential_results(engine):
    requests = [request(i, max_tokens=6 + 3 * i, temperature=0) for i in range(5)]

    async def together():
        return await asyncio.gather(*(engine.generate(r) for r in requests))

    batched = asyncio.run(together())
    alone = [asyncio.run(engine.generate(r)) for r in requests]
    assert batched == alone
    assert [c.completion_tokens for c in batched] == [6, 9, 12, 15, 18]  # each left when it was done


def test_a_request_joining_a_running_batch_changes_nobodys_text(engine):
    long = request(0, max_tokens=40, temperature=0)
    late = [request(i, max_tokens=8, temperature=1.0, seed=i) for i in (1, 2, 3)]

    async def staggered():
        first = asyncio.create_task(engine.generate(long))
        await asyncio.sleep(0.02)  # the long one is decoding now
        others = [asyncio.create_task(engine.generate(r)) for r in late]
        return await first, await asyncio.gather(*others)

    joined_long, joined_late = asyncio.run(staggered())
    if not engine.batch_invariant:  # the repeat must not start from the joined run's kept KV
        engine.batch.forget_conversations()
    assert joined_long == asyncio.run(engine.generate(long))
    alone = []
    for r in late:
        if not engine.batch_invariant:
            engine.batch.forget_conversations()
        alone.append(asyncio.run(engine.generate(r)))
    if engine.batch_invariant:
        assert joined_late == alone  # seeds are per request
    else:  # llama.cpp: a batch changes the logits' last bits, which a sampled draw may notice; a seed still
        # repeats from the same cache state (a kept conversation's KV, computed in another batch, is another state)
        again = []
        for r in late:
            engine.batch.forget_conversations()
            again.append(asyncio.run(engine.generate(r)))
        assert alone == again


def test_batch_size_is_capped_and_every_request_is_served(new_engine):
    engine = new_engine(max_batch_size=3, max_queue_size=10)
    metrics = ServiceMetrics()
    engine.attach_metrics(metrics)
    running = []

    async def scenario():
        tasks = [asyncio.create_task(engine.generate(request(i, max_tokens=12, temperature=0))) for i in range(8)]
        while not all(t.done() for t in tasks):
            running.append(engine.num_running)
            await asyncio.sleep(0.001)
        return [t.result() for t in tasks]

    try:
        results = asyncio.run(scenario())
    finally:
        engine.close()
    assert [r.completion_tokens for r in results] == [12] * 8
    assert max(running) == 3
    batch = metrics.batch_size.collect()[0].samples
    steps = next(s.value for s in batch if s.name.endswith("_count"))
    tokens_in_steps = next(s.value for s in batch if s.name.endswith("_sum"))
    assert tokens_in_steps == 8 * 11  # the first token of each comes from its prefill
    assert steps < 8 * 11 / 2  # most steps carried several requests


def test_full_queue_is_refused_at_once(new_engine):
    engine = new_engine(max_batch_size=1, max_queue_size=1, max_new_tokens_cap=4000)

    async def scenario():
        running = asyncio.create_task(engine.generate(request(0, max_tokens=3000, temperature=0)))
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(engine.generate(request(1, max_tokens=2, ignore_eos=True)))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull) as refused:  # submit is synchronous: refused without waiting
            engine.submit(request(2, max_tokens=2))
        running.cancel()
        return refused.value, await waiting

    try:
        error, served = asyncio.run(scenario())
    finally:
        engine.close()
    assert error.status == 429 and error.retry_after_s >= 1
    assert "1 requests already waiting" in error.message
    assert served.completion_tokens == 2  # the cancelled long request freed its slot


def test_deadline_ends_a_running_request(new_engine):
    engine = new_engine(request_timeout_s=0.3, max_new_tokens_cap=4000)
    started = time.perf_counter()
    try:
        with pytest.raises(DeadlineExceeded) as error:
            asyncio.run(engine.generate(request(0, max_tokens=3000, temperature=0)))
        ended_in, running = time.perf_counter() - started, engine.num_running
    finally:
        engine.close()
    assert ended_in >= 0.3  # never before its deadline; that it ended early is the 504 below
    assert error.value.status == 504
    assert "deadline of 0.3 s (it was still generating); ask for fewer max_tokens" in error.value.message
    assert running == 0


def test_a_request_ended_by_its_deadline_has_left_the_batch_when_its_client_hears_of_it(tiny_model_dir):
    # Prefill chunks of 4 tokens, each made to take 50 ms: the 0.3 s deadline passes during the
    # prefill, so the scheduler retires the request between two chunks.
    engine = make_engine(tiny_model_dir, request_timeout_s=0.3, prefill_chunk_tokens=4)
    slow_chunk = engine.scheduler._prefill_chunk

    def prefill_chunk() -> None:
        time.sleep(0.05)
        slow_chunk()

    engine.scheduler._prefill_chunk = prefill_chunk
    running_when_told: list[int] = []
    told = threading.Event()

    def sink(events) -> None:  # runs on the scheduler thread, the moment the events are handed over
        if any(isinstance(event, DeadlineExceeded) for event in events):
            running_when_told.append(engine.num_running)
            told.set()

    long_prompt = ChatCompletionRequest(messages=(ChatMessage("user", "Is this tent warm enough? " * 40),),
                                        max_tokens=4, temperature=0)
    try:
        engine.scheduler.submit(engine._sequence(long_prompt, sink))
        assert told.wait(60), "the deadline never ended the request"
    finally:
        engine.close()
    assert running_when_told == [0]


def test_deadline_ends_a_request_still_waiting_for_a_slot(new_engine):
    engine = new_engine(max_batch_size=1, request_timeout_s=0, max_new_tokens_cap=4000)

    async def scenario():
        blocker = asyncio.create_task(engine.generate(request(0, max_tokens=3000, temperature=0)))
        await asyncio.sleep(0.05)
        engine.scheduler.timeout_s = 0.2  # the blocker has no deadline, the next request has
        with pytest.raises(DeadlineExceeded) as error:
            await engine.generate(request(1, max_tokens=2))
        waiting = engine.num_waiting
        blocker.cancel()
        return error.value, waiting

    try:
        error, waiting = asyncio.run(scenario())
    finally:
        engine.close()
    assert "deadline of 0.2 s (it waited in the queue for a batch slot)" in error.message
    assert waiting == 0


def test_cancelling_a_request_frees_its_slot_at_the_next_step(new_engine):
    engine = new_engine(max_new_tokens_cap=4000)

    async def scenario():
        handle = engine.submit(request(0, max_tokens=3000, temperature=0, stream=True))
        events = []
        async for event in handle:
            events.append(event)
            if len(events) == 3:
                break
        during = engine.num_running
        handle.cancel()
        deadline = time.monotonic() + 2
        while engine.num_running and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        after = engine.num_running
        follow_up = await engine.generate(request(1, max_tokens=3, ignore_eos=True))
        return during, after, follow_up

    try:
        during, after, follow_up = asyncio.run(scenario())
    finally:
        engine.close()
    assert (during, after) == (1, 0)
    assert isinstance(follow_up, Completion) and follow_up.completion_tokens == 3


def test_scheduler_timings_are_observed(new_engine):
    engine = new_engine()
    metrics = ServiceMetrics()
    engine.attach_metrics(metrics)

    async def scenario():
        return await asyncio.gather(*(engine.generate(request(i, max_tokens=5)) for i in range(3)))

    try:
        asyncio.run(scenario())
    finally:
        engine.close()
    for histogram in (metrics.queue_time, metrics.time_to_first_token, metrics.time_per_output_token):
        count = next(s.value for s in histogram.collect()[0].samples if s.name.endswith("_count"))
        assert count == 3, histogram
