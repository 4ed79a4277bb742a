"""Visitors' verdicts on LLM replies: `review feedback`, its designers' file, `export-preferences`,
the thumbs_down reason and `forget`, on a tracker store holding the events Rasa writes for them
(ridgeline/feedback.py's contract: tests/review/conftest.py's llm_reply and click)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
import yaml

from review.cli import main
from review.conversation import Conversation, Reason, findings
from review.files import key
from review.store import Event
from review.verdicts import Turn, context, judged_replies
from ridgeline.catalog import read_catalog, with_sources
from ridgeline.paths import CATALOG_FILE
from tests.review.conftest import action, bot, click, llm_reply, session, user

A, B, C, D, E, OLD = "a1a1a1a1a1a1", "b2b2b2b2b2b2", "c3c3c3c3c3c3", "d4d4d4d4d4d4", "e5e5e5e5e5e5", "f6f6f6f6f6f6"
QUESTION = "which tent sleeps two? mail me at anna.berg@example.com"
QUESTION_EXPORTED = "which tent sleeps two? mail me at visitor@example.com"
TENT_REPLY = "The Skyline 2 (RO-10002) sleeps two.\nI'll mail the details to anna.berg@example.com."
TENT_REPLY_EXPORTED = "The Skyline 2 (RO-10002) sleeps two.\nI'll mail the details to visitor@example.com."
LIGHTER_REPLY = "The Skyline 1 (RO-10001) weighs 730 g."
STOVE_REPLY = "Any stove will do."
PAD_REPLY = "The Skyline 1 is a tent, but it is light."


def verdict_conversations(now: float) -> dict[str, list[dict]]:
    """A 👎 on a reply with sources (one no longer in the catalog) and a 👍 on the next; a visitor
    who changed their mind (👍 then 👎); a reply nobody judged; a 👍 after a new session."""
    t = now - 1800
    return {
        "visitor-tents": [
            *session(t),
            user("hi", "greet", 0.99, t + 1, channel="socketio"), action("utter_greet", t + 2),
            bot("Hi! I'm Sherpa.", t + 3, "utter_greet"), action("action_listen", t + 4),  # scripted: no buttons
            user(QUESTION, "product_search", 0.9, t + 5, channel="socketio"), action("action_llm_response", t + 6),
            llm_reply(TENT_REPLY, t + 7, A, ["RO-10002", "RO-99999", "RO-10001"]), action("action_listen", t + 8),
            *click("down", A, t + 9, "socketio"),
            user("and a lighter one?", "open_question", 0.8, t + 11, channel="socketio"),
            action("action_llm_response", t + 12), llm_reply(LIGHTER_REPLY, t + 13, B, ["RO-10001"]),
            action("action_listen", t + 14), *click("up", B, t + 15, "socketio"),
        ],
        "visitor-changed-mind": [
            *session(t + 100),
            user("what stove for winter?", "open_question", 0.8, t + 101), action("action_llm_response", t + 102),
            llm_reply(STOVE_REPLY, t + 103, C), action("action_listen", t + 104),
            *click("up", C, t + 105), *click("down", C, t + 110),
            *click("down", "0000000000ff", t + 115),  # names no reply of this conversation: judges nothing
        ],
        "visitor-no-verdict": [
            *session(t + 200), user("do you ship to Norway?", "open_question", 0.8, t + 201),
            action("action_llm_response", t + 202), llm_reply("Yes, in 5 days.", t + 203, D),
        ],
        "visitor-liked": [
            *session(t + 300), user("an old question", "open_question", 0.8, t + 301),
            llm_reply("an old answer", t + 302, OLD),
            *session(t + 400),  # the context starts afresh
            user("hello", "greet", 0.99, t + 401), bot("Hi!", t + 402, "utter_greet"),
            bot("How can I help?", t + 403, "utter_offer_help"),
            user("I need a light shelter", "open_question", 0.8, t + 404), action("action_llm_response", t + 405),
            llm_reply(PAD_REPLY, t + 406, E, ["RO-10001"]), *click("up", E, t + 407),
        ],
    }


@pytest.fixture
def verdicts_db(tracker_db):
    now = time.time()
    for sender, events in verdict_conversations(now).items():
        tracker_db.add(sender, events)
    return tracker_db


@pytest.fixture
def catalog(tmp_path) -> Path:
    """The store's catalog without RO-99999: two of its products."""
    rows = list(csv.reader(CATALOG_FILE.read_text(encoding="utf-8").splitlines()))
    path = tmp_path / "catalog.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([rows[0], *(row for row in rows[1:] if row and row[0] in ("RO-10001", "RO-10002"))])
    return path


@pytest.fixture
def products(catalog) -> dict:
    return {p.sku: p for p in read_catalog(catalog)}


@pytest.fixture
def offline(tmp_path, capsys):
    """``python -m review`` without a tracker store (export-preferences): (exit code, stdout, stderr)."""
    def run(*args: str) -> tuple[int, str, str]:
        code = main([args[0], "--state-dir", str(tmp_path / "state"), *args[1:]])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def item_id(sender: str, reply_id: str) -> str:
    return f"{key(sender)}:{reply_id}"


def expected_contexts(products: dict) -> dict[str, list[dict]]:
    """Each judged reply's context as the LLM got it, the question with its sources."""
    first, second = products["RO-10001"], products["RO-10002"]
    greeting = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hi! I'm Sherpa."}]
    return {
        A: [*greeting, {"role": "user", "content": with_sources(QUESTION_EXPORTED, [second, first])}],
        B: [*greeting, {"role": "user", "content": QUESTION_EXPORTED},
            {"role": "assistant", "content": TENT_REPLY_EXPORTED},
            {"role": "user", "content": with_sources("and a lighter one?", [first])}],
        C: [{"role": "user", "content": "what stove for winter?"}],
        E: [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "Hi!\nHow can I help?"},
            {"role": "user", "content": with_sources("I need a light shelter", [first])}],
    }


def fill(path: Path, item: str, better: str) -> None:
    """What a designer does: the item's `better_reply: ""` becomes a block with their reply."""
    text = path.read_text(encoding="utf-8")
    at = text.index('better_reply: ""', text.index(f"id: {item}\n"))
    block = "better_reply: |\n" + "".join(f"    {line}\n" for line in better.splitlines())
    path.write_text(text[:at] + block.rstrip("\n") + text[at + len('better_reply: ""'):], encoding="utf-8")


def items_of(path: Path) -> dict[str, dict]:
    return {item["id"]: item for item in yaml.safe_load(path.read_text(encoding="utf-8"))["items"] or []}


# ---------------------------------------------------------------- listing


def test_feedback_lists_the_thumbs_down_replies_with_their_context_masked(review, verdicts_db):
    code, out, _ = review("feedback")
    assert code == 0
    changed_mind, tents = out.split("\n\n")
    assert changed_mind.splitlines()[0].endswith("visitor-changed-mind  👎 down  LLM reply c3c3c3c3c3c3")
    assert changed_mind.splitlines()[1:] == ["  user       what stove for winter?", f"  reply      {STOVE_REPLY}"]
    assert tents.splitlines()[0].endswith("visitor-tents  👎 down  LLM reply a1a1a1a1a1a1  "
                                          "sources RO-10002, RO-99999, RO-10001")
    assert tents.splitlines()[1:] == [
        "  user       hi", "  assistant  Hi! I'm Sherpa.",
        "  user       which tent sleeps two? mail me at <email>",
        "  reply      The Skyline 2 (RO-10002) sleeps two.", "             I'll mail the details to <email>.",
    ]
    assert "anna.berg" not in out and "feedback" not in out  # no click is a turn


def test_feedback_up_all_json_and_filters(review, verdicts_db):
    code, out, _ = review("feedback", "--verdict", "up", "--json")
    records = json.loads(out)
    assert [(r["sender"], r["reply_id"], r["verdict"]) for r in records] == [
        ("visitor-liked", E, "up"), ("visitor-tents", B, "up")]
    assert records[0]["context"] == [{"role": "user", "content": "hello"},
                                     {"role": "assistant", "content": "Hi!\nHow can I help?"},
                                     {"role": "user", "content": "I need a light shelter"}]
    assert records[0]["id"] == item_id("visitor-liked", E) and records[0]["sources"] == ["RO-10001"]
    code, out, _ = review("feedback", "--verdict", "all", "--json", "--turns", "1")
    records = json.loads(out)
    assert [r["reply_id"] for r in records] == [E, C, B, A]  # the latest verdict first
    assert all(len(r["context"]) == 1 for r in records)
    code, out, _ = review("feedback", "--channel", "socketio", "--json")
    assert [r["reply_id"] for r in json.loads(out)] == [A]
    code, out, err = review("feedback", "--until", "1d")
    assert code == 0 and out == "" and "no down verdicts" in err
    code, _, err = review("feedback", "--turns", "0")
    assert code == 2 and "--turns" in err
    with pytest.raises(SystemExit) as exit_:
        review("feedback", "--verdict", "meh")
    assert exit_.value.code == 2


def test_feedback_unmasked_needs_the_token(review, verdicts_db):
    code, out, _ = review("feedback", "--unmasked", "--token", "review-test-token")
    assert code == 0 and "anna.berg@example.com" in out
    code, _, err = review("feedback", "--unmasked", "--token", "wrong")
    assert code == 2 and "RASA_AUTH_TOKEN" in err


# ---------------------------------------------------------------- the reason, and the clicks are no turns


def test_list_finds_thumbs_down_and_the_clicks_are_no_turns(review, verdicts_db):
    code, out, _ = review("list", "--reason", "thumbs_down")
    assert [line.split()[2] for line in out.splitlines()] == ["visitor-changed-mind", "visitor-tents"]
    code, out, _ = review("list")
    by_sender = {line.split()[2]: line for line in out.splitlines()}
    # two clicks with alike payloads are no `repeated`; a click and its thanks no `apology`
    assert by_sender["visitor-changed-mind"].endswith("1 message  rest  thumbs_down")
    assert by_sender["visitor-tents"].endswith("3 messages  socketio  thumbs_down")
    assert "visitor-liked" not in by_sender and "visitor-no-verdict" not in by_sender
    code, out, _ = review("show", "visitor-changed-mind")
    assert "thumbs_down: 👎 on an LLM reply: Any stove will do." in out
    assert "👍 up on LLM reply c3c3c3c3c3c3" in out and "👎 down on LLM reply c3c3c3c3c3c3" in out
    assert f'"{STOVE_REPLY}"   (LLM reply c3c3c3c3c3c3)' in out


def test_the_later_click_counts_and_is_where_the_finding_is():
    events = [*session(1), user("q", "open_question", 0.9, 2), llm_reply("r", 3, A),
              *click("down", A, 4), *click("up", A, 5), user("q2", "open_question", 0.9, 6), llm_reply("r2", 7, B),
              *click("up", B, 8), *click("down", B, 9)]
    conversation = Conversation("s", [Event(i, e["event"], e["timestamp"], e) for i, e in enumerate(events)])
    judged = judged_replies("s", conversation.events)
    assert [(j.reply_id, j.verdict, j.judged_at) for j in judged] == [(A, "up", 5), (B, "down", 9)]
    assert judged[1].question.data["text"] == "q2" and judged[1].turns == (
        Turn("user", "q"), Turn("assistant", "r"), Turn("user", "q2"))
    (finding,) = findings(conversation, 0.6)
    assert finding.reason is Reason.THUMBS_DOWN and finding.timestamp == 9 and finding.message.text == "q2"


def test_context_joins_one_roles_messages_and_keeps_the_latest_from_the_visitor():
    turns = [Turn("user", "a"), Turn("assistant", "b"), Turn("assistant", "c"), Turn("user", "d"),
             Turn("user", "e"), Turn("assistant", "message shortened")]
    assert context(turns) == [Turn("user", "a"), Turn("assistant", "b\nc"), Turn("user", "d\ne")]
    assert context(turns, 2) == [Turn("user", "d\ne")]  # never opens with the assistant
    assert context([Turn("assistant", "hi")]) == []


# ---------------------------------------------------------------- the designers' file


def test_feedback_output_writes_the_file_for_designers(review, verdicts_db, tmp_path, catalog, products):
    path = tmp_path / "review" / "feedback.yml"
    code, _, err = review("feedback", "--verdict", "all", "--output", str(path), "--catalog", str(catalog))
    assert code == 0 and f"wrote {path} (4 items, 0 better replies kept)" in err
    assert "source RO-99999 is no longer in the catalog" in err
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Visitors' verdicts") and "better_reply: |" in text  # the header's example
    assert f"# review:begin {key('visitor-tents')}" in text and "visitor-" not in text and "anna.berg" not in text
    data = yaml.safe_load(text)
    assert data["version"] == 1
    contexts = expected_contexts(products)
    assert data["items"] == [
        {"id": item_id("visitor-liked", E), "verdict": "up", "context": contexts[E], "reply": PAD_REPLY,
         "better_reply": ""},
        {"id": item_id("visitor-changed-mind", C), "verdict": "down", "context": contexts[C], "reply": STOVE_REPLY,
         "better_reply": ""},
        {"id": item_id("visitor-tents", A), "verdict": "down", "context": contexts[A], "reply": TENT_REPLY_EXPORTED,
         "better_reply": ""},
        {"id": item_id("visitor-tents", B), "verdict": "up", "context": contexts[B], "reply": LIGHTER_REPLY,
         "better_reply": ""},
    ]
    assert "  reply: |-\n    The Skyline 2 (RO-10002) sleeps two.\n" in text  # multi-line text as a block
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())["files"]
    assert manifest[str(path.resolve())] == {
        "kind": "yaml", "senders": ["visitor-changed-mind", "visitor-liked", "visitor-tents"]}


def test_writing_the_file_again_keeps_every_better_reply(review, verdicts_db, tmp_path, catalog):
    path = tmp_path / "feedback.yml"
    review("feedback", "--verdict", "all", "--output", str(path), "--catalog", str(catalog))
    fill(path, item_id("visitor-tents", A), "The Skyline 2 (RO-10002) sleeps two\nand weighs 1,190 g.")
    fill(path, item_id("visitor-liked", E), "The Skyline 1 (RO-10001) weighs 730 g.")
    code, _, err = review("feedback", "--output", str(path), "--catalog", str(catalog))  # thumbs-down only now
    assert code == 0 and "(3 items, 2 better replies kept, 1 of them on items no longer selected)" in err
    items = items_of(path)
    assert [i for i in items] == [item_id("visitor-changed-mind", C), item_id("visitor-tents", A),
                                  item_id("visitor-liked", E)]
    assert items[item_id("visitor-tents", A)]["better_reply"] == "The Skyline 2 (RO-10002) sleeps two\n" \
                                                                 "and weighs 1,190 g.\n"
    assert items[item_id("visitor-liked", E)]["better_reply"] == "The Skyline 1 (RO-10001) weighs 730 g.\n"
    assert items[item_id("visitor-changed-mind", C)]["better_reply"] == ""
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())["files"]
    assert manifest[str(path.resolve())]["senders"] == ["visitor-changed-mind", "visitor-liked", "visitor-tents"]


def test_a_file_that_cannot_be_matched_is_not_written_over(review, verdicts_db, tmp_path, catalog):
    path = tmp_path / "feedback.yml"
    review("feedback", "--output", str(path), "--catalog", str(catalog))
    broken = path.read_text(encoding="utf-8").replace("  verdict: down", "verdict: down", 1)
    path.write_text(broken, encoding="utf-8")
    code, _, err = review("feedback", "--output", str(path), "--catalog", str(catalog))
    assert code == 1 and "not valid YAML" in err and path.read_text(encoding="utf-8") == broken
    code, _, err = review("feedback", "--output", str(tmp_path / "other.yml"), "--catalog", str(tmp_path / "none.csv"))
    assert code == 1 and "none.csv: no such file" in err and not (tmp_path / "other.yml").exists()


# ---------------------------------------------------------------- export-preferences


def test_export_preferences_writes_the_pairs_and_the_liked_replies(review, offline, verdicts_db, tmp_path, catalog,
                                                                   products):
    path, pairs, good = tmp_path / "feedback.yml", tmp_path / "out" / "pairs.jsonl", tmp_path / "out" / "good.jsonl"
    review("feedback", "--verdict", "all", "--output", str(path), "--catalog", str(catalog))
    fill(path, item_id("visitor-tents", A), "The Skyline 2 (RO-10002) sleeps two\nand weighs 1,190 g.")
    code, out, _ = offline("export-preferences", "--input", str(path), "--output", str(pairs),
                           "--sft-output", str(good))
    assert code == 0
    assert out.splitlines() == [
        f"export-preferences: 4 items; 1 preference pair written to {pairs}, 3 without a better_reply skipped",
        f"export-preferences: 2 thumbs-up replies written to {good}"]
    contexts = expected_contexts(products)
    assert pairs.read_text(encoding="utf-8") == json.dumps({
        "prompt": contexts[A],
        "chosen": [{"role": "assistant", "content": "The Skyline 2 (RO-10002) sleeps two\nand weighs 1,190 g."}],
        "rejected": [{"role": "assistant", "content": TENT_REPLY_EXPORTED}]}, ensure_ascii=False) + "\n"
    assert [json.loads(line) for line in good.read_text(encoding="utf-8").splitlines()] == [
        {"messages": [*contexts[E], {"role": "assistant", "content": PAD_REPLY}]},
        {"messages": [*contexts[B], {"role": "assistant", "content": LIGHTER_REPLY}]}]
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())["files"]
    assert manifest[str(pairs.resolve())] == {"kind": "jsonl", "senders": ["visitor-tents"]}
    assert manifest[str(good.resolve())] == {"kind": "jsonl", "senders": ["visitor-liked", "visitor-tents"]}
    code, out, _ = offline("export-preferences", "--input", str(path), "--output", str(pairs))
    assert out.splitlines()[1] == ("export-preferences: 2 thumbs-up replies not written (--sft-output FILE.jsonl "
                                   "keeps them as fine-tuning examples)")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("  verdict: down", "verdict: down", 1),
     "line 25: not valid YAML (mapping values are not allowed here); check the indentation"),
    (lambda t: t.replace("  verdict: down\n", "", 1), "no `verdict`; put it back"),
    (lambda t: t.replace("  verdict: down", "  verdict: meh", 1), "`verdict` must be up or down, not 'meh'"),
    (lambda t: t.replace("  better_reply: \"\"", f"  better_reply: {STOVE_REPLY}", 1),
     "`better_reply` is the same as `reply`; write the reply the assistant should have given"),
    (lambda t: t.replace("  - role: user", "  - role: visitor", 1), "context message 1 must be `role: user`"),
    (lambda t: t.replace("\n  better_reply:", "\n  note: hm\n  better_reply:", 1), "unknown key `note`"),
    (lambda t: t.replace("  better_reply: \"\"", "  better_reply: 42", 1), "`better_reply` must be text"),
    (lambda t: t.replace(item_id("visitor-changed-mind", C), item_id("visitor-tents", A)), "the same id as item 1"),
    (lambda t: t.replace("  better_reply: \"\"", "  better_reply: Use gas: it works", 1), "line 29: not valid YAML"),
    (lambda t: "items: {}\n", "expected `items:` and a list"),
])
def test_a_malformed_file_is_refused_naming_the_item_and_what_to_change(review, offline, verdicts_db, tmp_path,
                                                                         catalog, edit, message):
    path, pairs = tmp_path / "feedback.yml", tmp_path / "pairs.jsonl"
    review("feedback", "--output", str(path), "--catalog", str(catalog))
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    code, out, err = offline("export-preferences", "--input", str(path), "--output", str(pairs))
    assert code == 1 and message in err and out == "" and not pairs.exists()


def test_export_preferences_bad_flags(offline, tmp_path):
    code, _, err = offline("export-preferences", "--input", str(tmp_path / "none.yml"), "--output", "x.jsonl")
    assert code == 2 and "review feedback --output" in err
    (tmp_path / "f.yml").write_text("items: []\n")
    code, _, err = offline("export-preferences", "--input", str(tmp_path / "f.yml"),
                           "--output", str(tmp_path / "f.yml"))
    assert code == 2 and "three different files" in err
    with pytest.raises(SystemExit) as exit_:
        offline("export-preferences", "--input", str(tmp_path / "f.yml"))
    assert exit_.value.code == 2


# ---------------------------------------------------------------- erasure


def test_forget_cuts_the_visitors_items_and_deletes_the_pairs(review, offline, verdicts_db, tmp_path, catalog):
    path, pairs = tmp_path / "feedback.yml", tmp_path / "pairs.jsonl"
    review("feedback", "--verdict", "all", "--output", str(path), "--catalog", str(catalog))
    fill(path, item_id("visitor-tents", A), "Better for the tents.")
    fill(path, item_id("visitor-changed-mind", C), "A winter stove needs a remote canister.")
    offline("export-preferences", "--input", str(path), "--output", str(pairs))
    assert len(pairs.read_text().splitlines()) == 2

    code, out, _ = review("forget", "--sender", "visitor-tents")
    assert code == 0 and out.strip().endswith("1 exported file deleted, 1 rewritten")
    assert not pairs.exists()
    items = items_of(path)
    assert list(items) == [item_id("visitor-liked", E), item_id("visitor-changed-mind", C)]
    assert items[item_id("visitor-changed-mind", C)]["better_reply"] == "A winter stove needs a remote canister.\n"
    code, out, _ = offline("export-preferences", "--input", str(path), "--output", str(pairs))
    assert code == 0 and "1 preference pair" in out

    review("forget", "--sender", "visitor-liked")
    assert list(items_of(path)) == [item_id("visitor-changed-mind", C)]
    code, out, _ = review("forget", "--sender", "visitor-changed-mind")
    assert out.strip().endswith("2 exported files deleted, 0 rewritten")  # the file held no one else; the pairs
    assert not path.exists() and not pairs.exists()


def test_a_file_forget_emptied_exports_nothing(offline, tmp_path):
    (tmp_path / "f.yml").write_text("# header\nversion: 1\nitems:\n", encoding="utf-8")  # every part cut out
    code, out, _ = offline("export-preferences", "--input", str(tmp_path / "f.yml"),
                           "--output", str(tmp_path / "p.jsonl"))
    assert code == 0 and out.startswith("export-preferences: 0 items; 0 preference pairs")
    assert (tmp_path / "p.jsonl").read_text() == ""
