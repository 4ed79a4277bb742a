"""``python -m training prepare``: the operator's conversations -> a clean, redacted train/validation split.

    python -m training prepare --input data/chats.jsonl exports/ sqlite:///rasa_project/tracker.db \\
        --output var/dataset

Reads every input (see ``training.formats`` and ``training.tracker``), stops at
the first malformed record with ``file:line: what is wrong`` (``--skip-invalid``
skips and lists them instead), redacts personal data, drops empty turns and
duplicate conversations, puts the assistant's system prompt first (the one the
action server sends), and writes ``train.jsonl``, ``validation.jsonl`` (one
``{"messages": [...], "source": "..."}`` per line) and ``stats.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Sequence

from ridgeline import knowledge
from training.config import ConfigError, PrepareArgs, Redact, parse
from training.formats import DataError, expand_inputs, is_sql_url, read_file
from training.redact import Redactor

logger = logging.getLogger(__name__)

TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"
STATS_FILE = "stats.json"
MAX_LISTED_ERRORS = 50


def system_prompt_and_keep(args: PrepareArgs) -> tuple[str, list[str]]:
    """The system prompt every conversation starts with, and the store's public contacts (never redacted)."""
    try:
        facts = knowledge.load(Path(args.store_facts))
    except knowledge.KnowledgeError as exc:
        raise ConfigError(f"--store-facts: {exc}") from None
    keep = [facts.store.get("support_email", ""), facts.store.get("support_phone", "")]
    if args.system_prompt_file:
        path = Path(args.system_prompt_file)
        if not path.is_file():
            raise ConfigError(f"--system-prompt-file {path}: no such file.")
        return path.read_text(encoding="utf-8").strip(), keep
    return facts.system_prompt(), keep


def clean(messages: list[dict[str, str]]) -> tuple[str | None, list[dict[str, str]], int]:
    """(system message, user/assistant turns ready to train on, empty turns dropped).

    Whitespace is trimmed, empty turns dropped, consecutive turns of one role
    joined (Rasa often sends two bot messages in a row), leading assistant turns
    and trailing user turns dropped: training, like the action server, starts
    at a user message, and ends at a reply.
    """
    system = None
    turns: list[dict[str, str]] = []
    empty = 0
    for message in messages:
        content = message["content"].strip()
        if not content:
            empty += 1
            continue
        if message["role"] == "system":
            system = content if system is None else f"{system}\n{content}"
        elif turns and turns[-1]["role"] == message["role"]:
            turns[-1] = {"role": message["role"], "content": f"{turns[-1]['content']}\n{content}"}
        else:
            turns.append({"role": message["role"], "content": content})
    while turns and turns[0]["role"] != "user":
        turns.pop(0)
    while turns and turns[-1]["role"] != "assistant":
        turns.pop()
    return system, turns, empty


def dedup_key(turns: list[dict[str, str]]) -> str:
    """Case- and whitespace-insensitive fingerprint of the user/assistant turns."""
    canonical = json.dumps([[t["role"], " ".join(t["content"].lower().split())] for t in turns])
    return hashlib.sha256(canonical.encode()).hexdigest()


def split(conversations: list, val_fraction: float, seed: int) -> tuple[list, list]:
    """Seeded shuffle, then the first ``round(n * val_fraction)`` (at least 1) go to validation."""
    if val_fraction == 0 or not conversations:
        return list(conversations), []
    if len(conversations) < 2:
        raise DataError("inputs", f"only {len(conversations)} usable conversation; a validation split needs at "
                                  "least 2 (or pass --val-fraction 0)")
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    n_val = min(max(1, round(len(conversations) * val_fraction)), len(conversations) - 1)
    validation = [conversations[i] for i in sorted(order[:n_val])]
    train = [conversations[i] for i in sorted(order[n_val:])]
    return train, validation


def prepare(args: PrepareArgs) -> dict:
    """Run the whole preparation; return the stats written to ``stats.json``. Raises ``DataError``."""
    system_prompt, keep = system_prompt_and_keep(args)
    redactor = Redactor(args.order_id_pattern, keep=keep)
    errors: list[str] = []
    per_input: dict[str, Counter] = {}
    redactions: Counter = Counter()
    totals: Counter = Counter()
    seen: set[str] = set()
    kept: list[dict] = []

    for name, conversation in _read_with_skips(args, errors, per_input):
        counts = per_input[name]
        counts["read"] += 1
        messages = conversation.messages
        if args.redact is Redact.ALL or (args.redact is Redact.TRACKER and conversation.from_tracker):
            redacted = []
            for message in messages:
                content, found = redactor.redact(message["content"])
                redactions.update(found)
                redacted.append({"role": message["role"], "content": content})
            messages = redacted
        own_system, turns, empty = clean(messages)
        totals["empty_turns_dropped"] += empty
        if not turns:
            counts["no_reply_dropped"] += 1
            continue
        key = dedup_key(turns)
        if key in seen:
            counts["duplicates_dropped"] += 1
            continue
        seen.add(key)
        if own_system and args.keep_system:
            system = own_system
        else:
            totals["system_replaced"] += bool(own_system)
            system = system_prompt
        counts["kept"] += 1
        kept.append({"messages": [{"role": "system", "content": system}, *turns], "source": conversation.source})

    if not kept:
        raise DataError("inputs", "no conversation with at least one user message and one reply was found")
    train, validation = split(kept, args.val_fraction, args.seed)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    _write_jsonl(output / TRAIN_FILE, train)
    _write_jsonl(output / VALIDATION_FILE, validation)
    stats = {
        "inputs": {name: dict(sorted(counts.items())) for name, counts in per_input.items()},
        "conversations": {
            "read": sum(c["read"] for c in per_input.values()),
            "invalid_skipped": len(errors),
            "no_reply_dropped": sum(c["no_reply_dropped"] for c in per_input.values()),
            "duplicates_dropped": sum(c["duplicates_dropped"] for c in per_input.values()),
            "kept": len(kept),
            "train": len(train),
            "validation": len(validation),
        },
        "empty_turns_dropped": totals["empty_turns_dropped"],
        "system_messages_replaced": totals["system_replaced"],
        "redactions": dict(sorted(redactions.items())),
        "splits": {"train": _split_stats(train), "validation": _split_stats(validation)},
        "val_fraction": args.val_fraction,
        "seed": args.seed,
        "system_prompt_sha256": hashlib.sha256(system_prompt.encode()).hexdigest(),
        "invalid": errors[:MAX_LISTED_ERRORS],
    }
    (output / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats


def _read_with_skips(args: PrepareArgs, errors: list[str], per_input: dict[str, Counter]):
    """(input name, conversation) for every input; with --skip-invalid, bad records go to ``errors``."""
    from tqdm.auto import tqdm

    from training.tracker import display_url, read_tracker

    on_error = (lambda exc: errors.append(str(exc))) if args.skip_invalid else None
    for spec in expand_inputs(args.input):
        if is_sql_url(spec):
            name, records = display_url(spec), read_tracker(spec, args.exclude_responses)
        else:
            name, records = spec, read_file(spec, on_error)
        per_input.setdefault(name, Counter())
        with tqdm(desc=f"reading {name}", unit=" conversations", disable=None, leave=False) as progress:
            for conversation in records:
                progress.update()
                yield name, conversation


def _split_stats(conversations: list[dict]) -> dict:
    roles: Counter = Counter()
    chars: Counter = Counter()
    for conversation in conversations:
        for message in conversation["messages"][1:]:
            roles[message["role"]] += 1
            chars[message["role"]] += len(message["content"])
    n = len(conversations)
    return {
        "conversations": n,
        "user_turns": roles["user"],
        "assistant_turns": roles["assistant"],
        "avg_assistant_turns": round(roles["assistant"] / n, 2) if n else 0,
        "avg_user_chars": round(chars["user"] / roles["user"], 1) if roles["user"] else 0,
        "avg_assistant_chars": round(chars["assistant"] / roles["assistant"], 1) if roles["assistant"] else 0,
    }


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def redaction_warning(redact: Redact) -> str | None:
    """What an operator should know before personal data reaches the training files, or None."""
    if redact is Redact.NONE:
        return ("--redact none keeps emails, phone, card and order numbers in the training files, and a "
                "fine-tuned model can repeat them to other visitors; drop the flag to redact every input.")
    if redact is Redact.TRACKER:
        return ("--redact tracker redacts tracker-store conversations only; personal data in the other "
                "inputs reaches the training files. Drop the flag to redact every input.")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse(PrepareArgs, argv, "python -m training prepare", __doc__.split("\n\n")[0])
        warning = redaction_warning(args.redact)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        stats = prepare(args)
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except SystemExit as exc:  # --help, or argparse rejected a flag (it printed why)
        return exc.code if isinstance(exc.code, int) else 2
    counts = stats["conversations"]
    print(
        f"Wrote {counts['train']} training and {counts['validation']} validation conversations to {args.output} "
        f"({counts['read']} read, {counts['duplicates_dropped']} duplicates and {counts['no_reply_dropped']} "
        f"without a reply dropped, {counts['invalid_skipped']} invalid skipped; redacted: "
        f"{', '.join(f'{k} {v}' for k, v in stats['redactions'].items()) or 'nothing'})."
    )
    return 0
