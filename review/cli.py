"""``python -m review <command>``: conversation review for designers, retention and erasure.

    python -m review list --since 7d --reason nlu_fallback
    python -m review show 3f2a9c61-...
    python -m review report --since 7d --output var/review/report.html
    python -m review export-nlu --reason nlu_fallback --reason low_confidence --output var/review/nlu.yml
    python -m review export-story 3f2a9c61-... --output var/review/story.yml
    python -m review feedback --since 7d
    python -m review feedback --since 30d --verdict all --output var/review/feedback.yml
    python -m review export-preferences --input var/review/feedback.yml --output var/review/pairs.jsonl
    python -m review prune --older-than 90 --dry-run
    python -m review forget --sender 3f2a9c61-...
    python -m review tickets
    python -m review close T-123456

The tracker store is ``--db`` (default: PostgreSQL from DB_HOST/DB_* when set, else make run's
var/run/tracker.db). Personal data is masked unless ``--unmasked --token $RASA_AUTH_TOKEN``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from review import export, files, preferences, report, retention, tickets
from review.conversation import REVIEW_EVENT_TYPES, Conversation, Reason, findings
from review.files import Manifest
from review.preferences import FeedbackFileError
from review.privacy import Masker, masker
from review.render import list_line, list_record, show_record, show_text, verdict_record, verdict_text, when
from review.settings import Settings
from review.store import TrackerDB
from review.verdicts import DEFAULT_CONTEXT_MESSAGES, VERDICT_EVENT_TYPES, JudgedReply, judged_replies
from ridgeline.catalog import CatalogError
from ridgeline.feedback import NOT_HELPFUL, VERDICTS
from ridgeline.paths import CATALOG_FILE
from ridgeline.privacy import install_log_masking
from ridgeline.settings import ConfigError, parse_enum

logger = logging.getLogger(__name__)

REASONS = [r.value for r in Reason]
NLU_REASONS = [Reason.NLU_FALLBACK.value, Reason.LOW_CONFIDENCE.value]
UNITS_S = {"m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_when(text: str, setting: str, now: float, end_of_day: bool = False) -> float:
    """``7d``, ``24h``, ``30m``, ``2w`` ago, or an ISO date or time (UTC unless it says otherwise)."""
    relative = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", text)
    if relative:
        return now - float(relative.group(1)) * UNITS_S[relative.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{setting} {text!r} is neither an age (7d, 24h, 30m, 2w) nor a date "
                          "(2025-05-01, 2025-05-01T12:00).") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if end_of_day and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", text):
        moment += timedelta(days=1)  # --until 2025-05-01 takes in that whole day
    return moment.timestamp()


def reason_list(values: list[str] | None, default: list[str]) -> set[str]:
    chosen = {part.strip() for value in values or [] for part in value.split(",") if part.strip()} or set(default)
    return {parse_enum(Reason, reason, "--reason").value for reason in sorted(chosen)}


# ---------------------------------------------------------------- arguments


def make_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="the tracker store's URL: sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB "
                                     "(default: PostgreSQL from DB_HOST/DB_* when set, else var/run/tracker.db)")
    common.add_argument("--unmasked", action="store_true",
                        help="show personal data; needs --token equal to RASA_AUTH_TOKEN")
    common.add_argument("--token", help="RASA_AUTH_TOKEN, for --unmasked ('-': read it from standard input)")
    common.add_argument("--state-dir", type=Path, help="where the manifest of exported files is (default var/review)")

    window = argparse.ArgumentParser(add_help=False)
    window.add_argument("--since", help="last active at or after: 7d, 24h, 30m, 2w or a date (UTC)")
    window.add_argument("--until", help="last active at or before: an age or a date (a date takes in the whole day)")
    window.add_argument("--channel", help="only conversations with a user message from this input channel "
                                          "(rest, socketio, slack, telegram)")
    filters = argparse.ArgumentParser(add_help=False, parents=[window])
    filters.add_argument("--min-confidence", type=float, default=0.6,
                         help="an intent below this confidence is a reason (default 0.6)")

    parser = argparse.ArgumentParser(prog="python -m review", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", parents=[common, filters], help="conversations that need attention")
    listing.add_argument("--reason", action="append", help=f"only these reasons ({', '.join(REASONS)}); repeat or "
                                                           "separate with commas")
    listing.add_argument("--all", action="store_true", help="every conversation, also those with no reason")
    listing.add_argument("--json", action="store_true", help="a JSON array instead of lines")

    show = commands.add_parser("show", parents=[common], help="one conversation's transcript")
    show.add_argument("sender")
    show.add_argument("--min-confidence", type=float, default=0.6)
    show.add_argument("--json", action="store_true")

    page = commands.add_parser("report", parents=[common, filters], help="the list and the transcripts as one HTML page")
    page.add_argument("--reason", action="append", help="only these reasons")
    page.add_argument("--output", type=Path, required=True, help="the HTML file to write")

    nlu = commands.add_parser("export-nlu", parents=[common, filters],
                              help="the chosen user messages as NLU examples to correct and paste")
    nlu.add_argument("--reason", action="append",
                     help=f"the messages behind these reasons (default {', '.join(NLU_REASONS)})")
    nlu.add_argument("--output", type=Path, help="the YAML file to write (default: standard output)")

    story = commands.add_parser("export-story", parents=[common], help="one conversation as a Rasa test story")
    story.add_argument("sender")
    story.add_argument("--output", type=Path, help="the YAML file to write (default: standard output)")

    prune = commands.add_parser("prune", parents=[common],
                                help="delete the conversations whose last event is older than --older-than days")
    prune.add_argument("--older-than", type=float, metavar="DAYS",
                       help="days (default REVIEW_RETENTION_DAYS, else 90)")
    prune.add_argument("--batch-size", type=int, default=retention.DEFAULT_BATCH,
                       help=f"conversations per transaction (default {retention.DEFAULT_BATCH})")
    prune.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")

    forget = commands.add_parser("forget", parents=[common], help="delete everything held about one visitor")
    forget.add_argument("--sender", required=True, help="the conversation id (the webchat shows it under the chat)")
    forget.add_argument("--store-db", help="the store database (default ORDERS_DB_URL, else var/orders.db)")

    verdicts = commands.add_parser("feedback", parents=[common, window],
                                   help="the LLM replies visitors judged (thumbs-down by default), with their context")
    verdicts.add_argument("--verdict", choices=[*VERDICTS, "all"], default=NOT_HELPFUL,
                          help="which verdicts (default down; up and all for the replies visitors liked too)")
    verdicts.add_argument("--turns", type=int, default=DEFAULT_CONTEXT_MESSAGES,
                          help="messages of context, the question included, at most (default "
                               f"{DEFAULT_CONTEXT_MESSAGES}, as the action server's ACTIONS_LLM_HISTORY_TURNS)")
    written = verdicts.add_mutually_exclusive_group()
    written.add_argument("--output", type=Path,
                         help="the YAML file for designers to write better replies in; written again, it keeps them")
    written.add_argument("--json", action="store_true", help="a JSON array instead of text")
    verdicts.add_argument("--catalog", type=Path, default=CATALOG_FILE,
                          help="the catalog to rebuild each question's sources from (default knowledge/catalog.csv)")

    pairs = commands.add_parser("export-preferences", help="the better replies of a `feedback` file as preference "
                                                           "pairs (TRL JSONL), the liked replies as examples")
    pairs.add_argument("--input", type=Path, required=True, help="the YAML file `feedback --output` wrote")
    pairs.add_argument("--output", type=Path, required=True,
                       help="the JSONL of {prompt, chosen, rejected} to write (for `python -m training prepare`)")
    pairs.add_argument("--sft-output", type=Path,
                       help="also write the thumbs-up replies here as OpenAI chat JSONL {messages}")
    pairs.add_argument("--state-dir", type=Path, help="where the manifest of exported files is (default var/review)")

    tickets.add_commands(commands)  # tickets, close: the store database's handoff tickets
    return parser


# ---------------------------------------------------------------- commands


def in_window(db: TrackerDB, args: argparse.Namespace, types: tuple[str, ...]) -> list[Conversation]:
    """The conversations last active within --since and --until, on --channel, newest first (events of ``types``)."""
    now = time.time()
    since = parse_when(args.since, "--since", now) if args.since else None
    until = parse_when(args.until, "--until", now, end_of_day=True) if args.until else None
    senders = [sender for sender, _ in db.senders(since, until)]
    events = db.load(senders, types)
    conversations = [Conversation(sender, events[sender]) for sender in senders]
    return [c for c in conversations if not args.channel or args.channel in c.channels]


def selected(db: TrackerDB, args: argparse.Namespace, reasons: set[str] | None, every: bool = False
             ) -> list[tuple[Conversation, list]]:
    """The conversations matching the filters, newest first, with their findings of ``reasons``."""
    chosen = []
    for conversation in in_window(db, args, REVIEW_EVENT_TYPES):
        found = [f for f in findings(conversation, args.min_confidence) if reasons is None or f.reason.value in reasons]
        if found or every:
            chosen.append((conversation, found))
    return chosen


def full(db: TrackerDB, conversation: Conversation) -> Conversation:
    return Conversation(conversation.sender, db.load([conversation.sender])[conversation.sender])


def write(path: Path | None, text: str, manifest: Manifest, kind: str, senders: list[str]) -> None:
    if path is None:
        sys.stdout.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    manifest.record(path, kind, senders)
    print(f"wrote {path} ({len(senders)} conversation{'s' * (len(senders) != 1)})", file=sys.stderr)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in OFFLINE_COMMANDS:  # neither the tracker store nor personal data: a designer's file
        return OFFLINE_COMMANDS[args.command](args, Manifest(args.state_dir or settings.state_dir))
    mask = masker(args.unmasked, args.token, settings.rasa_auth_token)
    if args.command in tickets.COMMANDS:  # the store database, not the tracker store
        return tickets.COMMANDS[args.command](args, settings, mask)
    manifest = Manifest(args.state_dir or settings.state_dir)
    db = TrackerDB(args.db or settings.tracker_db)
    try:
        return COMMANDS[args.command](db, args, settings, mask, manifest)
    finally:
        db.close()


def cmd_list(db, args, settings, mask: Masker, manifest) -> int:
    reasons = reason_list(args.reason, REASONS) if args.reason else None
    chosen = selected(db, args, reasons, every=args.all)
    if args.json:
        print(json.dumps([list_record(c, f, mask) for c, f in chosen], indent=2, ensure_ascii=False))
    else:
        for conversation, found in chosen:
            print(list_line(conversation, found, mask))
        if not chosen:
            print("no conversation needs attention for these filters", file=sys.stderr)
    return 0


def one(db: TrackerDB, sender: str) -> Conversation:
    conversation = Conversation(sender, db.load([sender])[sender])
    if not conversation.events:
        raise LookupError(f"no conversation {sender!r} in the tracker store (`python -m review list --all` lists them)")
    return conversation


def cmd_show(db, args, settings, mask: Masker, manifest) -> int:
    conversation = one(db, args.sender)
    found = findings(conversation, args.min_confidence)
    if args.json:
        print(json.dumps(show_record(conversation, found, mask), indent=2, ensure_ascii=False))
    else:
        print(show_text(conversation, found, mask))
    return 0


def cmd_report(db, args, settings, mask: Masker, manifest) -> int:
    reasons = reason_list(args.reason, REASONS) if args.reason else None
    chosen = [(full(db, c), f) for c, f in selected(db, args, reasons)]
    title = f"Conversations to review, {when(time.time())}"
    write(args.output, report.html_report(chosen, mask, title), manifest, "html", [c.sender for c, _ in chosen])
    return 0


def cmd_export_nlu(db, args, settings, mask: Masker, manifest) -> int:
    reasons = reason_list(args.reason, NLU_REASONS)
    pairs = [(c, m) for c, found in selected(db, args, reasons) for m in export.chosen_messages(c, found, reasons)]
    write(args.output, export.nlu_snippet(pairs, mask), manifest, "yaml", sorted({c.sender for c, _ in pairs}))
    return 0


def cmd_export_story(db, args, settings, mask: Masker, manifest) -> int:
    conversation = one(db, args.sender)
    write(args.output, export.test_story(conversation, mask), manifest, "story", [conversation.sender])
    return 0


def cmd_prune(db, args, settings, mask: Masker, manifest) -> int:
    days = args.older_than if args.older_than is not None else settings.retention_days
    if days <= 0 or args.batch_size < 1:
        raise ConfigError("--older-than must be > 0 days and --batch-size at least 1.")
    result = retention.prune(db, days, batch=args.batch_size, dry_run=args.dry_run)
    verb = "would remove" if result.dry_run else "removed"
    print(f"prune: {verb} {result.conversations} conversation{'s' * (result.conversations != 1)} "
          f"({result.events} event{'s' * (result.events != 1)}) last active before {when(result.cutoff)} "
          f"({days:g} days)")
    return 0


def cmd_forget(db, args, settings, mask: Masker, manifest) -> int:
    result = retention.forget(db, args.sender, args.store_db or settings.store_db, manifest.path.parent)
    rows = "".join(f", {n} {table} row{'s' * (n != 1)}" for table, n in sorted(result.store_rows.items()))
    print(mask(f"forget {args.sender}: removed {result.events} tracker event{'s' * (result.events != 1)}{rows}, "
               f"{result.files_deleted} exported file{'s' * (result.files_deleted != 1)} deleted, "
               f"{result.files_rewritten} rewritten"))
    return 0


# ---------------------------------------------------------------- visitors' verdicts


def judged_in(db: TrackerDB, args: argparse.Namespace) -> list[JudgedReply]:
    """The judged LLM replies of the conversations in the window, of --verdict, the latest verdict first."""
    judged = [j for c in in_window(db, args, VERDICT_EVENT_TYPES) for j in judged_replies(c.sender, c.events)
              if args.verdict in ("all", j.verdict)]
    return sorted(judged, key=lambda j: (j.judged_at, j.click_id), reverse=True)


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else words or word + 's'}"


def cmd_feedback(db, args, settings, mask: Masker, manifest) -> int:
    if args.turns < 1:
        raise ConfigError("--turns must be at least 1 (the question itself).")
    judged = judged_in(db, args)
    if args.output:
        return write_feedback_file(db, args, judged, mask, manifest)
    if args.json:
        print(json.dumps([verdict_record(j, mask, args.turns) for j in judged], indent=2, ensure_ascii=False))
    elif judged:
        print("\n\n".join(verdict_text(j, mask, args.turns) for j in judged))
    else:
        print(f"no {'' if args.verdict == 'all' else args.verdict + ' '}verdicts for these filters", file=sys.stderr)
    return 0


def write_feedback_file(db: TrackerDB, args: argparse.Namespace, judged: list[JudgedReply], mask: Masker,
                        manifest: Manifest) -> int:
    """Write (or write again) the designers' file, keeping every better_reply already in it."""
    previous = preferences.checked_items(args.output, complete=False) if args.output.is_file() else []
    catalog = preferences.catalog_by_sku(args.catalog)
    fresh, senders = [], {}
    for reply in by_conversation(judged):
        item, warnings = preferences.feedback_item(reply, catalog, mask, args.turns)
        for warning in warnings:
            print(f"review: {warning}", file=sys.stderr)
        if item is not None:
            fresh.append(item)
            senders[files.key(reply.sender)] = reply.sender
    merged = preferences.merge(fresh, previous)
    files.write_atomically(args.output, preferences.feedback_yaml(merged))
    manifest.record(args.output, "yaml", holders(db, manifest, args.output, set(merged.groups), senders))
    carried = f", {merged.carried} of them on items no longer selected" if merged.carried else ""
    print(f"wrote {args.output} ({plural(len(merged.items), 'item')}, "
          f"{plural(merged.kept + merged.carried, 'better reply', 'better replies')} kept{carried})", file=sys.stderr)
    return 0


def by_conversation(judged: list[JudgedReply]) -> list[JudgedReply]:
    """The conversation judged last first, as in the listing, each conversation's replies together
    (one part of the file for ``forget`` to cut) and in the order they were written."""
    rank: dict[str, int] = {}
    for reply in judged:
        rank.setdefault(reply.sender, len(rank))
    return sorted(judged, key=lambda j: (rank[j.sender], j.replied_at, j.reply_id))


def holders(db: TrackerDB | None, manifest: Manifest, path: Path, keys: set[str], known: dict[str, str]) -> list[str]:
    """The senders of the conversation ``keys`` whose items a file holds, for ``forget``: those
    ``known``, those the manifest lists for ``path`` and, failing that, the tracker's."""
    senders = dict(known)
    listed = manifest.load().get(str(path.resolve()), {}).get("senders", [])
    senders.update({files.key(sender): sender for sender in listed if files.key(sender) in keys})
    if db is not None and keys - set(senders):
        senders.update({files.key(s): s for s, _ in db.senders() if files.key(s) in keys - set(senders)})
    unknown = len(keys - set(senders))
    if unknown:
        where = "the tracker nor the manifest" if db is not None else f"the manifest's entry of {path}"
        print(f"review: neither {where} names the {plural(unknown, 'conversation')} behind some items: `forget` "
              "will not find them in the file written", file=sys.stderr)
    return sorted(senders[key] for key in keys if key in senders)


def cmd_export_preferences(args: argparse.Namespace, manifest: Manifest) -> int:
    outputs = [args.output, *([args.sft_output] if args.sft_output else [])]
    if not args.input.is_file():
        raise ConfigError(f"--input {args.input}: no such file; write it with "
                          "`python -m review feedback --output FILE.yml` and fill in better_reply.")
    if len({path.resolve() for path in [args.input, *outputs]}) != len(outputs) + 1:
        raise ConfigError("--input, --output and --sft-output must be three different files.")
    items = preferences.checked_items(args.input, complete=True)
    exported = preferences.training_rows(items)
    written = [(args.output, exported.pairs, exported.pair_keys)]
    if args.sft_output:
        written.append((args.sft_output, exported.good, exported.good_keys))
    for path, rows, keys in written:
        files.write_atomically(path, preferences.jsonl(rows))
        manifest.record(path, "jsonl", holders(None, manifest, args.input, keys, {}))
    print(f"export-preferences: {plural(len(items), 'item')}; {plural(len(exported.pairs), 'preference pair')} "
          f"written to {args.output}, {exported.skipped} without a better_reply skipped")
    liked = plural(len(exported.good), "thumbs-up reply", "thumbs-up replies")
    if args.sft_output:
        print(f"export-preferences: {liked} written to {args.sft_output}")
    elif exported.good:
        print(f"export-preferences: {liked} not written (--sft-output FILE.jsonl keeps them as fine-tuning examples)")
    return 0


COMMANDS = {"list": cmd_list, "show": cmd_show, "report": cmd_report, "export-nlu": cmd_export_nlu,
            "export-story": cmd_export_story, "prune": cmd_prune, "forget": cmd_forget, "feedback": cmd_feedback}
OFFLINE_COMMANDS = {"export-preferences": cmd_export_preferences}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    install_log_masking()
    args = make_parser().parse_args(argv)
    try:
        return run(args, Settings.from_env())
    except ConfigError as error:
        print(f"review: {error}", file=sys.stderr)
        return 2
    except (LookupError, FeedbackFileError, CatalogError) as error:  # bad input: a file or a conversation
        print(f"review: {error}", file=sys.stderr)
        return 1
