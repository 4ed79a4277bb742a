"""Inference engines: the abstract ``Engine`` and its transformers implementation."""

from llm.engine.base import Engine

__all__ = ["Engine"]
