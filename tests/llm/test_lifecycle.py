"""The engine's lifecycle (load -> warm-up -> ready -> drain -> close): a warm-up that meets a shutdown
ends quietly, a warm-up that fails for a real reason leaves /ready 503 with the reason, and neither
stops the server. The races are forced with hooks at exact points, not with sleeps."""

from __future__ import annotations

import logging
import threading

import httpx
import pytest

from llm.engine.lifecycle import EngineState, Lifecycle
from llm.engine.prefill import ChunkedPrefill
from llm.engine.transformers_engine import WARM_UP_REQUEST, TransformersEngine
from llm.errors import ModelNotReady
from tests.llm.conftest import make_config
from tests.support.servers import wait_until


def loaded_engine(model_dir, engine_class=TransformersEngine) -> TransformersEngine:
    engine = engine_class(make_config(model_dir, cpu_threads=1))
    engine.load()
    return engine


def close_from_another_thread(engine) -> None:
    """Shut the engine down the way the server does (before_server_stop runs ``close`` on another thread)."""
    closer = threading.Thread(target=engine.close, name="test-closer")
    closer.start()
    closer.join(30)
    assert not closer.is_alive()


class ClosedBeforeWarmUpSubmit(TransformersEngine):
    """The shutdown runs to completion between building the warm-up request and submitting it."""

    def _sequence(self, request, sink):
        sequence = super()._sequence(request, sink)
        if request is WARM_UP_REQUEST:
            close_from_another_thread(self)
        return sequence


class ClosedDuringWarmUpGeneration(TransformersEngine):
    """The shutdown begins while the scheduler runs the warm-up's first step."""

    def _load(self) -> None:
        self._closer: threading.Thread | None = None
        super()._load()
        self.scheduler.add_step_listener(self._close_once)

    def _close_once(self, step: int, kind: str, sequences: list) -> None:
        if self._closer is None:
            self._closer = threading.Thread(target=self.close, name="test-closer")
            self._closer.start()
            wait_until(lambda: self.state is not EngineState.WARMING_UP, timeout_s=30, interval_s=0.001,
                       what="the shutdown to begin")


@pytest.mark.parametrize("engine_class", [ClosedBeforeWarmUpSubmit, ClosedDuringWarmUpGeneration])
def test_a_warm_up_that_meets_a_shutdown_ends_quietly(tiny_model_dir, engine_class, caplog):
    engine = loaded_engine(tiny_model_dir, engine_class)
    became_ready = engine.warm_up()  # raised ShuttingDown before the lifecycle was explicit
    wait_until(lambda: engine.state is EngineState.CLOSED, timeout_s=30, what="the engine to close")
    assert became_ready is False
    assert not engine.ready and engine.failure == ""
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_server_keeps_serving_when_its_warm_up_meets_a_shutdown(tiny_model_dir, live_server, caplog):
    engine = loaded_engine(tiny_model_dir, ClosedBeforeWarmUpSubmit)
    server = live_server(engine)  # warms up in the background once it listens
    wait_until(lambda: server.app.ctx.warm_up_task.done(), timeout_s=30, what="the warm-up to end")
    # Before the fix: "ERROR llm.server: Warm-up generation failed; stopping the server", then app.stop().
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    health = httpx.get(f"{server.url}/health", timeout=10)
    ready = httpx.get(f"{server.url}/ready", timeout=10)
    assert health.status_code == 200
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "shutting_down"
    assert ready.json()["status"] == "closed"


def test_a_warm_up_that_fails_leaves_ready_503_with_the_reason_and_the_server_up(
    tiny_model_dir, live_server, monkeypatch, caplog
):
    def out_of_memory(self):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(ChunkedPrefill, "step", out_of_memory)
    engine = loaded_engine(tiny_model_dir)
    server = live_server(engine)
    wait_until(lambda: server.app.ctx.warm_up_task.done(), timeout_s=30, what="the warm-up to end")
    ready = httpx.get(f"{server.url}/ready", timeout=10)
    health = httpx.get(f"{server.url}/health", timeout=10)
    completion = httpx.post(f"{server.url}/v1/chat/completions",
                            json={"messages": [{"role": "user", "content": "hi"}]}, timeout=10)
    engine.close()
    assert health.status_code == 200  # the process serves on, for probes and for the operator
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "failed" and body["error"]["code"] == "start_up_failed"
    assert "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB" in body["error"]["message"]
    assert completion.status_code == 503 and completion.json()["error"]["code"] == "start_up_failed"
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "llm.server"]
    assert len(failures) == 1 and "CUDA out of memory" in failures[0].getMessage()
    assert "stays up and /ready answers 503" in failures[0].getMessage()


def test_a_closed_engine_is_never_warmed_up_again(tiny_model_dir, live_server):
    engine = loaded_engine(tiny_model_dir)
    assert engine.warm_up() is True and engine.ready
    engine.close()
    assert engine.state is EngineState.CLOSED and not engine.loaded
    assert engine.warm_up() is False  # a no-op, not ShuttingDown
    server = live_server(engine)  # a server (re)started around a closed engine starts no warm-up
    assert getattr(server.app.ctx, "warm_up_task", None) is None
    assert httpx.get(f"{server.url}/ready", timeout=10).json()["error"]["code"] == "shutting_down"


def test_lifecycle_transitions_have_one_owner_and_refuse_stale_moves():
    lifecycle = Lifecycle()
    with pytest.raises(ModelNotReady, match="not loaded"):
        lifecycle.start_warm_up()
    lifecycle.start_loading()
    with pytest.raises(RuntimeError, match="only be loaded once"):
        lifecycle.start_loading()
    assert lifecycle.finish_loading() and lifecycle.state is EngineState.LOADED
    assert lifecycle.start_warm_up() and lifecycle.state is EngineState.WARMING_UP
    assert lifecycle.start_draining()
    assert not lifecycle.start_draining()  # only the first close drains
    assert not lifecycle.finish_warm_up()  # a warm-up finishing late does not make a draining engine ready
    assert not lifecycle.fail("late error")  # ...nor a failed one
    assert lifecycle.state is EngineState.DRAINING and lifecycle.failure == ""
    lifecycle.finish_closing()
    assert lifecycle.state is EngineState.CLOSED and not lifecycle.start_warm_up()

    failed = Lifecycle()
    failed.start_loading()
    failed.finish_loading()
    failed.start_warm_up()
    assert failed.fail("RuntimeError: boom") and failed.state is EngineState.FAILED
    with pytest.raises(ModelNotReady, match="boom"):
        failed.start_warm_up()
    assert failed.start_draining()
