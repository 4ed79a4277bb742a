"""``python -m training prepare``: the operator's conversations -> a clean, redacted train/validation split.

    python -m training prepare --input data/chats.jsonl exports/ sqlite:///rasa_project/tracker.db \\
        --output var/dataset

Reads every input (see ``training.formats`` and ``training.tracker``: chat JSONL/JSON/CSV, SQuAD,
preference pairs, tracker stores), stops at the first malformed record with ``file:line: what is
wrong`` (``--skip-invalid`` skips and lists them instead), redacts personal data, drops empty turns
and duplicate conversations, puts the assistant's system prompt first (the one the action server
sends), and writes ``train.jsonl``, ``validation.jsonl`` (one ``{"messages": [...], "source": "..."}``
per line) and ``stats.json``.

Preference pairs (chosen and rejected replies to one prompt; see ``training.preference_data``) are
redacted, cleaned and deduplicated the same way, split with the same seed and ``--val-fraction``,
and written to ``preferences_train.jsonl`` and ``preferences_validation.jsonl``, one TRL
conversational record per line::

    {"prompt": [{"role": "system", ...}, {"role": "user", ...}, ...], "chosen": [{"role": "assistant", ...}],
     "rejected": [{"role": "assistant", ...}], "source": "file:line"}

Without pairs no preference file is written (an old one in the output folder is removed). A single
pair cannot be split: it goes to training, and the validation file is empty. Inputs of pairs only
give empty ``train.jsonl`` and ``validation.jsonl``.
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
from training.formats import (
    CONVERSATIONS, PREFERENCES, Conversation, DataError, expand_inputs, file_kind, is_sql_url, read_records,
)
from training.preference_data import PreferencePair
from training.redact import Redactor

logger = logging.getLogger(__name__)

TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"
PREFERENCES_TRAIN_FILE = "preferences_train.jsonl"
PREFERENCES_VALIDATION_FILE = "preferences_validation.jsonl"
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
    system, turns, empty = _joined_turns(messages)
    while turns and turns[-1]["role"] != "assistant":
        turns.pop()
    return system, turns, empty


def clean_prompt(messages: list[dict[str, str]]) -> tuple[str | None, list[dict[str, str]], int]:
    """``clean`` for a preference pair's prompt: the same, but the prompt ends at the user's message."""
    return _joined_turns(messages)


def _joined_turns(messages: list[dict[str, str]]) -> tuple[str | None, list[dict[str, str]], int]:
    """``clean`` without dropping trailing user turns."""
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
    return system, turns, empty


def dedup_key(turns: list[dict[str, str]]) -> str:
    """Case- and whitespace-insensitive fingerprint of the user/assistant turns."""
    canonical = json.dumps([[t["role"], " ".join(t["content"].lower().split())] for t in turns])
    return hashlib.sha256(canonical.encode()).hexdigest()


def pair_dedup_key(prompt_turns: list[dict[str, str]], chosen: str, rejected: str) -> str:
    """``dedup_key`` of a pair: its prompt's user/assistant turns and its two replies."""
    return dedup_key([*prompt_turns, {"role": "chosen", "content": chosen}, {"role": "rejected", "content": rejected}])


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


class _Collector:
    """What ``prepare`` keeps of the records read, and its counts."""

    def __init__(self, args: PrepareArgs, system_prompt: str, redactor: Redactor) -> None:
        self.args, self.system_prompt, self.redactor = args, system_prompt, redactor
        self.errors: list[str] = []
        self.invalid: Counter = Counter()  # per kind: conversations, preferences
        self.per_input: dict[str, Counter] = {}
        self.redactions: Counter = Counter()
        self.totals: Counter = Counter()
        self.seen: set[str] = set()
        self.conversations: list[dict] = []
        self.pairs: list[dict] = []

    def add(self, name: str, record: Conversation | PreferencePair) -> None:
        if isinstance(record, PreferencePair):
            self.add_pair(self.per_input[name], record)
        else:
            self.add_conversation(self.per_input[name], record)

    def add_conversation(self, counts: Counter, conversation: Conversation) -> None:
        counts["read"] += 1
        messages = self.redacted(conversation.messages, conversation.from_tracker)
        own_system, turns, empty = clean(messages)
        self.totals["empty_turns_dropped"] += empty
        if not turns:
            counts["no_reply_dropped"] += 1
            return
        if not self.first_time(dedup_key(turns)):
            counts["duplicates_dropped"] += 1
            return
        counts["kept"] += 1
        self.conversations.append({"messages": [self.system(own_system), *turns], "source": conversation.source})

    def add_pair(self, counts: Counter, pair: PreferencePair) -> None:
        counts["pairs_read"] += 1
        *prompt, chosen, rejected = self.redacted(
            [*pair.prompt, {"role": "assistant", "content": pair.chosen},
             {"role": "assistant", "content": pair.rejected}], from_tracker=False)
        own_system, turns, empty = clean_prompt(prompt)
        self.totals["empty_turns_dropped"] += empty
        chosen, rejected = chosen["content"].strip(), rejected["content"].strip()
        if " ".join(chosen.split()) == " ".join(rejected.split()):
            counts["pairs_same_after_redaction_dropped"] += 1  # they differed in personal data only
            return
        if not self.first_time(pair_dedup_key(turns, chosen, rejected)):
            counts["pairs_duplicates_dropped"] += 1
            return
        counts["pairs_kept"] += 1
        self.pairs.append({"prompt": [self.system(own_system), *turns],
                           "chosen": [{"role": "assistant", "content": chosen}],
                           "rejected": [{"role": "assistant", "content": rejected}], "source": pair.source})

    def redacted(self, messages: list[dict[str, str]], from_tracker: bool) -> list[dict[str, str]]:
        redact = self.args.redact
        if not (redact is Redact.ALL or (redact is Redact.TRACKER and from_tracker)):
            return messages
        redacted = []
        for message in messages:
            content, found = self.redactor.redact(message["content"])
            self.redactions.update(found)
            redacted.append({"role": message["role"], "content": content})
        return redacted

    def first_time(self, key: str) -> bool:
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def system(self, own_system: str | None) -> dict[str, str]:
        if own_system and self.args.keep_system:
            return {"role": "system", "content": own_system}
        self.totals["system_replaced"] += bool(own_system)
        return {"role": "system", "content": self.system_prompt}

    def total(self, key: str) -> int:
        return sum(counts[key] for counts in self.per_input.values())


def prepare(args: PrepareArgs) -> dict:
    """Run the whole preparation; return the stats written to ``stats.json``. Raises ``DataError``."""
    system_prompt, keep = system_prompt_and_keep(args)
    collected = _Collector(args, system_prompt, Redactor(args.order_id_pattern, keep=keep))
    for name, record in _read_with_skips(args, collected):
        collected.add(name, record)

    if not collected.conversations and not collected.pairs:
        raise DataError("inputs", "no conversation with at least one user message and one reply, and no "
                                  "preference pair, was found")
    train, validation = split(collected.conversations, args.val_fraction, args.seed)
    pairs_train, pairs_validation = split_pairs(collected.pairs, args.val_fraction, args.seed)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    _write_jsonl(output / TRAIN_FILE, train)
    _write_jsonl(output / VALIDATION_FILE, validation)
    for name, rows in ((PREFERENCES_TRAIN_FILE, pairs_train), (PREFERENCES_VALIDATION_FILE, pairs_validation)):
        if collected.pairs:
            _write_jsonl(output / name, rows)
        else:
            (output / name).unlink(missing_ok=True)  # an earlier run's pairs are not this run's
    stats = {
        "inputs": {name: dict(sorted(counts.items())) for name, counts in collected.per_input.items()},
        "conversations": {
            "read": collected.total("read"),
            "invalid_skipped": collected.invalid[CONVERSATIONS],
            "no_reply_dropped": collected.total("no_reply_dropped"),
            "duplicates_dropped": collected.total("duplicates_dropped"),
            "kept": len(collected.conversations),
            "train": len(train),
            "validation": len(validation),
        },
        "preferences": {
            "read": collected.total("pairs_read"),
            "invalid_skipped": collected.invalid[PREFERENCES],
            "same_after_redaction_dropped": collected.total("pairs_same_after_redaction_dropped"),
            "duplicates_dropped": collected.total("pairs_duplicates_dropped"),
            "kept": len(collected.pairs),
            "train": len(pairs_train),
            "validation": len(pairs_validation),
        },
        "empty_turns_dropped": collected.totals["empty_turns_dropped"],
        "system_messages_replaced": collected.totals["system_replaced"],
        "redactions": dict(sorted(collected.redactions.items())),
        "splits": {"train": _split_stats(train), "validation": _split_stats(validation)},
        "val_fraction": args.val_fraction,
        "seed": args.seed,
        "system_prompt_sha256": hashlib.sha256(system_prompt.encode()).hexdigest(),
        "invalid": collected.errors[:MAX_LISTED_ERRORS],
    }
    (output / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats


def split_pairs(pairs: list, val_fraction: float, seed: int) -> tuple[list, list]:
    """``split`` for preference pairs, except that a single pair goes to training (the DPO run then has no
    validation set) rather than failing a run whose conversations split fine."""
    if len(pairs) == 1 and val_fraction > 0:
        logger.warning("only 1 preference pair: it goes to %s and %s is empty", PREFERENCES_TRAIN_FILE,
                       PREFERENCES_VALIDATION_FILE)
        return list(pairs), []
    return split(pairs, val_fraction, seed)


def _read_with_skips(args: PrepareArgs, collected: _Collector):
    """(input name, conversation or pair) for every input; with --skip-invalid, bad records go to
    ``collected.errors``."""
    from tqdm.auto import tqdm

    from training.tracker import display_url, read_tracker

    for spec in expand_inputs(args.input):
        if is_sql_url(spec):
            name, records = display_url(spec), read_tracker(spec, args.exclude_responses)
        else:
            name, records = spec, read_records(spec, _on_error(args, collected, file_kind(spec)))
        collected.per_input.setdefault(name, Counter())
        with tqdm(desc=f"reading {name}", unit=" records", disable=None, leave=False) as progress:
            for record in records:
                progress.update()
                yield name, record


def _on_error(args: PrepareArgs, collected: _Collector, kind: str):
    if not args.skip_invalid:
        return None

    def skip(exc: DataError) -> None:
        collected.errors.append(str(exc))
        collected.invalid[kind] += 1

    return skip


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
    print(summary_line(stats, args.output))
    return 0


def summary_line(stats: dict, output: str) -> str:
    """What ``prepare`` wrote, in one line; the pairs are mentioned when there were any."""
    counts, pairs = stats["conversations"], stats["preferences"]
    wrote = f"{counts['train']} training and {counts['validation']} validation conversations"
    read = (f"{counts['read']} read, {counts['duplicates_dropped']} duplicates and {counts['no_reply_dropped']} "
            f"without a reply dropped, {counts['invalid_skipped']} invalid skipped")
    if pairs["read"] or pairs["invalid_skipped"]:
        wrote += f", and {pairs['train']} training and {pairs['validation']} validation preference pairs"
        read += (f"; preference pairs: {pairs['read']} read, {pairs['duplicates_dropped']} duplicates and "
                 f"{pairs['same_after_redaction_dropped']} same after redaction dropped, "
                 f"{pairs['invalid_skipped']} invalid skipped")
    redacted = ", ".join(f"{k} {v}" for k, v in stats["redactions"].items()) or "nothing"
    return f"Wrote {wrote} to {output} ({read}; redacted: {redacted})."
