"""`prepare`: every input format to chat messages, clear errors, redaction, dedup, split sizes, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ridgeline import knowledge
from tests.training.conftest import SHORT_SYSTEM_PROMPT, chat, read_jsonl, write_jsonl
from training import prepare
from training.config import PrepareArgs


def run(tmp_path: Path, *inputs, extra=(), system_prompt_file=None, output="out") -> tuple[int, Path]:
    out = tmp_path / output
    argv = ["--input", *map(str, inputs), "--output", str(out), *extra]
    if system_prompt_file:
        argv += ["--system-prompt-file", str(system_prompt_file)]
    return prepare.main(argv), out


def all_conversations(out: Path) -> list[list[dict]]:
    rows = read_jsonl(out / "train.jsonl") + read_jsonl(out / "validation.jsonl")
    return [row["messages"] for row in sorted(rows, key=lambda r: r["source"])]


def turns(conversations):
    """The user/assistant turns, without the system message."""
    return [[(m["role"], m["content"]) for m in messages[1:]] for messages in conversations]


# --- formats ---------------------------------------------------------------------------------------


def test_openai_jsonl_gets_the_action_servers_system_prompt(tmp_path):
    source = write_jsonl(tmp_path / "chats.jsonl", [
        chat("Which tent?", "A three season tent."),
        {"messages": [{"role": "system", "content": "You are a pirate."},
                      {"role": "user", "content": [{"type": "text", "text": "Boots?"}]},
                      {"role": "assistant", "content": "Leather boots."}]},
    ])
    code, out = run(tmp_path, source, extra=["--val-fraction", "0"])
    assert code == 0
    rows = read_jsonl(out / "train.jsonl")
    expected_prompt = knowledge.load().system_prompt()
    assert [row["messages"][0] for row in rows] == [{"role": "system", "content": expected_prompt}] * 2
    assert turns(row["messages"] for row in rows) == [
        [("user", "Which tent?"), ("assistant", "A three season tent.")],
        [("user", "Boots?"), ("assistant", "Leather boots.")],
    ]
    assert rows[0]["source"] == f"{source}:1"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["system_messages_replaced"] == 1
    assert (out / "validation.jsonl").read_text() == ""


def test_keep_system_keeps_a_conversations_own_system_message(tmp_path, system_prompt_file):
    source = write_jsonl(tmp_path / "chats.jsonl", [
        {"messages": [{"role": "system", "content": "You are a pirate."}, *chat("Hi", "Arr.")["messages"]]},
        chat("Hello", "Hello there."),
    ])
    code, out = run(tmp_path, source, extra=["--val-fraction", "0", "--keep-system"],
                    system_prompt_file=system_prompt_file)
    assert code == 0
    systems = [row["messages"][0]["content"] for row in read_jsonl(out / "train.jsonl")]
    assert systems == ["You are a pirate.", SHORT_SYSTEM_PROMPT]


def test_sharegpt_json_and_jsonl(tmp_path, system_prompt_file):
    records = [
        {"conversations": [{"from": "human", "value": "Gaiters?"}, {"from": "gpt", "value": "They keep snow out."},
                           {"from": "human", "value": "Sizes?"}, {"from": "gpt", "value": "S to XL."}]},
        {"conversations": [{"from": "system", "value": "ignored"}, {"from": "user", "value": "Mat?"},
                           {"from": "assistant", "value": "R-value 4."}]},
    ]
    (tmp_path / "sharegpt.json").write_text(json.dumps(records, indent=2))
    write_jsonl(tmp_path / "sharegpt.jsonl", [{"conversations": [{"from": "human", "value": "Stove?"},
                                                                 {"from": "gpt", "value": "Liquid fuel."}]}])
    code, out = run(tmp_path, tmp_path / "sharegpt.json", tmp_path / "sharegpt.jsonl",
                    extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    assert turns(all_conversations(out)) == [
        [("user", "Gaiters?"), ("assistant", "They keep snow out."), ("user", "Sizes?"), ("assistant", "S to XL.")],
        [("user", "Mat?"), ("assistant", "R-value 4.")],
        [("user", "Stove?"), ("assistant", "Liquid fuel.")],
    ]


def test_csv_text_column_in_both_autotrain_styles(tmp_path, system_prompt_file):
    marked = "### Human: Which tent?\n### Assistant: A light one.\n### Human: Colour?\n### Assistant: Green."
    as_json = json.dumps([{"role": "user", "content": "Boots?"}, {"role": "assistant", "content": "Leather."}])
    source = tmp_path / "text.csv"
    import csv

    with open(source, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerow([marked])
        writer.writerow([as_json])
    code, out = run(tmp_path, source, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    assert turns(all_conversations(out)) == [
        [("user", "Which tent?"), ("assistant", "A light one."), ("user", "Colour?"), ("assistant", "Green.")],
        [("user", "Boots?"), ("assistant", "Leather.")],
    ]


def test_csv_prompt_response_columns(tmp_path, system_prompt_file):
    source = tmp_path / "pairs.csv"
    source.write_text('prompt,response\nHow to dry boots?,"Stuff them with paper, away from heat."\n'
                      '"Multi-line\nquestion?",Short answer.\n')
    code, out = run(tmp_path, source, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    assert turns(read_jsonl(out / "train.jsonl")[i]["messages"] for i in range(2)) == [
        [("user", "How to dry boots?"), ("assistant", "Stuff them with paper, away from heat.")],
        [("user", "Multi-line\nquestion?"), ("assistant", "Short answer.")],
    ]


def test_a_folder_reads_every_supported_file(tmp_path, system_prompt_file):
    folder = tmp_path / "exports"
    (folder / "sub").mkdir(parents=True)
    write_jsonl(folder / "a.jsonl", [chat("One?", "One.")])
    (folder / "sub" / "b.csv").write_text("prompt,response\nTwo?,Two.\n")
    (folder / "notes.txt").write_text("not data")
    code, out = run(tmp_path, folder, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    assert len(read_jsonl(out / "train.jsonl")) == 2


# --- tracker store ---------------------------------------------------------------------------------


def make_tracker_store(path: Path) -> str:
    """A Rasa 3.6 SQL tracker store with two senders, sessions, an LLM outage apology and personal data."""
    from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, create_engine, insert

    url = f"sqlite:///{path}"
    engine = create_engine(url)
    metadata = MetaData()
    events = Table("events", metadata, Column("id", Integer, primary_key=True), Column("sender_id", String(255)),
                   Column("type_name", String(255)), Column("timestamp", Float), Column("intent_name", String(255)),
                   Column("action_name", String(255)), Column("data", Text))
    metadata.create_all(engine)
    clock = iter(range(1_700_000_000, 1_800_000_000, 7))

    def event(sender, type_name, intent=None, action=None, **data):
        timestamp = float(next(clock))
        body = {"event": type_name, "timestamp": timestamp, **data}
        return {"sender_id": sender, "type_name": type_name, "timestamp": timestamp, "intent_name": intent,
                "action_name": action, "data": json.dumps(body)}

    def user(sender, text, intent="open_question"):
        return event(sender, "user", intent=intent, text=text,
                     parse_data={"intent": {"name": intent, "confidence": 0.9}, "entities": []})

    def bot(sender, text, utter_action="utter_llm"):
        return event(sender, "bot", text=text, metadata={"utter_action": utter_action}, data={})

    def action(sender, name):
        return event(sender, "action", action=name, name=name, policy="RulePolicy", confidence=1.0)

    rows = [
        action("slack-U123", "action_session_start"), event("slack-U123", "session_started"),
        action("slack-U123", "action_listen"),
        bot("slack-U123", "Hi! I'm Sherpa.", "utter_greet"),  # a greeting before the user spoke: dropped
        user("slack-U123", "Where is my order RG-10421? Mail me at anna.berg@example.com", "check_order_status"),
        action("slack-U123", "order_status_form"),
        bot("slack-U123", "Order RG-10421 has shipped. Questions? Call +44 20 7946 0321."),
        event("slack-U123", "slot", name="order_id", value="RG-10421"),
        user("slack-U123", "Thanks! My phone is 07700 900123."),
        bot("slack-U123", "Noted."),
        bot("slack-U123", "Anything else?"),  # two bot messages in a row: joined
        event("slack-U123", "session_started"),  # a new session: a new conversation
        user("slack-U123", "Which stove for winter?"),
        bot("slack-U123", "Sorry, I can't answer that right now.", "utter_llm_unavailable"),  # not learned
        user("slack-U123", "Which tent for winter?"),
        bot("slack-U123", "A four season tent."),
        # a verdict on that reply and its thanks (ridgeline.feedback): not conversation, not learned
        event("slack-U123", "user", intent="feedback", text='/feedback{"verdict":"up","reply_id":"0123456789ab"}',
              parse_data={"intent": {"name": "feedback", "confidence": 1.0}, "entities": [
                  {"entity": "verdict", "value": "up"}, {"entity": "reply_id", "value": "0123456789ab"}]}),
        bot("slack-U123", "Thanks for telling us, it helps us improve.", "utter_feedback_thanks"),
        user("web-42", "Do you ship to Norway?", "faq"),
        bot("web-42", "We ship to the UK, the EU, Norway and Switzerland.", "utter_faq/shipping"),
        user("web-42", "bye", "goodbye"),  # unanswered: dropped
    ]
    with engine.begin() as connection:
        connection.execute(insert(events), rows)
    engine.dispose()
    return url


def test_tracker_store_conversations_are_split_cleaned_and_redacted(tmp_path, system_prompt_file):
    url = make_tracker_store(tmp_path / "rasa.db")
    code, out = run(tmp_path, url, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    rows = read_jsonl(out / "train.jsonl")
    assert [turns([row["messages"]])[0] for row in rows] == [
        [("user", "Where is my order <ORDER_ID>? Mail me at <EMAIL>"),
         ("assistant", "Order <ORDER_ID> has shipped. Questions? Call +44 20 7946 0321."),
         ("user", "Thanks! My phone is <PHONE>."),
         ("assistant", "Noted.\nAnything else?")],
        [("user", "Which tent for winter?"), ("assistant", "A four season tent.")],
        [("user", "Do you ship to Norway?"), ("assistant", "We ship to the UK, the EU, Norway and Switzerland.")],
    ]
    text = (out / "train.jsonl").read_text()
    assert "slack-U123" not in text and "RG-10421" not in text and "anna.berg" not in text
    stats = json.loads((out / "stats.json").read_text())
    assert stats["redactions"] == {"email": 1, "order_id": 2, "phone": 1}
    assert list(stats["inputs"]) == [url]


def test_every_input_is_redacted_by_default(tmp_path, system_prompt_file, capsys):
    source = write_jsonl(tmp_path / "chats.jsonl", [
        chat("I am jane.doe@example.com, order RG-10421, call me on 07700 900123", "Thanks, Jane."),
    ])
    code, out = run(tmp_path, source, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    text = (out / "train.jsonl").read_text()
    assert "jane.doe@example.com" not in text and "RG-10421" not in text and "07700 900123" not in text
    assert "I am <EMAIL>, order <ORDER_ID>, call me on <PHONE>" in text
    assert json.loads((out / "stats.json").read_text())["redactions"] == {"email": 1, "order_id": 1, "phone": 1}
    captured = capsys.readouterr()
    assert "redacted: email 1, order_id 1, phone 1" in captured.out
    assert "warning" not in captured.err


def test_redaction_can_be_switched_off_with_a_warning_or_narrowed_to_the_tracker_store(
    tmp_path, system_prompt_file, capsys
):
    url = make_tracker_store(tmp_path / "rasa.db")
    source = write_jsonl(tmp_path / "chats.jsonl", [chat("I am bob@example.org", "Hi Bob.")])
    code, out = run(tmp_path, url, source, extra=["--val-fraction", "0", "--redact", "none"],
                    system_prompt_file=system_prompt_file)
    text = (out / "train.jsonl").read_text()
    assert code == 0 and "RG-10421" in text and "bob@example.org" in text
    assert "warning: --redact none keeps emails" in capsys.readouterr().err
    code, out = run(tmp_path, url, source, extra=["--val-fraction", "0", "--redact", "tracker"],
                    system_prompt_file=system_prompt_file, output="out2")
    text = (out / "train.jsonl").read_text()
    assert code == 0 and "RG-10421" not in text and "bob@example.org" in text
    assert "warning: --redact tracker redacts tracker-store conversations only" in capsys.readouterr().err


def test_a_database_without_events_table_is_a_clear_error(tmp_path, capsys):
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE orders (id INTEGER)"))
    engine.dispose()
    code, out = run(tmp_path, f"sqlite:///{tmp_path / 'other.db'}")
    assert code == 1
    assert "no 'events' table; is it a Rasa SQL tracker store?" in capsys.readouterr().err
    assert not out.exists()


# --- malformed input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    [
        ("bad.jsonl", '{"messages": [{"role": "user", "content": "Hi"}]}\n\n{"messages": [\n', 3, "not valid JSON"),
        ("role.jsonl", '{"messages": [{"role": "robot", "content": "Hi"}]}\n', 1,
         "message 1 has role 'robot'; expected system, user or assistant"),
        ("keys.jsonl", '{"prompt": "Hi"}\n', 1, "neither 'messages' (OpenAI format) nor 'conversations'"),
        ("list.json", '[\n  {"conversations": [{"from": "human", "value": "a"}]},\n  {"conversations": '
                      '[{"from": "alien", "value": "b"}]}\n]\n', 3, "turn 1 is from 'alien'"),
        ("syntax.json", '[\n  {"conversations": [{"from": "human", "value": "a"}]},\n  {"conversations": [}\n]',
         3, "not valid JSON"),
        ("columns.csv", "question,answer\nHi,Hello\n", 1, "needs a 'text' column, or 'prompt' and 'response'"),
        ("row.csv", "prompt,response\nHi,Hello\nHow?,\n", 3, "the prompt or the response is empty"),
        ("extra.csv", "prompt,response\nHi,Hello,oops\n", 2, "the row has 3 fields, the header 2"),
        ("text.csv", "text\nno markers here\n", 2, "neither a JSON list of messages nor turns marked"),
    ],
)
def test_malformed_input_names_file_and_line_and_writes_nothing(tmp_path, capsys, name, content, line, message):
    source = tmp_path / name
    source.write_text(content)
    code, out = run(tmp_path, source)
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {source}:{line}: "), error
    assert message in error
    assert not (out / "train.jsonl").exists()


def test_unsupported_and_missing_inputs(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert run(tmp_path, tmp_path / "notes.txt")[0] == 1
    assert "unsupported file type" in capsys.readouterr().err
    assert run(tmp_path, tmp_path / "missing.jsonl")[0] == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_skip_invalid_skips_and_lists_bad_records(tmp_path, system_prompt_file):
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join([json.dumps(chat("One?", "One.")), "{broken", json.dumps({"x": 1}),
                                 json.dumps(chat("Two?", "Two."))]) + "\n")
    code, out = run(tmp_path, source, extra=["--val-fraction", "0", "--skip-invalid"],
                    system_prompt_file=system_prompt_file)
    assert code == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["conversations"]["invalid_skipped"] == 2
    assert [e.split(": ")[0] for e in stats["invalid"]] == [f"{source}:2", f"{source}:3"]
    assert len(read_jsonl(out / "train.jsonl")) == 2


# --- cleaning, dedup, split ------------------------------------------------------------------------


def test_empty_turns_duplicates_and_unanswered_turns_are_dropped(tmp_path, system_prompt_file):
    records = [
        chat("Which tent?", "A light one."),
        chat("  which   TENT? ", "a light one."),  # duplicate up to case and whitespace
        {"messages": [{"role": "assistant", "content": "Welcome!"}, {"role": "user", "content": "Boots?"},
                      {"role": "user", "content": "   "}, {"role": "user", "content": "Size 42?"},
                      {"role": "assistant", "content": ""}, {"role": "assistant", "content": "Yes, 42."},
                      {"role": "user", "content": "Thanks"}]},
        {"messages": [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": " "}]},  # no reply
    ]
    source = write_jsonl(tmp_path / "chats.jsonl", records)
    code, out = run(tmp_path, source, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    assert turns(read_jsonl(out / "train.jsonl")[i]["messages"] for i in range(2)) == [
        [("user", "Which tent?"), ("assistant", "A light one.")],
        [("user", "Boots?\nSize 42?"), ("assistant", "Yes, 42.")],
    ]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["conversations"]["duplicates_dropped"] == 1
    assert stats["conversations"]["no_reply_dropped"] == 1
    assert stats["empty_turns_dropped"] == 3
    assert stats["conversations"]["kept"] == 2


@pytest.mark.parametrize(("count", "fraction", "validation"), [(20, 0.1, 2), (20, 0.25, 5), (7, 0.1, 1), (2, 0.5, 1),
                                                             (10, 0.0, 0)])
def test_split_sizes(tmp_path, system_prompt_file, count, fraction, validation):
    source = write_jsonl(tmp_path / "chats.jsonl", [chat(f"Question {i}?", f"Answer {i}.") for i in range(count)])
    code, out = run(tmp_path, source, extra=["--val-fraction", str(fraction)], system_prompt_file=system_prompt_file)
    assert code == 0
    train, val = read_jsonl(out / "train.jsonl"), read_jsonl(out / "validation.jsonl")
    assert (len(train), len(val)) == (count - validation, validation)
    assert {r["source"] for r in train}.isdisjoint(r["source"] for r in val)
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["conversations"]["train"], stats["conversations"]["validation"]) == (count - validation, validation)


def test_a_single_conversation_cannot_be_split(tmp_path, capsys, system_prompt_file):
    source = write_jsonl(tmp_path / "chats.jsonl", [chat("One?", "One.")])
    code, _ = run(tmp_path, source, system_prompt_file=system_prompt_file)
    assert code == 1
    assert "a validation split needs at least 2 (or pass --val-fraction 0)" in capsys.readouterr().err


def test_same_inputs_and_seed_give_identical_files(tmp_path, system_prompt_file):
    source = write_jsonl(tmp_path / "chats.jsonl", [chat(f"Question {i}?", f"Answer {i}.") for i in range(30)])
    outputs = [run(tmp_path, source, extra=["--seed", str(seed)], system_prompt_file=system_prompt_file,
                   output=name)[1] for name, seed in (("a", 7), ("b", 7), ("c", 8))]
    first, again, other = ((o / "validation.jsonl").read_bytes() for o in outputs)
    assert first == again
    assert (outputs[0] / "train.jsonl").read_bytes() == (outputs[1] / "train.jsonl").read_bytes()
    assert (outputs[0] / "stats.json").read_bytes() == (outputs[1] / "stats.json").read_bytes()
    assert first != other


# --- configuration ---------------------------------------------------------------------------------


def test_config_file_values_are_defaults_that_flags_override(tmp_path, system_prompt_file):
    source = write_jsonl(tmp_path / "chats.jsonl", [chat(f"Question {i}?", f"Answer {i}.") for i in range(10)])
    config = tmp_path / "prepare.yaml"
    config.write_text(f"input: [{source}]\noutput: {tmp_path / 'from-file'}\nval_fraction: 0.5\n"
                      f"system_prompt_file: {system_prompt_file}\n")
    assert prepare.main(["--config", str(config)]) == 0
    assert len(read_jsonl(tmp_path / "from-file" / "validation.jsonl")) == 5
    assert prepare.main(["--config", str(config), "--val-fraction", "0.2"]) == 0
    assert len(read_jsonl(tmp_path / "from-file" / "validation.jsonl")) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--val-fraction", "1.5"], "--val-fraction must be at least 0 and below 1"),
        (["--redact", "some"], "argument --redact: invalid choice: 'some'"),
        (["--order-id-pattern", "RG-("], "--order-id-pattern is not a valid regular expression"),
        (["--config", "missing.yaml"], "--config missing.yaml: no such file"),
        (["--store-facts", "missing.yml"], "--store-facts: No store facts at missing.yml"),
        (["--system-prompt-file", "missing.txt"], "--system-prompt-file missing.txt: no such file"),
    ],
)
def test_invalid_settings_say_what_to_change(tmp_path, capsys, argv, message):
    code = prepare.main(["--input", "x.jsonl", "--output", str(tmp_path / "o"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_unknown_config_key_is_an_error(tmp_path, capsys):
    config = tmp_path / "prepare.yaml"
    config.write_text("input: [x.jsonl]\noutput: o\nval_fractoin: 0.2\n")
    assert prepare.main(["--config", str(config)]) == 2
    assert "val_fractoin" in capsys.readouterr().err


def test_defaults_match_the_action_server():
    args = PrepareArgs(input=["x"], output="o")
    from ridgeline.paths import STORE_FACTS as DEFAULT_STORE_FACTS

    assert Path(args.store_facts) == DEFAULT_STORE_FACTS
    assert "utter_llm_unavailable" in args.exclude_responses


def test_the_sample_folder_make_finetune_demo_reads_holds_only_training_inputs(tmp_path):
    """`make finetune-demo` runs prepare on the whole folder: every file in it must be a conversation or
    preference input (a catalog CSV there once stopped the demo at its first step)."""
    samples = Path(__file__).resolve().parents[2] / "training" / "samples"
    code, out = run(tmp_path, samples)
    assert code == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["conversations"]["kept"] == 30
    assert stats["preferences"]["kept"] == 12
    assert stats["preferences"]["train"] + stats["preferences"]["validation"] == 12
