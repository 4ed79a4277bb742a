"""Work for a client that has gone stops at the next step boundary, queued or running, streaming or not.

Measured in engine steps (prefill chunks and decode steps), not wall time: a step listener records which
sequences took part in each step, and the scheduler records the step under way when each sequence was
cancelled. A cancelled sequence may finish the step already under way, and take part in no later one.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections import defaultdict

import httpx
import pytest

from llm.engine.scheduler import DECODE, PREFILL_CHUNK, decoder_layers
from llm.protocol import ChatCompletionRequest, ChatMessage
from tests.llm.conftest import make_engine, metric_samples
from tests.llm.test_cli import serve_process, wait_ready
from tests.support.servers import wait_until
from tools.procs import free_port

LONG_QUESTION = "Which tent, stove and sleeping bag should I pack for four nights in the hills in March? " * 20


class StepRecorder:
    """A step listener: the sequences in each step, by step index."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, str, list]] = []
        self.lock = threading.Lock()

    def __call__(self, index: int, kind: str, sequences: list) -> None:
        with self.lock:
            self.steps.append((index, kind, list(sequences)))

    def steps_of(self, request_id: str) -> list[tuple[int, str]]:
        with self.lock:
            return [(i, kind) for i, kind, seqs in self.steps if any(s.request.request_id == request_id for s in seqs)]

    def sequence(self, request_id: str):
        with self.lock:
            return next(s for _, _, seqs in self.steps for s in seqs if s.request.request_id == request_id)

    def late_participants(self) -> list[tuple[int, str, int]]:
        """(step, request id, step when cancelled) for every step a sequence joined after its cancellation."""
        with self.lock:
            return [
                (index, s.request.request_id, s.cancelled_at_step)
                for index, _, seqs in self.steps
                for s in seqs
                if s.cancelled_at_step is not None and index > s.cancelled_at_step
            ]


def wait_for(condition, what: str, timeout_s: float = 60) -> None:
    wait_until(condition, timeout_s=timeout_s, interval_s=0.005, what=what)


@pytest.fixture
def engine_with_steps(new_engine):
    engines = []

    def build(**overrides):
        settings = {"max_new_tokens_cap": 4000, **overrides}
        engine = new_engine(**settings)
        recorder = StepRecorder()
        engine.scheduler.add_step_listener(recorder)
        engines.append(engine)
        return engine, recorder

    build.kind = new_engine.kind
    yield build
    for engine in engines:
        engine.close()


@pytest.mark.parametrize("stream", [False, True], ids=["non-streaming", "streaming"])
@pytest.mark.parametrize(("phase", "nth"), [(PREFILL_CHUNK, 3), (DECODE, 5)])
def test_a_cancelled_request_takes_part_in_at_most_the_step_under_way(engine_with_steps, phase, nth, stream):
    engine, recorder = engine_with_steps(prefill_chunk_tokens=16)
    request = ChatCompletionRequest(messages=(ChatMessage("user", LONG_QUESTION),), max_tokens=3000,
                                    ignore_eos=True, stream=stream, request_id=f"gone-{phase}-{stream}")
    seen = defaultdict(int)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()

        async def consume():
            if stream:
                async for _ in engine.submit(request):
                    pass
            else:
                await engine.generate(request)

        task = asyncio.create_task(consume())

        def disconnect_during_the_nth_step(index, kind, sequences):
            # On the scheduler thread, before the step's model call: the client goes away now.
            mine = [s for s in sequences if s.request.request_id == request.request_id]
            if mine and kind == phase:
                seen[kind] += 1
                if seen[kind] == nth:
                    loop.call_soon_threadsafe(task.cancel)
                    wait_for(lambda: mine[0].cancelled, "the handler to cancel the sequence")

        engine.scheduler.add_step_listener(disconnect_during_the_nth_step)
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    wait_for(lambda: engine.num_running == 0 and engine.num_waiting == 0, "the batch to empty")
    steps = recorder.steps_of(request.request_id)
    sequence = recorder.sequence(request.request_id)
    assert sequence.cancelled_at_step == max(index for index, _ in steps)  # the step under way was its last
    assert [kind for _, kind in steps].count(phase) == nth
    if phase == PREFILL_CHUNK:  # the long prompt was read in chunks, and not to the end
        assert DECODE not in [kind for _, kind in steps]
        assert len(sequence.prompt_ids) > 16 * (nth + 1)
    assert recorder.late_participants() == []
    follow_up = asyncio.run(engine.generate(ChatCompletionRequest(messages=(ChatMessage("user", "hi"),),
                                                                  max_tokens=2, ignore_eos=True)))
    assert follow_up.completion_tokens == 2


def test_a_cancelled_queued_request_never_reaches_the_model(engine_with_steps):
    engine, recorder = engine_with_steps(max_batch_size=1)
    blocker = ChatCompletionRequest(messages=(ChatMessage("user", "hi"),), max_tokens=3000, ignore_eos=True,
                                    request_id="blocker")
    queued = ChatCompletionRequest(messages=(ChatMessage("user", "hello"),), max_tokens=5, request_id="queued")

    async def scenario() -> tuple[int, int]:
        running = asyncio.create_task(engine.generate(blocker))
        await asyncio.to_thread(wait_for, lambda: recorder.steps_of("blocker"), "the blocker to start")
        waiting = asyncio.create_task(engine.generate(queued))
        await asyncio.to_thread(wait_for, lambda: engine.num_waiting == 1, "the request to queue")
        waiting.cancel()
        await asyncio.to_thread(wait_for, lambda: engine.num_waiting == 0, "the queue to drop it")
        still_running = engine.num_running
        running.cancel()
        await asyncio.gather(running, waiting, return_exceptions=True)
        return still_running, engine.num_waiting

    still_running, waiting = asyncio.run(scenario())
    assert (still_running, waiting) == (1, 0)
    assert recorder.steps_of("queued") == []
    assert recorder.late_participants() == []


def completions_url(server) -> str:
    return f"{server.url}/v1/chat/completions"


def test_eight_abandoned_requests_stop_are_counted_once_and_free_the_service(engine_with_steps, live_server, caplog):
    caplog.set_level(logging.INFO, logger="llm.server")
    engine, recorder = engine_with_steps(max_batch_size=4, max_queue_size=8)
    server = live_server(engine)
    body = {"messages": [{"role": "user", "content": LONG_QUESTION}], "max_tokens": 3000, "ignore_eos": True}

    async def give_up(i: int) -> None:
        # Far below the generation time: 3000 tokens take seconds even for the tiny model.
        async with httpx.AsyncClient(timeout=0.5) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(completions_url(server), json=body, headers={"X-Request-ID": f"abandoned-{i}"})

    async def eight_clients() -> None:
        await asyncio.gather(*(give_up(i) for i in range(8)))

    asyncio.run(eight_clients())

    def gauges() -> dict:
        return metric_samples(httpx.get(f"{server.url}/metrics", timeout=10).text)

    wait_for(lambda: gauges()[("llm_requests_running", ())] == 0 and gauges()[("llm_requests_waiting", ())] == 0,
             "the running and waiting gauges to reach 0")
    wait_for(lambda: gauges()[("llm_requests_in_progress", ())] == 0, "the handlers to end")
    samples = gauges()
    statuses = {labels: value for (name, labels), value in samples.items() if name == "llm_requests_total"}
    assert statuses == {(("status", "499"),): 8}  # once each, and never a 500
    ids = [f"chatcmpl-abandoned-{i}" for i in range(8)]
    lines = [r.getMessage() for r in caplog.records if r.name == "llm.server"]
    for request_id in ids:
        logged = [line for line in lines if line.startswith(request_id + " ")]
        assert len(logged) == 1 and " status=499 " in logged[0], logged
    for request_id in ids:
        sequence = recorder.sequence(request_id) if recorder.steps_of(request_id) else None
        if sequence is not None:
            assert sequence.cancelled_at_step is not None
    assert recorder.late_participants() == []
    served = httpx.post(completions_url(server), json={"messages": [{"role": "user", "content": "hi"}],
                                                       "max_tokens": 2, "ignore_eos": True}, timeout=30)
    assert served.status_code == 200 and served.json()["usage"]["completion_tokens"] == 2


def test_disconnected_streams_stop_at_the_next_step(engine_with_steps, live_server):
    engine, recorder = engine_with_steps(max_batch_size=4)
    server = live_server(engine)
    body = {"messages": [{"role": "user", "content": "Which tent?"}], "max_tokens": 3000, "ignore_eos": True,
            "stream": True}

    def read_a_little_then_leave(i: int) -> None:
        with httpx.stream("POST", completions_url(server), json=body, timeout=30,
                          headers={"X-Request-ID": f"stream-{i}"}) as response:
            lines = response.iter_lines()
            for _ in range(6):
                next(lines)

    threads = [threading.Thread(target=read_a_little_then_leave, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    wait_for(lambda: engine.num_running == 0 and engine.num_waiting == 0, "the batch to empty")
    samples = metric_samples(httpx.get(f"{server.url}/metrics", timeout=10).text)
    assert samples[("llm_requests_total", (("status", "499"),))] == 4
    assert all(recorder.sequence(f"chatcmpl-stream-{i}").cancelled_at_step is not None for i in range(4))
    assert recorder.late_participants() == []


@pytest.mark.slow
def test_sigterm_drains_and_exits_within_5_s_whatever_is_queued(tiny_model_dir):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = serve_process("--model", str(tiny_model_dir), "--port", str(port), "--max-batch-size", "2",
                            "--max-queue-size", "16", "--max-new-tokens-cap", "4000", env={"LLM_CPU_THREADS": "1"})
    outcomes: list = []

    def client() -> None:
        body = {"messages": [{"role": "user", "content": LONG_QUESTION}], "max_tokens": 4000, "ignore_eos": True}
        try:
            response = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=60)
            outcomes.append((response.status_code, response.json()["error"]["code"]))
        except httpx.TransportError as exc:
            outcomes.append(("no response", type(exc).__name__))

    def gauges() -> tuple[float, float]:
        samples = metric_samples(httpx.get(f"{base_url}/metrics", timeout=10).text)
        return samples[("llm_requests_running", ())], samples[("llm_requests_waiting", ())]

    try:
        wait_ready(process, base_url, timeout_s=300)  # generous: imports are slow on a loaded 2-core machine
        clients = [threading.Thread(target=client) for _ in range(10)]
        for thread in clients:
            thread.start()
        wait_for(lambda: gauges() == (2, 8), "2 requests running and 8 queued")
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=60)  # a hang guard; `python -m tools.bench.llm.abandon` times the drain
        for thread in clients:
            thread.join(60)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.communicate()[1]
    assert returncode == 0, stderr
    assert outcomes == [(503, "shutting_down")] * 10
    assert "Traceback" not in stderr


def test_a_step_nobody_waits_for_stops_at_the_next_decoder_layer(engine_with_steps):
    """A long prefill chunk whose client leaves mid-chunk: the layers after that point never run.
    (The transformers engine's promise: llama.cpp's steps end at their own end.)"""
    if engine_with_steps.kind != "transformers":
        pytest.skip("stopping between two decoder layers is the transformers engine's (a forward pre-hook)")
    engine, recorder = engine_with_steps(prefill_chunk_tokens=512)
    layers = decoder_layers(engine.model)
    assert len(layers) >= 2, "the tiny model has at least two decoder layers"
    request = ChatCompletionRequest(messages=(ChatMessage("user", LONG_QUESTION),), max_tokens=3000,
                                    ignore_eos=True, request_id="gone-mid-chunk")
    last_layer_runs: list[int] = []  # the step index each time the last layer ran
    layers[-1].register_forward_hook(lambda module, args, output: last_layer_runs.append(engine.scheduler.step_index))

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(engine.generate(request))

        def client_leaves_after_the_first_layer(module, args, output):
            # On the scheduler thread, inside the first prefill chunk's model call.
            mine = [s for _, _, seqs in recorder.steps for s in seqs if s.request.request_id == request.request_id]
            if mine and not mine[0].cancelled:
                loop.call_soon_threadsafe(task.cancel)
                wait_for(lambda: mine[0].cancelled, "the handler to cancel the sequence")

        hook = layers[0].register_forward_hook(client_leaves_after_the_first_layer)
        try:
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            hook.remove()

    asyncio.run(scenario())
    wait_for(lambda: engine.num_running == 0 and engine.num_waiting == 0, "the batch to empty")
    steps = recorder.steps_of(request.request_id)
    assert [kind for _, kind in steps] == [PREFILL_CHUNK], "the prompt fits one chunk, and nothing came after it"
    assert steps[0][0] not in last_layer_runs, "the abandoned chunk ran to the last layer"
    # The scheduler is whole: the next request is served, and through every layer.
    completion = asyncio.run(engine.generate(
        ChatCompletionRequest(messages=(ChatMessage("user", "Hello!"),), max_tokens=4, ignore_eos=True)))
    assert completion.completion_tokens == 4 and last_layer_runs
