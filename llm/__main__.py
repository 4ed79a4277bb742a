"""Command line of the LLM service.

    python -m llm serve --model Qwen/Qwen2.5-1.5B-Instruct --port 8000
    python -m llm serve --model models/tiny-qwen2          # offline demo model
    python -m tools.testing.tiny_model --output models/tiny-qwen2   # build that demo model (make tiny-model)
    python -m llm convert --model models/tiny-qwen2 --quant q4_k_m,q8_0   # GGUF for --engine llamacpp

Every ``serve`` flag can also be set as an ``LLM_*`` environment variable
(``--max-new-tokens-cap`` -> ``LLM_MAX_NEW_TOKENS_CAP``); flags win. The API
key is environment-only (``LLM_API_KEY``), so it never shows in ``ps``.
Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT drain the engine first),
2 for a configuration or model-loading error (one sentence on stderr). A failed
warm-up generation does not stop the process: /ready stays 503 with the reason.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import warnings
from typing import Sequence

from llm.config import ServiceConfig, add_arguments, log_settings
from llm.errors import ConfigError, ModelLoadError

from ridgeline import logs

logger = logging.getLogger("llm")

EXIT_USAGE = 2


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llm", description="The assistant's LLM inference service.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="Serve a chat model over an OpenAI-compatible HTTP API.",
        description="Serve a chat model over an OpenAI-compatible HTTP API. Flags override LLM_* variables. "
        "LLM_API_KEY (environment only, never a flag) makes /v1/* require 'Authorization: Bearer <key>'.",
    )
    add_arguments(serve)
    tiny = commands.add_parser(
        "tiny-model", help="Deprecated: use `python -m tools.testing.tiny_model` (make tiny-model)."
    )
    tiny.add_argument("--output", required=True, help="Directory to write the model to.")
    tiny.add_argument("--arch", default="qwen2", choices=["qwen2"], help="Architecture. Default: qwen2.")
    tiny.add_argument("--seed", type=int, default=0, help="Seed of the random weights. Default: 0.")
    convert = commands.add_parser(
        "convert",
        help="Convert a checkpoint (+ LoRA adapter, merged first) to GGUF for --engine llamacpp; cached by checksum.",
        description="HF checkpoint -> 16-bit GGUF (llama.cpp's convert_hf_to_gguf.py) -> quantized GGUF "
        "(llama_model_quantize). Results are kept under --cache by the checksum of the weights and settings "
        "and reused. The engine does this itself at start-up; this command does it ahead of time.",
    )
    convert.add_argument("--model", help="Hugging Face model folder (or hub id). Default: LLM_MODEL.")
    convert.add_argument("--quant", default="q4_k_m",
                         help="Comma-separated GGUF types: q4_k_m, q8_0, bf16, f16. Default: q4_k_m.")
    convert.add_argument("--adapter", default="", help="LoRA adapter folder to merge into the model first.")
    convert.add_argument("--pre-tokenizer", default="auto",
                         help="llama.cpp pre-tokenizer name for a tokenizer it does not recognise by hash "
                         "(auto: qwen2 for Qwen2 tokenizers; -: none).")
    convert.add_argument("--cache", default=None, help="Cache folder. Default: LLM_GGUF_CACHE or models/gguf.")
    convert.add_argument("--threads", type=int, default=0, help="Quantization threads. Default: all cores.")
    convert.add_argument("--fetch-tools", action="store_true",
                         help="Only extract llama.cpp's converter from the llama-cpp-python sdist (make setup).")
    return parser


def configure_logging(level: str = "info") -> None:
    """Log to stderr, as JSON lines with LOG_FORMAT=json; a no-op when the embedding program (e.g. pytest)
    already configured logging."""
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # requests carry users' words: no email, phone number or order id is logged
    logs.install("llm", log_settings())


def serve(args: argparse.Namespace) -> int:
    config = ServiceConfig.from_namespace(args)
    configure_logging(config.log_level.value)
    logger.info("Effective configuration:\n  %s", "\n  ".join(config.describe()))

    from llm import server
    from llm.engine.factory import create_engine

    engine = create_engine(config)
    engine.load()  # before listening: a bad model fails fast, with one sentence
    # What is loaded now (torch, transformers, the model) lives as long as the process: keep it out of
    # the garbage collector. No collector pass walks it while serving, and the interpreter's last
    # collection at exit skips it: without this, exiting after SIGTERM took 10-20 s on 2 cores.
    gc.freeze()
    return server.run(config, engine)


TINY_MODEL_MOVED = ("`python -m llm tiny-model` moved to `python -m tools.testing.tiny_model --output DIR` "
                    "(or `make tiny-model`), a development tool of the checkout that no image has")


def tiny_model(args: argparse.Namespace) -> int:
    """Deprecated for one release: forwards to ``tools.testing.tiny_model`` where ``tools`` is there."""
    configure_logging()
    try:
        # the one import of `tools` by a product module, allowed by tests/architecture until this command goes
        from tools.testing.tiny_model import build_tiny_model
    except ImportError:  # the LLM image, or an install without the checkout's tools
        print(f"error: {TINY_MODEL_MOVED}; run it from a checkout.", file=sys.stderr)
        return EXIT_USAGE
    warnings.warn(f"{TINY_MODEL_MOVED}; the old command goes in the next release.", DeprecationWarning, stacklevel=1)
    output = build_tiny_model(args.output, seed=args.seed, arch=args.arch)
    logger.info("Serve it with: LLM_MODEL=%s python -m llm serve", output)
    return 0


def convert(args: argparse.Namespace) -> int:
    import os

    configure_logging()
    from llm.gguf import tools
    from llm.gguf.cache import ensure_gguf

    if args.fetch_tools:
        print(tools.fetch_converter())
        return 0
    model = args.model or os.environ.get("LLM_MODEL", "")
    if not model:
        raise ConfigError("convert needs --model (or LLM_MODEL): a Hugging Face model folder.")
    for quant in [q.strip().lower() for q in args.quant.split(",") if q.strip()]:
        result = ensure_gguf(model, quant, args.adapter, args.pre_tokenizer, args.cache, args.threads)
        print(result.path)
    return 0


COMMANDS = {"serve": serve, "tiny-model": tiny_model, "convert": convert}


def main(argv: Sequence[str] | None = None) -> int:
    from llm.gguf.cache import ConversionError
    from llm.gguf.tools import ConverterMissing

    args = make_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, ModelLoadError, ConversionError, ConverterMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
