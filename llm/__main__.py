"""Command line of the LLM service.

    python -m llm serve --model Qwen/Qwen2.5-1.5B-Instruct --port 8000
    python -m llm serve --model models/tiny-qwen2          # offline demo model
    python -m llm tiny-model --output models/tiny-qwen2    # build that demo model

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
from typing import Sequence

from llm.config import ServiceConfig, add_arguments
from llm.errors import ConfigError, ModelLoadError

from ridgeline.privacy import install_log_masking

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
        "tiny-model", help="Write a tiny random Qwen2 chat model for tests and offline demos."
    )
    tiny.add_argument("--output", required=True, help="Directory to write the model to.")
    tiny.add_argument("--arch", default="qwen2", choices=["qwen2"], help="Architecture. Default: qwen2.")
    tiny.add_argument("--seed", type=int, default=0, help="Seed of the random weights. Default: 0.")
    return parser


def configure_logging(level: str = "info") -> None:
    """Log to stderr; a no-op when the embedding program (e.g. pytest) already configured logging."""
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    install_log_masking()  # requests carry users' words: no email, phone number or order id is logged


def serve(args: argparse.Namespace) -> int:
    config = ServiceConfig.from_namespace(args)
    configure_logging(config.log_level.value)
    logger.info("Effective configuration:\n  %s", "\n  ".join(config.describe()))

    from llm import server
    from llm.engine.transformers_engine import TransformersEngine

    engine = TransformersEngine(config)
    engine.load()  # before listening: a bad model fails fast, with one sentence
    # What is loaded now (torch, transformers, the model) lives as long as the process: keep it out of
    # the garbage collector. No collector pass walks it while serving, and the interpreter's last
    # collection at exit skips it: without this, exiting after SIGTERM took 10-20 s on 2 cores.
    gc.freeze()
    return server.run(config, engine)


def tiny_model(args: argparse.Namespace) -> int:
    configure_logging()
    from llm.tiny_model import build_tiny_model

    output = build_tiny_model(args.output, seed=args.seed, arch=args.arch)
    logger.info("Serve it with: LLM_MODEL=%s python -m llm serve", output)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return serve(args) if args.command == "serve" else tiny_model(args)
    except (ConfigError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
