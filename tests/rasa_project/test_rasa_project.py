"""The Rasa project (rasa_project/): data structure, validation, story tests, NLU holdout
(by intent, and by the handler each held-out utterance reaches), the FAQ confidence gate.

The fast tests read the YAML with PyYAML only. The slow ones call the Rasa CLI of
`.venv-rasa` (override with RASA_VENV) against the model that `make rasa-model`
trains into rasa_project/models/assistant.tar.gz; without that model they fail
and say how to build it. Results are written under pytest's tmp_path, never
into the repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "rasa_project"
MODEL = PROJECT / "models" / "assistant.tar.gz"

MIN_EXAMPLES_PER_INTENT = 20
# Measured 2026-12-02 on the 2-core development machine: 0.936 intent accuracy and 0.954
# response-selection accuracy on the holdout (313 utterances, rasa_project/tests/nlu_holdout.yml);
# was 0.89 / 0.94 on the earlier 10-per-intent holdout. Leave a little room for retraining
# noise, but catch a real regression. The handler targets are further down.
MIN_HOLDOUT_INTENT_ACCURACY = 0.90
MIN_HOLDOUT_RESPONSE_ACCURACY = 0.90

# Warnings Rasa 3.6 raises on this project that are not mistakes in the data:
# * the validator does not know that the form (utter_ask_*) and custom actions
#   (utter_invalid_*, utter_handoff, utter_llm_unavailable, utter_message_truncated) utter
#   responses, nor that the channels (ridgeline_rasa/channels/gate.py) say utter_no_reply and utter_slow_down, nor
#   that Rasa's action_restart says utter_restart;
# * the importer re-adds the retrieval intent `faq` from the NLU data to the
#   domain and reports it as a duplicate (without it in the domain, the story
#   reader warns instead).
KNOWN_VALIDATE_WARNINGS = {
    "The following duplicated intents have been found across multiple domain files: faq",
    *(
        f"The utterance '{name}' is not used in any story or rule."
        for name in (
            "utter_ask_order_id",
            "utter_ask_email",
            "utter_ask_handoff_contact",
            "utter_invalid_order_id",
            "utter_invalid_email",
            "utter_handoff",
            "utter_llm_unavailable",
            "utter_message_truncated",
            "utter_no_reply",
            "utter_restart",
            "utter_slow_down",
        )
    ),
}

FAQ_KEYS = ("returns", "shipping", "payment", "warranty", "contact_hours")


# ---------------------------------------------------------------- helpers


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _examples(block: dict) -> list[str]:
    return [
        line.strip()[2:].strip()
        for line in block.get("examples", "").splitlines()
        if line.strip().startswith("- ")
    ]


def _nlu_examples(paths) -> dict[str, list[str]]:
    """Intent (faq/returns kept whole) -> examples, over all given NLU files."""
    out: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        for block in _load(path).get("nlu", []):
            if "intent" in block:
                out[block["intent"]].extend(_examples(block))
    return out


def _domain() -> dict:
    """The domain directory merged the simple way: lists concatenated, dicts updated."""
    merged: dict = defaultdict(dict)
    for path in sorted((PROJECT / "domain").glob("*.yml")):
        for key, value in _load(path).items():
            if isinstance(value, list):
                merged.setdefault(key, [])
                merged[key] = list(merged[key] or []) + value
            elif isinstance(value, dict):
                merged[key] = {**(merged.get(key) or {}), **value}
    return dict(merged)


def _intent_names(domain: dict) -> set[str]:
    return {i if isinstance(i, str) else next(iter(i)) for i in domain.get("intents", [])}


def _steps(path: Path, key: str) -> list[list[dict]]:
    """The step lists (condition included) of every story/rule in the file."""
    return [
        item.get("condition", []) + item.get("steps", [])
        for item in _load(path).get(key, [])
    ]


def _dialogue_steps() -> list[dict]:
    steps: list[dict] = []
    for path, key in (
        (PROJECT / "data" / "rules.yml", "rules"),
        (PROJECT / "data" / "stories.yml", "stories"),
        (PROJECT / "tests" / "test_stories.yml", "stories"),
    ):
        for story in _steps(path, key):
            steps.extend(story)
    return steps


def _strip_annotations(text: str) -> str:
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).strip().lower()


def _rasa_cli() -> Path:
    venv = Path(os.environ.get("RASA_VENV", REPO / ".venv-rasa"))
    if not venv.is_absolute():
        venv = REPO / venv
    rasa = venv / "bin" / "rasa"
    if not rasa.exists():
        pytest.fail(f"Rasa is not installed at {rasa}: run `make setup` (or set RASA_VENV).")
    return rasa


def _model() -> Path:
    if not MODEL.exists():
        pytest.fail(f"No trained Rasa model at {MODEL}: run `make rasa-model` first.")
    return MODEL


def _run_rasa(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "RASA_TELEMETRY_ENABLED": "false",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    }
    return subprocess.run(
        [str(_rasa_cli()), *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _tail(proc: subprocess.CompletedProcess, n: int = 60) -> str:
    return "\n".join((proc.stdout + proc.stderr).splitlines()[-n:])


# ---------------------------------------------------------------- fast: structure


def test_every_intent_has_enough_varied_examples():
    examples = _nlu_examples((PROJECT / "data" / "nlu").glob("*.yml"))
    expected = (
        _intent_names(_domain()) - {"faq"} | {f"faq/{key}" for key in FAQ_KEYS}
    )
    assert expected <= set(examples), f"no NLU data for {sorted(expected - set(examples))}"
    for intent, texts in examples.items():
        if intent in BUTTON_ONLY_INTENTS:
            continue
        assert len(texts) >= MIN_EXAMPLES_PER_INTENT, f"{intent}: only {len(texts)} examples"
        dupes = {t for t in texts if texts.count(t) > 1}
        assert not dupes, f"{intent}: duplicated examples {sorted(dupes)}"


def test_button_only_intents_are_examples_of_their_payload_alone():
    """A verdict (ridgeline.feedback) is only ever a button's payload, which Rasa parses without the NLU:
    its few examples are there for `rasa data validate`, and are the payload's shape, never typed words."""
    from ridgeline import feedback

    examples = _nlu_examples((PROJECT / "data" / "nlu").glob("*.yml"))
    assert BUTTON_ONLY_INTENTS == {feedback.INTENT}
    assert examples[feedback.INTENT] and all(feedback.is_feedback_text(t) for t in examples[feedback.INTENT])


def _normalised(text: str) -> str:
    """Annotations dropped, lower case, punctuation and spacing ignored: "No, that's it!" == "no thats it"."""
    return " ".join(re.findall(r"[a-z0-9]+", _strip_annotations(text).replace("'", "")))


def test_normalised_text_ignores_case_punctuation_spacing_and_annotations():
    assert _normalised("No, that's  everything thanks!") == _normalised("no that's everything, thanks")
    assert _normalised("where is [RG-10421](order_id)?") == _normalised("Where is rg 10421")
    assert _normalised("fleece or softshell") != _normalised("fleece or hardshell")


MIN_HOLDOUT_PER_INTENT = 20
# Intents only a button sends (a payload Rasa parses without the NLU): no typed examples to have or hold out.
BUTTON_ONLY_INTENTS = {"feedback"}
MIN_HOLDOUT_OPEN_QUESTIONS = 60


def _holdout_leaks(training_files, holdout_file) -> list[str]:
    training = {
        _normalised(t)
        for texts in _nlu_examples(training_files).values()
        for t in texts
    }
    holdout = _nlu_examples([holdout_file])
    return sorted(t for texts in holdout.values() for t in texts if _normalised(t) in training)


def test_holdout_is_not_in_the_training_data():
    leaked = _holdout_leaks((PROJECT / "data" / "nlu").glob("*.yml"), PROJECT / "tests" / "nlu_holdout.yml")
    assert not leaked, f"holdout examples also in data/nlu/ (compared normalised): {leaked}"


def test_the_leak_check_catches_a_copied_example_written_differently(tmp_path):
    training = tmp_path / "train.yml"
    holdout = tmp_path / "holdout.yml"
    training.write_text('version: "3.1"\nnlu:\n  - intent: deny\n    examples: |\n'
                        "      - no, that's everything thanks\n      - nope\n")
    holdout.write_text('version: "3.1"\nnlu:\n  - intent: deny\n    examples: |\n'
                       "      - No that's everything, thanks!\n      - not today\n")
    assert _holdout_leaks([training], holdout) == ["No that's everything, thanks!"]


def test_holdout_covers_every_intent_and_every_faq_answer():
    holdout = _nlu_examples([PROJECT / "tests" / "nlu_holdout.yml"])
    texts = [_normalised(t) for ts in holdout.values() for t in ts]
    assert len(texts) == len(set(texts)), "duplicated holdout examples"
    by_intent: dict[str, int] = defaultdict(int)
    for intent, ts in holdout.items():
        by_intent[intent.split("/")[0]] += len(ts)
    expected = _intent_names(_domain()) - BUTTON_ONLY_INTENTS
    assert set(by_intent) == expected, f"holdout intents {sorted(by_intent)} != domain {sorted(expected)}"
    assert {i for i in holdout if i.startswith("faq/")} == {f"faq/{key}" for key in FAQ_KEYS}
    for intent, count in by_intent.items():
        assert count >= MIN_HOLDOUT_PER_INTENT, f"holdout {intent}: only {count} examples"
    assert by_intent["open_question"] >= MIN_HOLDOUT_OPEN_QUESTIONS


def test_every_faq_sub_intent_has_a_response():
    responses = _domain().get("responses", {})
    nlu_faq = {
        i for i in _nlu_examples((PROJECT / "data" / "nlu").glob("*.yml")) if i.startswith("faq/")
    }
    assert nlu_faq == {f"faq/{key}" for key in FAQ_KEYS}
    for intent in nlu_faq:
        assert f"utter_{intent}" in responses, f"no response utter_{intent} in domain/"


def test_stories_and_rules_only_use_what_the_domain_defines():
    domain = _domain()
    responses = set(domain.get("responses", {}))
    actions = set(domain.get("actions", [])) | set(domain.get("forms", {}))
    builtin = {"action_listen", "action_deactivate_loop", "action_restart"}
    intents = _intent_names(domain) | {"nlu_fallback"}
    slots = set(domain.get("slots", {})) | {"requested_slot"}
    for step in _dialogue_steps():
        if "action" in step:
            name = step["action"]
            if name.startswith("utter_"):
                assert name in responses or f"{name}/" in " ".join(responses), (
                    f"response {name} is used but not defined"
                )
            else:
                assert name in actions | builtin, f"action {name} is used but not in the domain"
        if "intent" in step:
            base = step["intent"].split("/")[0]
            assert base in intents, f"intent {step['intent']} is used but not in the domain"
        if "active_loop" in step and step["active_loop"] is not None:
            assert step["active_loop"] in domain.get("forms", {})
        for slot_event in step.get("slot_was_set", []):
            name = slot_event if isinstance(slot_event, str) else next(iter(slot_event))
            assert name in slots, f"slot {name} is set but not in the domain"


def test_every_intent_is_handled_and_tested():
    domain_intents = _intent_names(_domain()) | {"nlu_fallback"}
    trained = {
        s["intent"].split("/")[0]
        for path, key in (
            (PROJECT / "data" / "rules.yml", "rules"),
            (PROJECT / "data" / "stories.yml", "stories"),
        )
        for story in _steps(path, key)
        for s in story
        if "intent" in s
    }
    tested = {
        s["intent"]
        for story in _steps(PROJECT / "tests" / "test_stories.yml", "stories")
        for s in story
        if "intent" in s
    }
    assert domain_intents <= trained, f"no rule/story for {sorted(domain_intents - trained)}"
    tested_base = {i.split("/")[0] for i in tested}
    assert domain_intents <= tested_base, f"no test story for {sorted(domain_intents - tested_base)}"
    missing_faq = {f"faq/{key}" for key in FAQ_KEYS} - tested
    assert not missing_faq, f"no test story for {sorted(missing_faq)}"


def test_order_form_matches_the_action_server_contract():
    domain = _domain()
    assert domain["forms"]["order_status_form"]["required_slots"] == ["order_id", "email"]
    for name in ("validate_order_status_form", "action_check_order_status",
                 "action_llm_response", "action_human_handoff"):
        assert name in domain["actions"]
    for name in ("utter_ask_order_id", "utter_ask_email", "utter_invalid_order_id",
                 "utter_invalid_email", "utter_llm_unavailable", "utter_handoff",
                 "utter_greet", "utter_anything_else"):
        assert name in domain["responses"]
    slots = domain["slots"]
    for name in ("order_id", "email"):
        assert slots[name]["influence_conversation"] is False
        assert slots[name]["mappings"] == [{"type": "from_entity", "entity": name}]
    assert slots["handoff_requested"]["mappings"][0]["type"] == "custom"


def test_order_id_regex_accepts_the_ways_users_type_it():
    regexes = {
        block["regex"]: _examples(block)[0]
        for block in _load(PROJECT / "data" / "nlu" / "regex.yml")["nlu"]
    }
    order = re.compile(regexes["order_id"], re.IGNORECASE)
    for text in ("RG-10421", "rg10421", "RG 10421", "where is Rg-10421?"):
        assert order.search(text), text
    for text in ("RG-1042", "RG-104211", "XRG-10421"):
        assert not order.search(text), text
    email = re.compile(regexes["email"], re.IGNORECASE)
    assert email.search("it's anna.b+gear@example.co.uk").group(0) == "anna.b+gear@example.co.uk"


# ---------------------------------------------------------------- slow: the Rasa CLI


@pytest.mark.slow
def test_rasa_data_validate_is_clean():
    proc = _run_rasa("data", "validate", "--domain", "domain", "--fail-on-warnings")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, _tail(proc)
    warnings = {
        m.group(1).strip()
        for m in re.finditer(r"UserWarning: (.*)", output)
    }
    unexpected = sorted(w for w in warnings if w not in KNOWN_VALIDATE_WARNINGS)
    assert not unexpected, "rasa data validate warns:\n" + "\n".join(unexpected)


@pytest.mark.slow
def test_story_tests_pass(tmp_path):
    model = _model()
    out = tmp_path / "core"
    # --e2e makes Rasa parse the stories' user text with the model, so intents
    # (faq sub-intents included) and entities are checked too, not only actions.
    proc = _run_rasa(
        "test", "core", "--e2e",
        "--stories", "tests/test_stories.yml",
        "--model", str(model),
        "--fail-on-prediction-errors",
        "--out", str(out),
    )
    assert proc.returncode == 0, _tail(proc, 80)


@pytest.mark.slow
def test_nlu_generalises_to_the_holdout_set(tmp_path):
    model = _model()
    out = tmp_path / "holdout"
    proc = _run_rasa(
        "test", "nlu",
        "--nlu", "tests/nlu_holdout.yml",
        "--model", str(model),
        "--out", str(out),
    )
    assert proc.returncode == 0, _tail(proc)
    intents = json.loads((out / "intent_report.json").read_text())
    responses = json.loads((out / "response_selection_report.json").read_text())
    skip = {"accuracy", "macro avg", "weighted avg", "micro avg"}
    print(f"\nholdout intent accuracy {intents['accuracy']:.3f}, "
          f"macro F1 {intents['macro avg']['f1-score']:.3f}")
    for name, row in sorted(intents.items()):
        if name not in skip:
            print(f"  {name:20} F1 {row['f1-score']:.3f}  (n={row['support']})")
    print(f"holdout faq response selection accuracy {responses['accuracy']:.3f}")
    for name, row in sorted(responses.items()):
        if name not in skip:
            print(f"  {name:20} F1 {row['f1-score']:.3f}  (n={row['support']})")
    assert intents["accuracy"] >= MIN_HOLDOUT_INTENT_ACCURACY
    assert responses["accuracy"] >= MIN_HOLDOUT_RESPONSE_ACCURACY


# ---------------------------------------------------------------- the handler each held-out turn reaches

# Issue 11 item 5's targets, scored by the handler (response or action) a held-out utterance
# reaches as the first message of a fresh conversation (python -m scripts.designer holdout).
MIN_HOLDOUT_OVERALL = 0.92        # every held-out utterance
MIN_HOLDOUT_OPEN_TO_LLM = 0.90    # open questions answered by action_llm_response
MIN_HOLDOUT_IN_DOMAIN = 0.92      # the other intents, faq by its answer (utter_faq/<key>)
MAX_HOLDOUT_OPEN_TO_FAQ = 0.05    # open questions answered with a canned store-policy text


def _row(expected_intent: str, handler: str) -> dict:
    from scripts.designer import expected_handler

    expected = expected_handler(expected_intent)
    return {"expected_intent": expected_intent, "expected": expected, "handler": handler,
            "correct": handler == expected}


def test_holdout_scores_count_handlers_not_intents():
    from scripts.designer import holdout_misses, holdout_scores

    rows = [
        _row("open_question", "action_llm_response"),
        _row("open_question", "utter_faq/warranty"),   # the defect: a canned answer to an open question
        _row("open_question", "utter_greet"),
        _row("open_question", "action_llm_response"),
        _row("faq/returns", "utter_faq/returns"),
        _row("faq/returns", "utter_faq/shipping"),     # right intent, wrong answer: wrong handler
        _row("faq/payment", "action_llm_response"),
        _row("check_order_status", "order_status_form"),
        _row("greet", "utter_greet"),
        _row("deny", "utter_goodbye"),
    ]
    scores = holdout_scores(rows)
    assert scores["open_to_llm"] == 0.5 and scores["open_to_faq"] == 0.25
    assert scores["in_domain"] == 4 / 6 and scores["overall"] == 6 / 10
    assert scores["per_intent"]["faq/returns"] == [1, 2]
    misses = holdout_misses(scores)
    assert len(misses) == 4 and any(m.startswith("open_to_faq") for m in misses)
    perfect = holdout_scores([_row("open_question", "action_llm_response"), _row("thank", "utter_youre_welcome")])
    assert holdout_misses(perfect) == []


def test_the_gate_threshold_outcomes_trade_withheld_answers_against_wrong_ones():
    from scripts.designer import gated_outcomes

    rows = [
        {"expected_intent": "faq/returns", "intent": "faq", "faq_response": "faq/returns", "faq_confidence": 0.9},
        {"expected_intent": "faq/returns", "intent": "faq", "faq_response": "faq/returns", "faq_confidence": 0.4},
        {"expected_intent": "faq/payment", "intent": "faq", "faq_response": "faq/shipping", "faq_confidence": 0.45},
        {"expected_intent": "open_question", "intent": "faq", "faq_response": "faq/warranty", "faq_confidence": 0.6},
        {"expected_intent": "open_question", "intent": "open_question", "faq_response": None, "faq_confidence": None},
    ]
    assert gated_outcomes(rows, 0.0) == {"faq_right": 2, "faq_wrong_answer": 1, "faq_to_llm": 0, "n_faq": 3,
                                         "other_to_faq": 1, "other_saved": 0, "n_other": 2}
    assert gated_outcomes(rows, 0.5) == {"faq_right": 1, "faq_wrong_answer": 0, "faq_to_llm": 2, "n_faq": 3,
                                         "other_to_faq": 1, "other_saved": 0, "n_other": 2}
    assert gated_outcomes(rows, 0.7)["other_saved"] == 1


def _rasa_python() -> Path:
    return _rasa_cli().with_name("python")


@pytest.mark.slow
def test_the_faq_gate_sends_unsure_store_policy_answers_to_the_llm():
    """FaqConfidenceGate (ridgeline_rasa/faq_gate.py) on Rasa's own Message objects."""
    script = r"""
import json, sys
from ridgeline_rasa.faq_gate import FaqConfidenceGate
from rasa.shared.nlu.training_data.message import Message

def message(intent, confidence, response_confidence):
    m = Message(data={"text": "x", "intent": {"name": intent, "confidence": confidence},
                      "intent_ranking": [{"name": intent, "confidence": confidence},
                                         {"name": "open_question", "confidence": 1 - confidence}]})
    if response_confidence is not None:
        m.set("response_selector", {"faq": {"response": {"intent_response_key": "faq/returns",
                                                          "confidence": response_confidence}}})
    return m

gate = FaqConfidenceGate({**FaqConfidenceGate.get_default_config(), "threshold": 0.6})
out = gate.process([message("faq", 0.9, 0.95), message("faq", 0.9, 0.4), message("faq", 0.8, None),
                    message("open_question", 0.7, 0.1), message("faq", 0.9, 0.6)])
print(json.dumps([[m.get("intent"), [r["name"] for r in m.get("intent_ranking")]] for m in out]))
try:
    FaqConfidenceGate({**FaqConfidenceGate.get_default_config(), "threshold": 1.5})
    print("no error")
except ValueError:
    print("ValueError")
"""
    proc = subprocess.run([str(_rasa_python()), "-c", script, str(PROJECT)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, _tail(proc)
    lines = proc.stdout.strip().splitlines()
    (sure, unsure, no_answer, other, at_threshold) = json.loads(lines[-2])
    assert sure[0] == {"name": "faq", "confidence": 0.9}
    assert unsure[0] == {"name": "nlu_fallback", "confidence": 0.6}
    assert unsure[1] == ["nlu_fallback", "faq", "open_question"]
    assert no_answer[0]["name"] == "nlu_fallback"
    assert other[0] == {"name": "open_question", "confidence": 0.7}
    assert at_threshold[0]["name"] == "faq"
    assert lines[-1] == "ValueError"


def test_the_pipeline_gates_faq_answers_after_the_response_selector():
    names = [c["name"] for c in _load(PROJECT / "config.yml")["pipeline"]]
    gate = names.index("ridgeline_rasa.faq_gate.FaqConfidenceGate")
    assert names.index("ResponseSelector") < gate
    threshold = next(c for c in _load(PROJECT / "config.yml")["pipeline"] if c["name"].endswith("FaqConfidenceGate"))
    assert 0.0 < threshold["threshold"] < 1.0
    # The Rasa image trains and serves with it: the build stage, which the training stage starts
    # from, installs the extension; the old name (components.*) stays for models trained before.
    dockerfile = (REPO / "docker" / "rasa.Dockerfile").read_text()
    assert "RUN /opt/rasa/bin/pip install --no-deps /src/packaging/ridgeline-rasa" in dockerfile
    assert "FROM build AS train" in dockerfile
    assert "COPY rasa_project/components /app/components" in dockerfile


@pytest.mark.slow
def test_held_out_utterances_reach_the_right_handler(tmp_path):
    """Each held-out utterance through the trained model (NLU + policies), scored by the handler it
    reaches: fails on a model that answers open questions with store-policy texts."""
    from scripts.designer import route_holdout, holdout_scores

    rows = route_holdout(PROJECT, _model(), PROJECT / "tests" / "nlu_holdout.yml")
    scores = holdout_scores(rows)
    wrong = [f"{r['expected_intent']} -> {r['handler']}: {r['text']!r}" for r in rows if not r["correct"]]
    print(f"\nheld-out handlers: overall {scores['overall']:.3f}, open->LLM {scores['open_to_llm']:.3f}, "
          f"in-domain {scores['in_domain']:.3f}, open->FAQ {scores['open_to_faq']:.3f}\n" + "\n".join(wrong))
    assert scores["n_open"] >= MIN_HOLDOUT_OPEN_QUESTIONS
    assert scores["open_to_faq"] <= MAX_HOLDOUT_OPEN_TO_FAQ, wrong
    assert scores["open_to_llm"] >= MIN_HOLDOUT_OPEN_TO_LLM, wrong
    assert scores["in_domain"] >= MIN_HOLDOUT_IN_DOMAIN, wrong
    assert scores["overall"] >= MIN_HOLDOUT_OVERALL, wrong
