"""``python -m training <command>``: prepare data, fine-tune, evaluate and merge the assistant's model.

    python -m training synthesize --output var/synth
    python -m training prepare  --input data/ sqlite:///rasa.db --output var/dataset
    python -m training sft      --model Qwen/Qwen2.5-1.5B-Instruct --data var/dataset --output var/sft
    python -m training dpo      --model models/ridgeline --data var/dataset --output var/dpo      # preference pairs
    python -m training evaluate --model Qwen/Qwen2.5-1.5B-Instruct --adapter var/sft --data var/dataset
    python -m training evaluate --grounding --model Qwen/Qwen2.5-1.5B-Instruct --adapter var/sft \\
                                --data var/synth/validation.jsonl
    python -m training merge    --model Qwen/Qwen2.5-1.5B-Instruct --adapter var/sft --output models/ridgeline

Every command takes ``--help`` and ``--config FILE.yaml`` (flags override the file).
Exit codes: 0 done, 1 bad input data (``file:line: what is wrong``), 2 bad flags or configuration.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Sequence

COMMANDS = {
    "synthesize": ("training.synthesize", "the catalog and store facts -> grounded train/validation conversations"),
    "prepare": ("training.prepare", "conversations (files, tracker store) -> train/validation JSONL"),
    "sft": ("training.sft", "supervised fine-tuning (LoRA, QLoRA or full), loss on assistant tokens"),
    "dpo": ("training.dpo", "preference tuning on chosen/rejected pairs: DPO, IPO or ORPO (--loss)"),
    "evaluate": ("training.evaluate", "validation loss, perplexity, preference accuracy and sample replies, "
                 "base vs fine-tuned; --grounding: cited, invented and declined replies"),
    "merge": ("training.merge", "merge an adapter into its base model; a folder the LLM service serves"),
}


def usage() -> str:
    lines = ["usage: python -m training <command> [--help] [--config FILE.yaml] [flags]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    configure_logging()
    module = importlib.import_module(COMMANDS[command][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
