"""The tiny random model the tools' tests measure (``tools.testing.tiny_model``), built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.testing.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), seed=0)
