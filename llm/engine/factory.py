"""The engine a resolved configuration asks for (``--engine``)."""

from __future__ import annotations

from llm.config import EngineKind, ServiceConfig
from llm.engine.base import Engine


def create_engine(config: ServiceConfig) -> Engine:
    if config.engine is EngineKind.LLAMACPP:
        from llm.engine.llamacpp_engine import LlamaCppEngine

        return LlamaCppEngine(config)
    if config.engine is EngineKind.TRANSFORMERS:
        from llm.engine.transformers_engine import TransformersEngine

        return TransformersEngine(config)
    raise ValueError(f"resolve() the configuration first (engine is {config.engine.value}).")
