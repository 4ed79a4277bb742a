"""Developer tools: benchmarks, the load generator, and the tiny test model.

Nothing here runs in a service: no image copies ``tools/`` (``.dockerignore`` leaves it out) and
no product package imports it (``tests/architecture`` keeps it so). Tools may import the
products (``llm``, ``stack``, ``training``, ``ridgeline``); tests may import tools.

    python -m tools.bench.llm           the LLM service against plain generate   (make bench-llm)
    python -m tools.bench.llm.abandon   how fast the service lets go of clients that gave up
    python -m tools.bench.turns         turn latency through the local stack
    python -m tools.bench.training      LoRA vs QLoRA vs full fine-tuning: tokens/s, peak memory
    python -m tools.load                concurrent conversations through Rasa  (make loadtest)
    python -m tools.testing.tiny_model  a tiny random Qwen2 model                (make tiny-model)
"""
