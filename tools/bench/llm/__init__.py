"""``python -m tools.bench.llm``: throughput, latency and memory of the service against plain ``generate``
and the memory-bandwidth limit; see ``tools/bench/llm/__main__.py`` for the command line."""
