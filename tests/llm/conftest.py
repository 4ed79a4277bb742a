"""Fixtures for the LLM service tests: a tiny random Qwen2 chat model, built once, no downloads."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from llm.config import ServiceConfig
from llm.tiny_model import build_tiny_model

_app_names = itertools.count()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), seed=0)


def make_config(model: str | Path, **overrides) -> ServiceConfig:
    """A resolved CPU config for tests (never touches the environment)."""
    return ServiceConfig(model=str(model), **overrides).resolve(cuda_available=False)


@pytest.fixture(scope="package")
def engine(tiny_model_dir: Path):
    """A loaded, warmed-up engine shared by the package's tests.

    One torch thread: the tiny model gains nothing from more, and on a busy
    2-core machine a second OpenMP thread makes every step wait on the other.
    """
    import torch

    from llm.engine.transformers_engine import TransformersEngine

    threads = torch.get_num_threads()
    engine = TransformersEngine(make_config(tiny_model_dir, cpu_threads=1, max_new_tokens_cap=64, default_max_tokens=16))
    engine.load()
    engine.warm_up()
    yield engine
    engine.close()
    torch.set_num_threads(threads)


@pytest.fixture
def app_name() -> str:
    """Sanic keeps a registry of app names; each test app gets its own."""
    return f"llm_test_{next(_app_names)}"
