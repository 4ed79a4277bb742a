"""`evaluate --grounding`: exact figures on scripted replies; with the tiny model the command runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ridgeline import knowledge
from ridgeline.catalog import read_catalog, with_sources
from training import evaluate, synthesize

SAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "training" / "sample-catalog.csv"
CATALOG = read_catalog(SAMPLE_CATALOG)
BY_SKU = {p.sku: p for p in CATALOG}
STORE = knowledge.load()
EMAIL = STORE.store["support_email"]
TRAILHEAD_1, TRAILHEAD_2, STORM = BY_SKU["RO-10001"], BY_SKU["RO-10002"], BY_SKU["RO-10004"]
EMBER_5, EMBER_0 = BY_SKU["RO-10011"], BY_SKU["RO-10012"]


def conversation(question: str, sources, reference: str) -> dict:
    return {"messages": [{"role": "system", "content": STORE.system_prompt()},
                         {"role": "user", "content": with_sources(question, sources)},
                         {"role": "assistant", "content": reference}]}


SCRIPT = [  # (conversation, the scripted model's reply)
    (conversation("Which tent for two?", [TRAILHEAD_2, STORM], "The Ridgeline Trailhead 2 (RO-10002) at £189.00."),
     "Take the Ridgeline Trailhead 2 (RO-10002), £189.00; UK delivery is £3.95."),
    (conversation("Which is lighter?", [TRAILHEAD_1, TRAILHEAD_2], "The Ridgeline Trailhead 1 (RO-10001) is lighter."),
     "The Ridgeline Trailhead 1 (RO-10001) is 300 g lighter and 40 quid cheaper."),
    (conversation("How much is the Ember 5?", [EMBER_5, EMBER_0], "The Ridgeline Ember 5 (RO-10011) costs £89.00."),
     "The Ember 5 is £79 this week."),
    (conversation("Do you sell kayaks?", [], f"Sorry, we don't have kayaks. Email {EMAIL}."),
     f"I'm afraid we don't sell kayaks; {EMAIL} can help."),
]


@pytest.fixture()
def script_file(tmp_path) -> Path:
    path = tmp_path / "validation.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c, _ in SCRIPT), encoding="utf-8")
    return path


def test_scoring_scripted_replies_gives_exact_figures(script_file):
    cases = evaluate.grounding_cases(script_file, CATALOG, STORE)
    assert [c.answerable for c in cases] == [True, True, True, False]
    assert cases[0].sources == [TRAILHEAD_2, STORM] and cases[3].sources == []
    score = evaluate.score_grounding(cases, [reply for _, reply in SCRIPT], CATALOG, STORE)
    assert score["figures"] == {
        "replies": 4, "answerable": 3, "absent": 1,
        "cites_source": 0.5,              # replies 1 and 2
        "invented_price": 0.25,           # £79 for a £89.00 bag
        "invented_sku_or_product": 0.0,
        "grounded": 0.75,                 # £3.95 is in the store facts, £40 the difference of two sources
        "decline_accuracy": 1.0,          # the kayak question
        "false_declines": 0.0,
    }
    assert score["replies"][2]["reason"] == "invented: price £79 is in neither the sources nor the store facts"


def test_a_reply_may_name_what_an_earlier_turn_showed(tmp_path):
    record = conversation("Which tent for two?", [TRAILHEAD_2, STORM], "The Ridgeline Trailhead 2 (RO-10002).")
    record["messages"] += [{"role": "user", "content": with_sources("And a warm bag?", [EMBER_0, EMBER_5])},
                           {"role": "assistant", "content": "The Ridgeline Ember 0 (RO-10012) at £139.00."}]
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps(record) + "\n")
    (case,) = evaluate.grounding_cases(path, CATALOG, STORE)
    assert case.sources == [EMBER_0, EMBER_5] and case.shown == [EMBER_0, EMBER_5, TRAILHEAD_2, STORM]
    reply = "The Ridgeline Ember 0 (RO-10012), £139.00, suits the Ridgeline Trailhead 2 (RO-10002, £189.00)."
    figures = evaluate.score_grounding([case], [reply], CATALOG, STORE)["figures"]
    assert figures["grounded"] == 1.0 and figures["cites_source"] == 1.0


def test_invented_products_and_wrong_declines_are_counted(script_file):
    cases = evaluate.grounding_cases(script_file, CATALOG, STORE)
    replies = ["We don't have that, sorry.", "The Northwind Storm 2 (RO-10004) is lighter.",
               "The Ridgeline Ember 9 (RO-10099) is on sale.", "Try the Cairn Foam Roll (RO-10072) instead."]
    figures = evaluate.score_grounding(cases, replies, CATALOG, STORE)["figures"]
    assert figures["cites_source"] == 0.0
    assert figures["invented_sku_or_product"] == 0.75
    assert figures["decline_accuracy"] == 0.0 and figures["false_declines"] == pytest.approx(1 / 3, abs=1e-4)
    with pytest.raises(ValueError, match="3 replies for 4 questions"):
        evaluate.score_grounding(cases, replies[:3], CATALOG, STORE)


def test_the_report_with_an_injected_model(script_file, tmp_path):
    args = evaluate.GroundingArgs(model="scripted", data=str(script_file), output=str(tmp_path / "out"),
                                  catalog=str(SAMPLE_CATALOG))
    replies = {c["messages"][1]["content"]: reply for c, reply in SCRIPT}
    report = evaluate.grounding_report(args, generate=lambda messages: replies[messages[-1]["content"]])
    assert report["results"]["model"]["cites_source"] == 0.5
    written = json.loads((tmp_path / "out" / evaluate.GROUNDING_JSON).read_text())
    assert written["results"] == report["results"] and len(written["generations"]) == 4
    markdown = (tmp_path / "out" / evaluate.GROUNDING_MD).read_text()
    assert "| cites a source SKU | 0.50 |" in markdown and "| declines when the answer is absent | 1.00 |" in markdown


def test_a_catalog_without_the_sources_is_refused(script_file, tmp_path, capsys):
    other = tmp_path / "catalog.csv"
    lines = SAMPLE_CATALOG.read_text().splitlines()
    other.write_text("\n".join(line for line in lines if "RO-10004" not in line) + "\n")
    code = evaluate.main(["--grounding", "--model", "scripted", "--data", str(script_file), "--catalog", str(other),
                          "--output", str(tmp_path / "o")])
    assert code == 1
    assert "conversation 1: source RO-10004 not in the catalog" in capsys.readouterr().err
    assert evaluate.main(["--grounding", "--model", "m", "--data", str(tmp_path / "none.jsonl"),
                          "--output", str(tmp_path)]) == 2
    assert "run `python -m training synthesize" in capsys.readouterr().err


@pytest.mark.slow
def test_the_command_runs_end_to_end_with_the_tiny_model(tiny_model_dir, tmp_path, capsys):
    synth = tmp_path / "synth"
    assert synthesize.main(["--output", str(synth), "--catalog", str(SAMPLE_CATALOG), "--conversations", "20",
                            "--validation-share", "0.2"]) == 0
    output = tmp_path / "eval"
    code = evaluate.main(["--grounding", "--model", str(tiny_model_dir), "--data", str(synth / "validation.jsonl"),
                          "--catalog", str(SAMPLE_CATALOG), "--output", str(output), "--limit", "2",
                          "--max-new-tokens", "6"])
    assert code == 0
    assert "| cites a source SKU |" in capsys.readouterr().out
    report = json.loads((output / evaluate.GROUNDING_JSON).read_text())
    assert report["conversations"] == 2 and set(report["results"]) == {"model"}
    figures = report["results"]["model"]
    assert figures["replies"] == 2 and 0 <= figures["cites_source"] <= 1
    assert all(sample["model"]["reply"] is not None for sample in report["generations"])
