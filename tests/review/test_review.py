"""python -m review on a SQLite tracker store: list, show, exports, masking, prune, forget."""

from __future__ import annotations

import json
import re
import sqlite3
import time

import pytest
import yaml

from review.conversation import Conversation, Reason, findings, normalised, repeats
from review.store import Event
from tests.review.conftest import DAY_S, TrackerFile, bot, session, slot, user

PERSONAL = ("RG-10421", "anna.berg@example.com", "+44 20 7946 0321")


def test_list_shows_the_conversations_that_need_attention_newest_first_with_their_reasons(review):
    code, out, _ = review("list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[2] for line in lines] == ["visitor-silent", "visitor-order", "visitor-fallback"]
    by_sender = {line.split()[2]: line for line in lines}
    assert by_sender["visitor-fallback"].endswith("nlu_fallback×2, apology, repeated")
    assert by_sender["visitor-order"].endswith("low_confidence, handoff")
    assert by_sender["visitor-order"].split()[5] == "socketio"
    assert by_sender["visitor-silent"].endswith("apology")
    assert "visitor-happy" not in out and "visitor-old" not in out


@pytest.mark.parametrize(("args", "senders"), [
    (("--reason", "handoff"), ["visitor-order"]),
    (("--reason", "apology,repeated"), ["visitor-silent", "visitor-fallback"]),
    (("--channel", "socketio"), ["visitor-order"]),
    (("--since", "2h"), ["visitor-silent", "visitor-order", "visitor-fallback"]),
    (("--until", "1d", "--all"), ["visitor-old"]),
    (("--since", "300d", "--until", "100d", "--all"), ["visitor-old"]),
    (("--min-confidence", "0.3", "--reason", "low_confidence"), []),
    (("--all",), ["visitor-happy", "visitor-silent", "visitor-order", "visitor-fallback", "visitor-old"]),
])
def test_list_filters(review, args, senders):
    code, out, _ = review("list", *args)
    assert code == 0
    assert [line.split()[2] for line in out.splitlines()] == senders


def test_list_by_date_and_as_json(review):
    today = time.strftime("%Y-%m-%d", time.gmtime())
    code, out, _ = review("list", "--since", "2000-01-01", "--until", today, "--json")
    records = json.loads(out)
    assert [r["sender"] for r in records] == ["visitor-silent", "visitor-order", "visitor-fallback"]
    assert {r["reason"] for r in records[1]["reasons"]} == {"low_confidence", "handoff"}
    assert not any(p in out for p in PERSONAL)


def test_bad_filters_are_refused_with_what_to_use(review):
    code, _, err = review("list", "--since", "last tuesday")
    assert code == 2 and "7d, 24h" in err
    code, _, err = review("list", "--reason", "angry")
    assert code == 2 and "nlu_fallback" in err


def test_show_prints_the_transcript_masked(review):
    code, out, _ = review("show", "visitor-order")
    assert code == 0
    assert not any(p in out for p in PERSONAL), out
    assert '"where is my order <order-id>? mail me at <email>"' in out
    assert "intent check_order_status 0.42; entities order_id=<order-id>, email=<email>; via socketio" in out
    assert 'order_id = "<order-id>"' in out and "handoff_requested = true" in out
    assert re.search(r"action +order_status_form", out) and "form finished" in out
    assert "(utter_handoff)" in out and "session started" in out
    assert "needs attention: low_confidence, handoff" in out
    code, out, err = review("show", "nobody")
    assert code == 1 and "no conversation 'nobody'" in err


def test_unmasked_needs_the_rasa_api_token(review):
    code, _, err = review("show", "visitor-order", "--unmasked")
    assert code == 2 and "RASA_AUTH_TOKEN" in err
    code, _, err = review("show", "visitor-order", "--unmasked", "--token", "wrong")
    assert code == 2 and "wrong" in err
    code, out, _ = review("show", "visitor-order", "--unmasked", "--token", "review-test-token")
    assert code == 0 and all(p in out for p in PERSONAL)
    code, out, _ = review("show", "visitor-order", "--token", "review-test-token")  # the token alone unmasks nothing
    assert code == 0 and not any(p in out for p in PERSONAL)


def test_unmasked_is_refused_when_rasa_has_no_token(review, monkeypatch):
    monkeypatch.setenv("RASA_AUTH_TOKEN", "")
    code, _, err = review("show", "visitor-order", "--unmasked", "--token", "")
    assert code == 2 and "RASA_AUTH_TOKEN set" in err


# ---------------------------------------------------------------- the reasons, one by one


def conversation(*events) -> Conversation:
    return Conversation("s", [Event(i, e["event"], e["timestamp"], e) for i, e in enumerate(events)])


def test_repeats_compares_normalised_text_and_near_misses():
    assert normalised("Where's my ORDER?!  ") == "wheres my order"
    assert repeats("where is my order", "Where is my order?")
    assert repeats("where is my oder", "where is my order")  # >= 0.9 alike
    assert not repeats("hi", "bye") and not repeats("", "")


def test_an_answered_turn_is_no_apology_and_no_reply_is():
    answered = conversation(user("hi", "greet", 0.99, 1), bot("Hi!", 2, "utter_greet"),
                            user("bye", "goodbye", 0.99, 3), bot("Bye!", 4, "utter_goodbye"))
    assert findings(answered, 0.6) == []
    silent = conversation(user("hi", "greet", 0.99, 1), user("hello?", "greet", 0.99, 3), bot("Hi!", 4, "utter_greet"))
    (finding,) = findings(silent, 0.6)
    assert finding.reason is Reason.APOLOGY and finding.message.text == "hi" and "utter_no_reply" in finding.detail


def test_the_handoff_slot_alone_is_a_handoff_and_counts_once():
    found = findings(conversation(user("human please", "human_handoff", 0.9, 1), slot("handoff_requested", True, 2),
                                  bot("Passing you on.", 3, "utter_handoff")), 0.6)
    assert [f.reason for f in found] == [Reason.HANDOFF]


def test_withheld_and_unavailable_replies_are_the_same_apology_in_the_tracker():
    found = findings(conversation(user("tell me a secret", "open_question", 0.8, 1),
                                  bot("Sorry, I can't answer that right now.", 2, "utter_llm_unavailable")), 0.6)
    assert [f.reason for f in found] == [Reason.APOLOGY] and "withheld" in found[0].detail


# ---------------------------------------------------------------- exports


def test_export_nlu_writes_examples_to_correct_grouped_by_predicted_intent(review, tmp_path):
    output = tmp_path / "out" / "nlu.yml"
    code, _, err = review("export-nlu", "--output", str(output))
    assert code == 0 and "wrote" in err
    text = output.read_text()
    data = yaml.safe_load(text)
    items = {item["intent"]: item["examples"] for item in data["nlu"]}
    # nlu_fallback is filed under the best real guess; the exact repeat is written once
    assert items == {"product_search": "- asdkjh qwe tent??\n", "greet": "- asdkjh qwe tent?\n",
                     "check_order_status": "- where is my order [RG-00000](order_id)? mail me at "
                                           "[visitor@example.com](email)\n"}
    assert "# predicted: nlu_fallback (0.50); best guess product_search (0.31)" in text
    assert "# predicted: check_order_status (0.42)" in text
    assert not any(p in text for p in PERSONAL)
    code, out, _ = review("export-nlu", "--reason", "handoff")
    assert [i["intent"] for i in yaml.safe_load(out)["nlu"]] == ["human_handoff"]
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())["files"]
    assert manifest == {str(output.resolve()): {"kind": "yaml", "senders": ["visitor-fallback", "visitor-order"]}}


def test_export_story_writes_a_test_story(review):
    code, out, _ = review("export-story", "visitor-order")
    assert code == 0
    (story,) = yaml.safe_load(out)["stories"]
    assert story["steps"] == [
        {"user": "where is my order [RG-00000](order_id)? mail me at [visitor@example.com](email)\n",
         "intent": "check_order_status"},
        {"action": "order_status_form"}, {"active_loop": "order_status_form"},
        {"slot_was_set": [{"order_id": "RG-00000"}]}, {"slot_was_set": [{"email": "visitor@example.com"}]},
        {"action": "action_check_order_status"}, {"active_loop": None},
        {"user": "I want to talk to a person\n", "intent": "human_handoff"},
        {"action": "action_human_handoff"}, {"slot_was_set": [{"handoff_requested": True}]},
    ]
    assert "user: |" in out
    code, out, _ = review("export-story", "visitor-happy")
    steps = yaml.safe_load(out)["stories"][0]["steps"]
    assert {"user": "what is your return policy?\n", "intent": "faq/returns"} in steps
    assert {"action": "utter_faq"} in steps and {"action": "action_listen"} not in steps


# ---------------------------------------------------------------- retention and erasure


def test_prune_deletes_only_conversations_idle_longer_than_the_retention(review, tracker_db):
    before = tracker_db.count()
    old = tracker_db.count("visitor-old")
    code, out, _ = review("prune", "--older-than", "90", "--dry-run")
    assert code == 0 and out.startswith(f"prune: would remove 1 conversation ({old} events)")
    assert tracker_db.count() == before
    code, out, _ = review("prune", "--older-than", "90")
    assert out.startswith(f"prune: removed 1 conversation ({old} events) last active before")
    assert tracker_db.count() == before - old and tracker_db.count("visitor-old") == 0
    code, out, _ = review("prune")  # REVIEW_RETENTION_DAYS, else 90: nothing left that old
    assert out.startswith("prune: removed 0 conversations (0 events)") and "(90 days)" in out


def test_prune_takes_its_default_from_the_environment_and_works_in_batches(review, tracker_db, monkeypatch):
    now = time.time()
    for n in range(7):
        tracker_db.add(f"idle-{n}", [*session(now - 10 * DAY_S), user("hi", "greet", 0.9, now - 10 * DAY_S)])
    # a visitor idle for long who came back today keeps everything
    tracker_db.add("came-back", [*session(now - 40 * DAY_S), user("hi", "greet", 0.9, now - 40 * DAY_S),
                                 user("me again", "greet", 0.9, now - 60)])
    monkeypatch.setenv("REVIEW_RETENTION_DAYS", "5")
    code, out, _ = review("prune", "--batch-size", "3")
    assert out.startswith("prune: removed 8 conversations (") and "(5 days)" in out  # 7 idle + visitor-old
    assert tracker_db.count("came-back") == 5 and tracker_db.count("idle-0") == 0
    monkeypatch.setenv("REVIEW_RETENTION_DAYS", "zero")
    code, _, err = review("prune")
    assert code == 2 and "REVIEW_RETENTION_DAYS" in err


def test_forget_deletes_the_visitors_events_store_rows_and_exported_files(review, tracker_db, tmp_path):
    with sqlite3.connect(tmp_path / "store.db") as store:
        store.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, sender_id TEXT, subject TEXT)")
        store.execute("CREATE TABLE feedback (id INTEGER PRIMARY KEY, sender_id TEXT, stars INTEGER)")
        store.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, email TEXT)")  # no sender_id: left alone
        store.executemany("INSERT INTO tickets (sender_id, subject) VALUES (?, ?)",
                          [("visitor-order", "late parcel"), ("visitor-order", "refund"), ("visitor-happy", "x")])
        store.execute("INSERT INTO feedback (sender_id, stars) VALUES ('visitor-order', 2)")
        store.execute("INSERT INTO orders VALUES ('RG-10421', 'anna.berg@example.com')")
    story, nlu, page = tmp_path / "story.yml", tmp_path / "nlu.yml", tmp_path / "report.html"
    review("export-story", "visitor-order", "--output", str(story))
    review("export-nlu", "--reason", "low_confidence,nlu_fallback", "--output", str(nlu))
    review("report", "--output", str(page))
    assert "check_order_status" in nlu.read_text() and "visitor-order" in page.read_text()
    events = tracker_db.count("visitor-order")

    code, out, _ = review("forget", "--sender", "visitor-order")
    assert code == 0
    assert out.strip() == (f"forget visitor-order: removed {events} tracker events, 1 feedback row, "
                           "2 tickets rows, 1 exported file deleted, 2 rewritten")
    assert tracker_db.count("visitor-order") == 0 and tracker_db.count("visitor-happy") > 0
    with sqlite3.connect(tmp_path / "store.db") as store:
        assert store.execute("SELECT sender_id FROM tickets").fetchall() == [("visitor-happy",)]
        assert store.execute("SELECT count(*) FROM feedback").fetchone() == (0,)
        assert store.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    assert not story.exists()
    rewritten = nlu.read_text()
    assert "check_order_status" not in rewritten and "product_search" in rewritten
    assert [i["intent"] for i in yaml.safe_load(rewritten)["nlu"]] == ["greet", "product_search"]
    html = page.read_text()
    assert "visitor-order" not in html and "visitor-fallback" in html
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())["files"]
    assert all("visitor-order" not in entry["senders"] for entry in manifest.values()) and len(manifest) == 2

    code, out, _ = review("forget", "--sender", "visitor-order")  # again: nothing left
    assert out.strip() == ("forget visitor-order: removed 0 tracker events, 0 feedback rows, 0 tickets rows, "
                           "0 exported files deleted, 0 rewritten")


def test_forget_without_a_store_database_forgets_the_tracker(review, tracker_db, tmp_path):
    code, out, _ = review("forget", "--sender", "visitor-silent", "--store-db", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 0 and out.startswith("forget visitor-silent: removed 5 tracker events, 0 exported files")
    assert not (tmp_path / "none.db").exists()


def test_a_missing_tracker_file_is_an_error_not_a_new_file(review, tmp_path):
    code, _, err = review("list", db=f"sqlite:///{tmp_path / 'nothing.db'}")
    assert code == 2 and "no SQLite database" in err and not (tmp_path / "nothing.db").exists()
    sqlite3.connect(tmp_path / "empty.db").close()
    code, _, err = review("list", db=f"sqlite:///{tmp_path / 'empty.db'}")
    assert code == 2 and "no `events` table" in err


def test_the_default_database_is_make_runs_or_rasas_postgresql():
    from review.settings import DEFAULT_TRACKER_DB, Settings
    from stack.services import StackConfig

    assert DEFAULT_TRACKER_DB == f"sqlite:///{StackConfig().run_dir / 'tracker.db'}"
    assert Settings.from_env({}).tracker_db == DEFAULT_TRACKER_DB
    settings = Settings.from_env({"DB_HOST": "db.internal", "DB_PORT": "5433", "DB_USER": "rasa",
                                  "DB_PASSWORD": "p@ss:word", "DB_NAME": "rasa", "ORDERS_DB_URL": "sqlite:///x.db"})
    assert settings.tracker_db == "postgresql+psycopg://rasa:p%40ss%3Aword@db.internal:5433/rasa"
    assert settings.store_db == "sqlite:///x.db" and settings.retention_days == 90
