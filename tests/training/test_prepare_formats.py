"""`prepare` on SQuAD and on preference pairs: the messages written, declines, redaction, errors, split, stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ridgeline import knowledge
from ridgeline.catalog import read_catalog
from ridgeline.grounding import is_decline
from ridgeline.paths import CATALOG_FILE
from tests.training.conftest import SHORT_SYSTEM_PROMPT, chat, read_jsonl, write_jsonl
from training import prepare
from training.formats import DataError, file_kind, read_file, read_records
from training.preference_data import PreferencePair
from training.squad import PASSAGES_HEADING, UNANSWERABLE_REPLY, with_passages

DATA = Path(__file__).parent / "data"
SQUAD_V1 = DATA / "squad_v1.json"
SQUAD_V2 = DATA / "squad_v2.json"
REJECTED_TEXT_CSV = DATA / "autotrain_rejected_text.csv"
PROMPT_CHOSEN_CSV = DATA / "prompt_chosen_rejected.csv"
TRL_JSONL = DATA / "trl_preferences.jsonl"
SYSTEM = {"role": "system", "content": SHORT_SYSTEM_PROMPT}
TENT = ("A four season tent has a stronger frame and fewer mesh panels than a three season tent, so it stands up "
        "to snow loads and winter wind.")
POLES = ("Trekking poles take weight off your knees on steep descents and help you balance on river crossings.")


def run(tmp_path: Path, *inputs, extra=(), system_prompt_file=None, output="out") -> tuple[int, Path]:
    out = tmp_path / output
    argv = ["--input", *map(str, inputs), "--output", str(out), *extra]
    if system_prompt_file:
        argv += ["--system-prompt-file", str(system_prompt_file)]
    return prepare.main(argv), out


def user(content: str) -> dict:
    return {"role": "user", "content": content}


def assistant(content: str) -> dict:
    return {"role": "assistant", "content": content}


def stats_of(out: Path) -> dict:
    return json.loads((out / "stats.json").read_text())


def pairs_of(out: Path) -> list[dict]:
    return read_jsonl(out / "preferences_train.jsonl") + read_jsonl(out / "preferences_validation.jsonl")


# --- SQuAD -----------------------------------------------------------------------------------------


def test_the_passage_block_mirrors_the_action_servers_sources_block():
    assert with_passages("Who?", [("Tent", "A tent."), ("", "No title.")]) == (
        f"Who?\n\n{PASSAGES_HEADING}\n[1] Tent: A tent.\n[2] No title."
    )
    assert with_passages("Who?", []) == "Who?"


def test_squad_v1_gives_one_conversation_per_question_with_the_passage_and_the_answer_span(
    tmp_path, system_prompt_file
):
    code, out = run(tmp_path, SQUAD_V1, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    rows = read_jsonl(out / "train.jsonl")
    assert rows == [
        {"messages": [SYSTEM, user(f"What does a four season tent stand up to?\n\n{PASSAGES_HEADING}\n"
                                   f"[1] Four season tent: {TENT}"),
                      assistant("snow loads and winter wind")],
         "source": f"{SQUAD_V1}:10"},
        {"messages": [SYSTEM, user(f"Does a four season tent have more mesh panels?\n\n{PASSAGES_HEADING}\n"
                                   f"[1] Four season tent: {TENT}"),
                      assistant("fewer mesh panels")],
         "source": f"{SQUAD_V1}:17"},
        {"messages": [SYSTEM, user(f"Which fill keeps some warmth when damp?\n\n{PASSAGES_HEADING}\n[1] Sleeping "
                                   "bag: Down fill packs small and stays warm when dry; synthetic fill keeps some "
                                   "warmth when it gets damp."),
                      assistant("synthetic fill")],
         "source": f"{SQUAD_V1}:35"},
    ]
    assert stats_of(out)["conversations"]["read"] == 3
    assert not (out / "preferences_train.jsonl").exists()


def test_squad_v2_unanswerable_questions_get_a_decline_that_grounding_recognises(tmp_path, system_prompt_file):
    code, out = run(tmp_path, SQUAD_V2, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    rows = read_jsonl(out / "train.jsonl")
    assert [(row["source"], row["messages"][-1]["content"]) for row in rows] == [
        (f"{SQUAD_V2}:4", "on steep descents"),
        (f"{SQUAD_V2}:6", UNANSWERABLE_REPLY),  # "is_impossible": true
        (f"{SQUAD_V2}:8", UNANSWERABLE_REPLY),  # no answers, in a v2.0 file
    ]
    assert rows[1]["messages"][1] == user(f"What are trekking poles made of?\n\n{PASSAGES_HEADING}\n"
                                          f"[1] Trekking poles: {POLES}")
    facts = knowledge.load()
    catalog = read_catalog(CATALOG_FILE)
    assert is_decline(rows[1]["messages"][-1]["content"], catalog, facts.store["support_email"], facts.store_name)
    assert not is_decline(rows[0]["messages"][-1]["content"], catalog, facts.store["support_email"],
                          facts.store_name)


def squad(*questions, version="1.1", context="The tent weighs two kilos.") -> str:
    """A pretty-printed SQuAD file: the paragraph's object starts on line 7, its questions from line 10."""
    return json.dumps({"version": version, "data": [{"title": "Tent", "paragraphs": [
        {"context": context, "qas": list(questions)}]}]}, indent=2)


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (squad({"id": "a", "question": "How heavy?", "answers": [{"text": "two kilos", "answer_start": 3}]}), 10,
         "answer 1's 'answer_start' 3 points at ' tent wei', not at 'two kilos'; fix answer_start (the text "
         "starts at 16)"),
        (squad({"id": "a", "question": "How heavy?", "answers": [{"text": "three kilos", "answer_start": 16}]}), 10,
         "the context does not hold that text"),
        (squad({"id": "a", "question": "How heavy?", "answers": [{"text": "two kilos", "answer_start": 16}]},
               {"id": "b", "answers": [{"text": "two", "answer_start": 16}]}), 20,
         "the question has no 'question' text"),
        (squad({"id": "a", "question": "How heavy?", "answers": []}), 10,
         "the question has no answers; a SQuAD v1.1 question needs at least one"),
        (squad({"id": "a", "question": "How heavy?", "answers": [{"text": "two kilos", "answer_start": 16}],
                "is_impossible": True}, version="v2.0"), 10, "marked \"is_impossible\": true but has answers"),
        (squad({"id": "a", "question": "How heavy?", "answers": [{"text": "two", "answer_start": 16}]},
               context=""), 7, "the paragraph has no 'context' text"),
        ('{"version": "1.1", "data": [{"title": "Tent", "paragraphs": [\n  {"context": "x", "qas": [}\n]}]}', 2,
         "not valid JSON"),
        ('{"data": {"title": "Tent"}}', 1, "'data' must be a list of articles"),
    ],
)
def test_malformed_squad_names_file_and_line(tmp_path, capsys, content, line, message):
    source = tmp_path / "squad.json"
    source.write_text(content)
    code, out = run(tmp_path, source)
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {source}:{line}: "), error
    assert message in error
    assert not out.exists()


def test_skip_invalid_skips_a_bad_squad_question_and_keeps_the_others(tmp_path, system_prompt_file):
    source = tmp_path / "squad.json"
    wrong, right = ({"id": name, "question": "How heavy?", "answers": [{"text": "two kilos", "answer_start": start}]}
                    for name, start in (("a", 0), ("b", 16)))
    source.write_text(squad(wrong, right))
    code, out = run(tmp_path, source, extra=["--val-fraction", "0", "--skip-invalid"],
                    system_prompt_file=system_prompt_file)
    assert code == 0
    assert [row["source"] for row in read_jsonl(out / "train.jsonl")] == [f"{source}:20"]
    stats = stats_of(out)
    assert stats["conversations"]["invalid_skipped"] == 1
    assert stats["invalid"][0].startswith(f"{source}:10: answer 1's 'answer_start' 0")


# --- preference pairs: reading ---------------------------------------------------------------------


def test_each_preference_shape_reads_to_a_prompt_ending_with_the_user_and_two_replies():
    assert [file_kind(str(path)) for path in (SQUAD_V1, REJECTED_TEXT_CSV, PROMPT_CHOSEN_CSV, TRL_JSONL)] == [
        "conversations", "preferences", "preferences", "preferences"]
    assert list(read_records(str(REJECTED_TEXT_CSV))) == [
        PreferencePair([user("Which tent for winter?"), assistant("A four season tent."), user("Is it heavy?")],
                       "It weighs more than a three season tent, but it stands up to snow.", "No idea.",
                       f"{REJECTED_TEXT_CSV}:2"),
        PreferencePair([user("Do you sell kayaks?")], "Sorry, we don't have kayaks in our catalogue.",
                       "Yes, we have plenty of kayaks.", f"{REJECTED_TEXT_CSV}:9"),
    ]
    assert list(read_records(str(TRL_JSONL))) == [
        PreferencePair([user("Which stove works in deep cold?")],
                       "A liquid fuel stove works better in deep cold than a gas canister stove.",
                       "Any stove will do.", f"{TRL_JSONL}:1"),
        PreferencePair([{"role": "system", "content": "You are a pirate."}, user("Which mat for winter?"),
                        assistant("An insulated mat."), user("How warm?")],
                       "Look for an R-value of 4 or more.", "Very warm.", f"{TRL_JSONL}:2"),
        PreferencePair([user("Do you ship to Norway?")], "Yes, we ship to Norway.", "Only within the UK.",
                       f"{TRL_JSONL}:3"),  # the implicit prompt
        PreferencePair([user("How should boots fit?")], "Snug at the heel, with room for your toes.",
                       "Tight everywhere.", f"{TRL_JSONL}:4"),  # chosen repeats the prompt: cut off
    ]


def test_read_file_keeps_reading_conversations_only():
    assert len(list(read_file(str(SQUAD_V2)))) == 3
    with pytest.raises(DataError, match="holds preference pairs"):
        list(read_file(str(TRL_JSONL)))


def test_a_pair_in_a_file_of_conversations_says_to_move_it(tmp_path):
    source = write_jsonl(tmp_path / "mixed.jsonl", [chat("Hi?", "Hello."), {"prompt": "Hi?", "chosen": "A.",
                                                                            "rejected": "B."}])
    with pytest.raises(DataError, match=r"mixed.jsonl:2: a preference pair \(chosen and rejected\) in a file of "
                                        "conversations; put the pairs in a file of their own"):
        list(read_records(str(source)))


def test_autotrain_dpo_csv_with_prompt_text_and_rejected_text_columns():
    source = DATA / "autotrain_dpo.csv"
    assert [(pair.prompt, pair.chosen, pair.rejected) for pair in read_records(str(source))] == [
        ([user("Can I cook in my tent?")], "Cook outside the tent to avoid carbon monoxide and fire.", "Sure."),
    ]


TRL_MALFORMED = [
    ({"prompt": "Hi?", "chosen": " ", "rejected": "No."}, "the chosen reply is empty; give the reply to prefer"),
    ({"prompt": "Hi?", "chosen": "Hello.", "rejected": ""}, "the rejected reply is empty; give the reply to avoid"),
    ({"prompt": "Hi?", "chosen": "Hello  there.", "rejected": "Hello there."},
     "chosen and rejected are the same reply; a pair needs two different replies"),
    ({"prompt": [user("Hi?"), assistant("Hello.")], "chosen": "A.", "rejected": "B."},
     "the prompt ends with a assistant turn; it must end with the user message that chosen and rejected reply to"),
    ({"prompt": "Hi?", "chosen": "Hello."}, "the record lacks 'rejected'"),
    ({"prompt": "Hi?", "chosen": [user("Bye?"), assistant("Bye.")], "rejected": "No."},
     "'chosen' holds a turn that is not the assistant's and does not start with the prompt"),
    ({"chosen": [user("Hi?"), assistant("A.")], "rejected": [user("Hello?"), assistant("B.")]},
     "the chosen and rejected conversations differ before their last user turn"),
    ({"chosen": "A.", "rejected": "B."}, "without a 'prompt', 'chosen' and 'rejected' must be whole conversations"),
    ({"prompt": 3, "chosen": "A.", "rejected": "B."}, "'prompt' is a int; make it a string or a list of messages"),
    ({"prompt": "Hi?", "chosen": [{"role": "robot", "content": "A."}], "rejected": "B."},
     "'chosen' message 1 has role 'robot'"),
]


@pytest.mark.parametrize(("record", "message"), TRL_MALFORMED)
def test_malformed_trl_pairs_name_file_and_line(tmp_path, capsys, record, message):
    source = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "Ok?", "chosen": "Yes.", "rejected": "No."}, record])
    code, out = run(tmp_path, source)
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {source}:2: "), error
    assert message in error
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("prompt,chosen\nHi?,Hello.\n", 1, "a preference CSV needs 'text' and 'rejected_text' columns"),
        ("prompt,chosen,rejected\nHi?,Hello.,No.\n,Hello.,No.\n", 3, "the prompt is empty"),
        ('text,rejected_text\n"### Human: Hi?\n### Assistant: Hello.","### Human: Hey?\n### Assistant: No."\n', 2,
         "the chosen and rejected conversations differ before their last user turn"),
        ("text,rejected_text\n### Human: Hi?,no markers\n", 2,
         "the rejected_text column is neither a JSON list of messages nor turns marked"),
        ("prompt,chosen,rejected\nHi?,Hello.,No.,extra\n", 2, "the row has 4 fields, the header 3"),
    ],
)
def test_malformed_preference_csv_names_file_and_line(tmp_path, capsys, content, line, message):
    source = tmp_path / "pairs.csv"
    source.write_text(content)
    code, _ = run(tmp_path, source)
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {source}:{line}: "), error
    assert message in error


# --- preference pairs: prepare's output ------------------------------------------------------------


def test_pairs_are_written_in_the_trl_conversational_shape_with_the_sft_system_prompt(tmp_path, system_prompt_file):
    code, out = run(tmp_path, TRL_JSONL, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    lines = (out / "preferences_train.jsonl").read_text().splitlines()
    assert [list(json.loads(line)) for line in lines] == [["prompt", "chosen", "rejected", "source"]] * 4
    assert json.loads(lines[1]) == {
        "prompt": [SYSTEM, user("Which mat for winter?"), assistant("An insulated mat."), user("How warm?")],
        "chosen": [assistant("Look for an R-value of 4 or more.")],
        "rejected": [assistant("Very warm.")],
        "source": f"{TRL_JSONL}:2",
    }
    assert json.loads(lines[2]) == {"prompt": [SYSTEM, user("Do you ship to Norway?")],
                                    "chosen": [assistant("Yes, we ship to Norway.")],
                                    "rejected": [assistant("Only within the UK.")], "source": f"{TRL_JSONL}:3"}
    assert (out / "preferences_validation.jsonl").read_text() == ""
    # Pairs only: the SFT files are there, and empty.
    assert (out / "train.jsonl").read_text() == "" and (out / "validation.jsonl").read_text() == ""
    assert stats_of(out)["system_messages_replaced"] == 1


def test_keep_system_keeps_a_pairs_own_system_message(tmp_path, system_prompt_file):
    code, out = run(tmp_path, TRL_JSONL, extra=["--val-fraction", "0", "--keep-system"],
                    system_prompt_file=system_prompt_file)
    assert code == 0
    assert [pair["prompt"][0]["content"] for pair in pairs_of(out)] == [
        SHORT_SYSTEM_PROMPT, "You are a pirate.", SHORT_SYSTEM_PROMPT, SHORT_SYSTEM_PROMPT]


def test_pairs_are_redacted_like_conversations_and_the_store_contacts_kept(tmp_path, system_prompt_file, capsys):
    code, out = run(tmp_path, PROMPT_CHOSEN_CSV, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    pairs = pairs_of(out)
    assert pairs[1]["chosen"] == [assistant("Yes, I'll send it to <EMAIL>; for anything else write to "
                                            "help@ridgeline-outfitters.example.")]
    assert "anna.berg" not in (out / "preferences_train.jsonl").read_text()
    assert stats_of(out)["redactions"] == {"email": 1}
    assert "redacted: email 1" in capsys.readouterr().out

    code, out = run(tmp_path, PROMPT_CHOSEN_CSV, extra=["--val-fraction", "0", "--redact", "none"],
                    system_prompt_file=system_prompt_file, output="unredacted")
    assert code == 0
    assert "anna.berg@example.com" in pairs_of(out)[1]["chosen"][0]["content"]


def test_a_pair_whose_replies_differ_only_in_personal_data_is_dropped(tmp_path, system_prompt_file):
    source = write_jsonl(tmp_path / "pairs.jsonl", [
        {"prompt": "Where do I write?", "chosen": "To bob@example.org.", "rejected": "To eve@example.org."},
        {"prompt": "Which tent?", "chosen": "A light one.", "rejected": "Any."},
    ])
    code, out = run(tmp_path, source, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    assert [pair["source"] for pair in pairs_of(out)] == [f"{source}:2"]
    assert stats_of(out)["preferences"]["same_after_redaction_dropped"] == 1


def test_every_input_together_splits_pairs_like_conversations_and_counts_them(tmp_path, system_prompt_file, capsys):
    inputs = (SQUAD_V1, SQUAD_V2, REJECTED_TEXT_CSV, PROMPT_CHOSEN_CSV, TRL_JSONL)
    code, out = run(tmp_path, *inputs, extra=["--val-fraction", "0.25", "--seed", "3"],
                    system_prompt_file=system_prompt_file)
    assert code == 0
    train, validation = read_jsonl(out / "preferences_train.jsonl"), read_jsonl(out / "preferences_validation.jsonl")
    assert (len(train), len(validation)) == (6, 2)  # 9 read, 1 duplicate ("how do I dry wet boots?")
    assert {p["source"] for p in train}.isdisjoint(p["source"] for p in validation)
    assert f"{PROMPT_CHOSEN_CSV}:4" not in {p["source"] for p in train + validation}
    stats = stats_of(out)
    assert stats["preferences"] == {"read": 9, "invalid_skipped": 0, "same_after_redaction_dropped": 0,
                                    "duplicates_dropped": 1, "kept": 8, "train": 6, "validation": 2}
    assert stats["conversations"]["read"] == 6
    assert (stats["conversations"]["train"], stats["conversations"]["validation"]) == (4, 2)
    assert stats["inputs"][str(PROMPT_CHOSEN_CSV)] == {"pairs_duplicates_dropped": 1, "pairs_kept": 2,
                                                       "pairs_read": 3}
    assert ("Wrote 4 training and 2 validation conversations, and 6 training and 2 validation preference pairs"
            in capsys.readouterr().out)
    again = run(tmp_path, *inputs, extra=["--val-fraction", "0.25", "--seed", "3"],
                system_prompt_file=system_prompt_file, output="again")[1]
    assert (again / "preferences_validation.jsonl").read_bytes() == (out / "preferences_validation.jsonl").read_bytes()


def test_a_single_pair_goes_to_training_rather_than_failing(tmp_path, system_prompt_file):
    conversations = write_jsonl(tmp_path / "chats.jsonl", [chat(f"Question {i}?", f"Answer {i}.") for i in range(10)])
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}])
    code, out = run(tmp_path, conversations, pairs, system_prompt_file=system_prompt_file)
    assert code == 0
    assert len(read_jsonl(out / "preferences_train.jsonl")) == 1
    assert (out / "preferences_validation.jsonl").read_text() == ""
    assert len(read_jsonl(out / "validation.jsonl")) == 1


def test_without_pairs_no_preference_file_is_written_and_an_old_one_is_removed(tmp_path, system_prompt_file, capsys):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}])
    conversations = write_jsonl(tmp_path / "chats.jsonl", [chat("One?", "One.")])
    assert run(tmp_path, pairs, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)[0] == 0
    capsys.readouterr()
    code, out = run(tmp_path, conversations, extra=["--val-fraction", "0"], system_prompt_file=system_prompt_file)
    assert code == 0
    assert not (out / "preferences_train.jsonl").exists() and not (out / "preferences_validation.jsonl").exists()
    assert "preference" not in capsys.readouterr().out
    assert stats_of(out)["preferences"]["read"] == 0


def test_skip_invalid_skips_bad_pairs_and_counts_them_apart(tmp_path, system_prompt_file):
    source = tmp_path / "pairs.jsonl"
    source.write_text("\n".join([json.dumps({"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}),
                                 "{broken", json.dumps({"prompt": "Hi?", "chosen": "Same.", "rejected": "Same."}),
                                 json.dumps({"prompt": "Tent?", "chosen": "A light one.", "rejected": "No."})]) + "\n")
    code, out = run(tmp_path, source, extra=["--val-fraction", "0", "--skip-invalid"],
                    system_prompt_file=system_prompt_file)
    assert code == 0
    stats = stats_of(out)
    assert stats["preferences"]["invalid_skipped"] == 2 and stats["conversations"]["invalid_skipped"] == 0
    assert [e.split(": ")[0] for e in stats["invalid"]] == [f"{source}:2", f"{source}:3"]
    assert [pair["source"] for pair in pairs_of(out)] == [f"{source}:1", f"{source}:4"]


def test_inputs_without_conversations_or_pairs_are_an_error(tmp_path, capsys, system_prompt_file):
    source = write_jsonl(tmp_path / "chats.jsonl", [{"messages": [user("Hello?"), assistant(" ")]}])
    code, _ = run(tmp_path, source, system_prompt_file=system_prompt_file)
    assert code == 1
    assert "no conversation with at least one user message and one reply, and no preference pair" in (
        capsys.readouterr().err)


def test_the_unsupported_file_type_error_names_every_format(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert run(tmp_path, tmp_path / "notes.txt")[0] == 1
    error = capsys.readouterr().err
    for words in ("SQuAD", "TRL preference pairs", "text + rejected_text", "prompt + chosen + rejected"):
        assert words in error
