"""Fixtures for the LLM service tests: a tiny random Qwen2 chat model (built once, no downloads),
engines over it, and a live in-process HTTP server for what needs real sockets (streaming,
disconnects, concurrency).

The API contract is the same for every engine, so the contract tests run once per engine:
they take ``engine`` (shared, one per engine) or ``new_engine`` (a factory for engines with
their own settings), both parametrized over ``ENGINES``. Tests of one engine's internals
take ``transformers_engine`` or build their own.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path

import pytest

from llm.config import ServiceConfig
from llm.engine.base import Engine
from tools.procs import free_port
from tools.testing.tiny_model import build_tiny_model

_app_names = itertools.count()
ENGINES = ("transformers", "llamacpp")
TINY_GGUF_QUANT = "q8_0"  # the tiny model's rows (64 wide) are too narrow for q4_k_m's 256-blocks


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu``-marked tests, visibly and with the reason, on machines without CUDA."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(
        reason="needs a CUDA device (torch.cuda.is_available() is False); run `pytest -m gpu` on a GPU host"
    )
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), seed=0)


class ModelFreeEngine(Engine):
    """An engine with no model, for the server's own behaviour: ready at once, or (``ready=False``)
    still loading for ever. Subclasses say what ``submit`` does."""

    def __init__(self, name: str, ready: bool = True) -> None:
        super().__init__(name)
        if ready:
            self.load()
            self.warm_up()

    def _load(self) -> None:
        pass

    def _warm_up(self) -> None:
        pass


def make_config(model: str | Path, **overrides) -> ServiceConfig:
    """A resolved CPU config for tests (never touches the environment); the transformers engine in
    float32 unless told otherwise."""
    overrides.setdefault("engine", "transformers")
    overrides.setdefault("warm_prompt", "none")
    if overrides["engine"] == "transformers":
        overrides.setdefault("dtype", "float32")
    return ServiceConfig(model=str(model), **overrides).resolve(cuda_available=False)


def make_engine(model_dir: Path, **overrides):
    """A loaded, warmed-up engine on one thread (call ``close()`` when done).

    One thread: the tiny model gains nothing from more, and on a busy 2-core
    machine a second OpenMP thread makes every step wait on the other.
    """
    from llm.engine.factory import create_engine

    settings = {"cpu_threads": 1, "max_new_tokens_cap": 64, "default_max_tokens": 16, **overrides}
    if settings.get("engine") == "llamacpp":
        settings.setdefault("gguf_quant", TINY_GGUF_QUANT)
    engine = create_engine(make_config(model_dir, **settings))
    engine.load()
    engine.warm_up()
    return engine


def llamacpp_missing() -> str:
    """Why the llama.cpp engine cannot be tested here ('' when it can)."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (make setup builds it: the cpu extra)"
    from llm.gguf.tools import ConverterMissing, converter_dir

    try:
        converter_dir()
    except ConverterMissing as exc:
        return str(exc)
    return ""


@pytest.fixture(scope="session", autouse=True)
def tiny_gguf_cache(tmp_path_factory: pytest.TempPathFactory):
    """The GGUF cache of this test session (the tiny model is converted into it once); also the one of
    every `llm serve` process a test starts (LLM_GGUF_CACHE), so no test writes into models/."""
    import os

    folder = tmp_path_factory.mktemp("gguf")
    previous = os.environ.get("LLM_GGUF_CACHE")
    os.environ["LLM_GGUF_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("LLM_GGUF_CACHE", None)
    else:
        os.environ["LLM_GGUF_CACHE"] = previous


@pytest.fixture(scope="package", params=ENGINES)
def new_engine(request: pytest.FixtureRequest, tiny_model_dir: Path, tiny_gguf_cache: Path):
    """``new_engine(**settings)`` -> a loaded, warmed-up engine of the parametrized kind on the tiny model
    (the caller closes it)."""
    kind = request.param
    if kind == "llamacpp" and llamacpp_missing():
        pytest.skip(llamacpp_missing())

    def build(**overrides):
        if kind == "llamacpp":
            overrides.setdefault("gguf_cache", str(tiny_gguf_cache))
        return make_engine(tiny_model_dir, engine=kind, **overrides)

    build.kind = kind
    return build


@pytest.fixture(scope="package")
def engine(new_engine):
    """A loaded, warmed-up engine shared by the package's tests, once per engine."""
    import torch

    threads = torch.get_num_threads()
    engine = new_engine()
    yield engine
    engine.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="package")
def transformers_engine(tiny_model_dir: Path):
    """The transformers engine, for tests of its internals (its torch model, its layers)."""
    import torch

    threads = torch.get_num_threads()
    engine = make_engine(tiny_model_dir)
    yield engine
    engine.close()
    torch.set_num_threads(threads)


@pytest.fixture
def app_name() -> str:
    """Sanic keeps a registry of app names; each test app gets its own."""
    return f"llm_test_{next(_app_names)}"


class LiveServer:
    """A Sanic app serving on a real loopback port from a background thread's event loop."""

    def __init__(self, app) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="live-server", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _serve(self) -> None:
        from sanic import Sanic

        asyncio.set_event_loop(self.loop)
        Sanic.test_mode = True  # as sanic-testing does: no second code touch-up in one process
        run = self.loop.run_until_complete
        try:
            run(self.app._startup())
            run(self.app._server_event("init", "before", loop=self.loop))
            self.server = run(
                self.app.create_server(host="127.0.0.1", port=self.port, return_asyncio_server=True)
            )
            run(self.app._server_event("init", "after", loop=self.loop))
        except BaseException as exc:  # surfaced by __enter__
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    def __enter__(self) -> LiveServer:
        self._thread.start()
        self._started.wait(30)
        if self._error:
            raise self._error
        return self

    def __exit__(self, *exc_info) -> None:
        async def shutdown() -> None:
            await self.app._server_event("shutdown", "before", loop=self.loop)
            self.server.close()
            await self.server.wait_closed()
            await self.app._server_event("shutdown", "after", loop=self.loop)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(15)
        self.loop.close()


@pytest.fixture
def live_server(app_name):
    """``live_server(engine, **config_overrides)`` -> a started ``LiveServer`` (stopped after the test)."""
    from llm.server import create_app

    servers: list[LiveServer] = []

    def start(engine, **config_overrides) -> LiveServer:
        config = engine.config
        if config_overrides:
            import dataclasses

            config = dataclasses.replace(config, **config_overrides)
        server = LiveServer(create_app(config, engine, name=f"{app_name}_{len(servers)}"))
        servers.append(server.__enter__())
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus exposition text as ``{(sample name, sorted labels): value}``."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples
