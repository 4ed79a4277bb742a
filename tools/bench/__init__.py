"""Benchmarks: ``tools.bench.llm`` (the LLM service), ``tools.bench.turns`` and
``tools.bench.open_questions`` (turns through the whole stack), ``tools.bench.training``."""
