"""`synthesize` writes grounded conversations that `prepare` reads, with enough declines and varied questions."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ridgeline import knowledge
from ridgeline.catalog import SOURCES_HEADING, read_catalog, with_sources
from ridgeline.grounding import check_grounding, cites_source, find_prices, is_decline, sources_in
from training import prepare, synthesize
from training.__main__ import main as training_main

SAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "training" / "sample-catalog.csv"
CONVERSATIONS = 200


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("synth")
    assert synthesize.main(["--output", str(output), "--catalog", str(SAMPLE_CATALOG), "--seed", "7",
                            "--conversations", str(CONVERSATIONS), "--validation-share", "0.1"]) == 0
    return output


@pytest.fixture(scope="module")
def records(synth_dir) -> list[dict]:
    return read_jsonl(synth_dir / "train.jsonl") + read_jsonl(synth_dir / "validation.jsonl")


def turns(record: dict):
    """(user message, reply, declined) per turn."""
    messages = record["messages"]
    for index in range(1, len(messages), 2):
        yield messages[index]["content"], messages[index + 1]["content"], record["meta"]["declined"][index // 2]


def test_split_and_summary(synth_dir, capsys):
    train, validation = read_jsonl(synth_dir / "train.jsonl"), read_jsonl(synth_dir / "validation.jsonl")
    assert (len(train), len(validation)) == (CONVERSATIONS - 20, 20)
    assert not {json.dumps(r["messages"]) for r in train} & {json.dumps(r["messages"]) for r in validation}
    readme = (synth_dir / "README.md").read_text()
    assert f"{CONVERSATIONS - 20} in train.jsonl, 20 in validation.jsonl" in readme and "declined" in readme


def test_every_conversation_is_what_the_action_server_sends(records):
    system_prompt = knowledge.load().system_prompt()
    catalog = read_catalog(SAMPLE_CATALOG)
    for record in records:
        messages = record["messages"]
        assert messages[0] == {"role": "system", "content": system_prompt}
        assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * ((len(messages) - 1) // 2)
        assert 1 <= (len(messages) - 1) // 2 <= 3
        for (user, _, _), kind in zip(turns(record), record["meta"]["kinds"]):
            sources = sources_in(user, catalog)
            question = user.split(f"\n\n{SOURCES_HEADING}")[0]
            assert user == with_sources(question, sources)
            assert len(sources) <= 4
            if kind != "not_sold":  # the answering products among distractors of their category
                assert sources and len({p.category for p in sources}) == 1, user


def test_every_reply_is_grounded_in_its_own_sources(records):
    catalog = read_catalog(SAMPLE_CATALOG)
    facts = knowledge.load()
    for record in records:
        for user, reply, declined in turns(record):
            sources = sources_in(user, catalog)
            verdict = check_grounding(reply, sources, catalog, allowed_text=facts.system_prompt(),
                                      store_name=facts.store_name)
            assert verdict.ok, (verdict.reason, user, reply)
            if declined:
                assert is_decline(reply, catalog, facts.store["support_email"], facts.store_name), reply
            else:
                assert cites_source(reply, sources), reply
                assert not is_decline(reply, catalog, facts.store["support_email"], facts.store_name), reply
                for price in find_prices(reply):  # quoted exactly as the sources write them
                    assert price.text in user or "cheaper" in reply, (price, reply)


def test_enough_declines_comparisons_and_follow_ups(records):
    kinds = Counter(kind for record in records for kind in record["meta"]["kinds"])
    declined = sum(sum(record["meta"]["declined"]) for record in records)
    assert declined / sum(kinds.values()) >= 0.15
    assert {"need_absent", "budget_absent", "not_sold", "cheaper_absent"} <= set(kinds)
    assert {"compare_weight", "compare_price", "cheaper", "recommend", "need", "budget", "price", "stock"} <= set(kinds)
    replies = [reply for record in records for _, reply, _ in turns(record)]
    assert any(" g lighter than the " in reply for reply in replies)
    assert any(reply.startswith("Yes: ") and "against £" in reply for reply in replies)


def test_questions_are_phrased_in_several_ways(records):
    openings = Counter(user.split()[0].lower() for record in records for user, _, _ in turns(record))
    assert len(openings) >= 10
    assert len({user.split("\n")[0] for record in records for user, _, _ in turns(record)}) > CONVERSATIONS


def test_the_same_seed_writes_the_same_files(synth_dir, tmp_path):
    assert synthesize.main(["--output", str(tmp_path), "--catalog", str(SAMPLE_CATALOG), "--seed", "7",
                            "--conversations", str(CONVERSATIONS)]) == 0
    assert (tmp_path / "train.jsonl").read_bytes() == (synth_dir / "train.jsonl").read_bytes()
    assert synthesize.main(["--output", str(tmp_path / "other"), "--catalog", str(SAMPLE_CATALOG), "--seed", "8",
                            "--conversations", "20"]) == 0
    assert (tmp_path / "other" / "train.jsonl").read_bytes() != (synth_dir / "train.jsonl").read_bytes()


def test_prepare_reads_the_output_unchanged(synth_dir, tmp_path):
    output = tmp_path / "prepared"
    assert prepare.main(["--input", str(synth_dir / "train.jsonl"), "--output", str(output),
                         "--val-fraction", "0.1"]) == 0
    stats = json.loads((output / "stats.json").read_text())
    assert stats["conversations"]["kept"] == CONVERSATIONS - 20
    assert set(stats["redactions"]) <= {"order_id"}  # the system prompt's example order number; it is replaced
    originals = {json.dumps(r["messages"]) for r in read_jsonl(synth_dir / "train.jsonl")}
    prepared = read_jsonl(output / "train.jsonl") + read_jsonl(output / "validation.jsonl")
    assert all(json.dumps(r["messages"]) in originals for r in prepared)


def test_the_cli_runs_it_and_refuses_bad_input(tmp_path, capsys):
    assert training_main(["synthesize", "--output", str(tmp_path / "a"), "--catalog", str(SAMPLE_CATALOG),
                          "--conversations", "5"]) == 0
    assert "Wrote 4 training and 1 validation conversations" in capsys.readouterr().out
    assert training_main(["synthesize", "--output", str(tmp_path / "b"), "--conversations", "0"]) == 2
    assert "--conversations must be 1 or more" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,name\nRO-1,x\n")
    assert training_main(["synthesize", "--output", str(tmp_path / "c"), "--catalog", str(bad)]) == 1
    assert "the header must be exactly" in capsys.readouterr().err
    assert training_main(["synthesize", "--output", str(tmp_path / "d"), "--catalog", str(tmp_path / "none.csv")]) == 1
