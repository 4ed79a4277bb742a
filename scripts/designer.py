"""The conversation designers' checks behind `make validate`, `make test-stories` and `make nlu-report`.

    python -m scripts.designer validate rasa_project
    python -m scripts.designer test-stories rasa_project --model rasa_project/models/assistant.tar.gz
    python -m scripts.designer nlu-report rasa_project --folds 3
    python -m scripts.designer holdout rasa_project --model rasa_project/models/assistant.tar.gz

Each runs Rasa's own command (the Rasa of $RASA, default .venv-rasa/bin/rasa) and, when it
finds a mistake, says where as ``file:line: what`` (the form editors and CI annotate):
- validate: YAML that does not parse, then `rasa data validate` (domain, NLU, stories,
  rules) and story structure conflicts, which plain `rasa data validate` only warns about;
- test-stories: the test story whose prediction was wrong;
- nlu-report: cross-validated F1 per intent, and where the confusion matrix image is;
- holdout: which handler (response or action) each utterance of tests/nlu_holdout.yml reaches
  when it opens a fresh conversation with the trained model, scored against the targets below;
  fails when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from ridgeline_rasa import launch

REPO = Path(__file__).resolve().parent.parent
# Rasa's environment (ridgeline_rasa/launch.py: `environment` gives it what it reads of ours, and
# ENV), and the DeprecationWarnings of Rasa's own dependencies kept out of what designers read.
RASA_ENV = {**launch.ENV, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
YAML_FOLDERS = ("domain", "data", "tests")


def rasa_command() -> str:
    if os.environ.get("RASA"):
        return os.environ["RASA"]
    venv = Path(os.environ.get("RASA_VENV", ".venv-rasa"))
    return str((venv if venv.is_absolute() else REPO / venv) / "bin" / "rasa")


def run_rasa(project: Path, *args: str, echo: bool = True) -> subprocess.CompletedProcess:
    """A Rasa command in the project folder; its output is shown (and returned)."""
    result = subprocess.run([rasa_command(), *args], cwd=project, env={**launch.environment(os.environ), **RASA_ENV},
                            capture_output=True, text=True)
    if echo:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
    return result


def fail(message: str) -> int:
    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)
    return 1


def shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def yaml_files(project: Path) -> list[Path]:
    files = [project / "config.yml"] if (project / "config.yml").exists() else []
    for folder in YAML_FOLDERS:
        files += sorted(p for p in (project / folder).rglob("*") if p.suffix in (".yml", ".yaml"))
    return files


def yaml_errors(project: Path) -> list[str]:
    """``file:line:column: problem`` for every YAML file of the project that does not parse."""
    errors = []
    for path in yaml_files(project):
        try:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            where = f"{shown(path)}:{mark.line + 1}:{mark.column + 1}" if mark else shown(path)
            errors.append(f"{where}: invalid YAML: {error.problem or error.context}")
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            errors.append(f"{shown(path)}: invalid YAML: {error}")
    return errors


def story_locations(project: Path) -> dict[str, str]:
    """Story/rule name -> ``file:line`` where it is defined, over data/ and tests/."""
    found: dict[str, str] = {}
    pattern = re.compile(r"^\s*-\s*(?:story|rule):\s*(.+?)\s*$")
    for folder in ("data", "tests"):
        for path in sorted((project / folder).rglob("*.yml")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                match = pattern.match(line)
                if match:
                    found.setdefault(match.group(1).strip("'\""), f"{shown(path)}:{number}")
    return found


def story_conflicts(output: str, locations: dict[str, str]) -> list[str]:
    """Rasa's "Story structure conflict after ..." warnings, with the file and line of each story."""
    lines = []
    for block in re.split(r"(?=Story structure conflict)", output)[1:]:
        header = block.splitlines()[0].strip()
        for action, story in re.findall(r"^\s*(\S+) predicted in '(.+)'\s*$", block, re.M):
            lines.append(f"{locations.get(story, '(unknown file)')}: {header} {action} predicted in '{story}'")
    return lines


def validate(project: Path) -> int:
    errors = yaml_errors(project)
    if errors:
        print("\n".join(errors))
        return fail(f"validate: {len(errors)} file(s) are not valid YAML; fix the line shown (indentation, "
                    "a missing colon or quote are the usual suspects).")
    if run_rasa(project, "data", "validate", "--domain", "domain").returncode != 0:
        return fail("validate: `rasa data validate` found mistakes (above).")
    # Plain `rasa data validate` only warns about conflicting stories; here they fail.
    stories = run_rasa(project, "data", "validate", "stories", "--domain", "domain", "--fail-on-warnings",
                       echo=False)
    if stories.returncode != 0:
        conflicts = story_conflicts(stories.stdout + stories.stderr, story_locations(project))
        print("\n".join(conflicts) or (stories.stdout + stories.stderr)[-3000:])
        return fail("validate: stories or rules contradict each other: after the same conversation they "
                    "predict different actions. Make them agree, or tell them apart by an earlier turn.")
    print("validate: domain, NLU data, stories and rules are valid and free of conflicts.")
    return 0


def failed_test_stories(output: str, locations: dict[str, str]) -> list[str]:
    """The failing test stories named in Rasa's error, with their file and line and the wrong predictions."""
    lines = []
    for story in re.findall(r"^\s*-\s*story:\s*(.+?)\s*$", output, re.M):
        name = re.sub(r"\s*\([^()]*\.ya?ml\)$", "", story.strip("'\""))  # Rasa may add "(its file)"
        lines.append(f"{locations.get(name, '(unknown file)')}: test story '{name}' failed")
    for expected, predicted in re.findall(r"-\s*(?:action|intent):\s*(\S+)\s*#\s*predicted:\s*(.+)$", output, re.M):
        lines.append(f"    expected {expected}, the model predicted {predicted.strip()}")
    return lines


def test_stories(project: Path, model: Path, out: Path) -> int:
    result = run_rasa(project, "test", "core", "--e2e", "--stories", "tests/test_stories.yml",
                      "--model", str(model), "--fail-on-prediction-errors", "--out", str(out), echo=False)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        start = output.find("Failed Story")
        print(output[max(start - 200, 0):][:4000] if start >= 0 else output[-4000:])
        print("\n".join(failed_test_stories(output, story_locations(project))))
        return fail(f"test-stories: a conversation went differently from its test story (above). "
                    f"Details in {shown(out)}.")
    print(f"test-stories: every test story passed (reports in {shown(out)}).")
    return 0


def intent_table(report: dict) -> str:
    rows = [(name, r) for name, r in report.items() if isinstance(r, dict) and "f1-score" in r
            and name not in ("macro avg", "weighted avg", "micro avg")]
    lines = [f"{'intent':24} {'F1':>6} {'precision':>9} {'recall':>7} {'examples':>8}  most confused with"]
    for name, r in sorted(rows, key=lambda item: item[1]["f1-score"]):
        confused = ", ".join(f"{k} ({v})" for k, v in sorted((r.get("confused_with") or {}).items(),
                                                             key=lambda kv: -kv[1])[:2])
        lines.append(f"{name:24} {r['f1-score']:6.3f} {r['precision']:9.3f} {r['recall']:7.3f} "
                     f"{r['support']:8d}  {confused}")
    if "accuracy" in report:
        lines.append(f"{'accuracy':24} {report['accuracy']:6.3f}")
    return "\n".join(lines)


def nlu_report(project: Path, folds: int, out: Path) -> int:
    result = run_rasa(project, "test", "nlu", "--nlu", "data/nlu", "--config", "config.yml",
                      "--cross-validation", "--folds", str(folds), "--out", str(out), echo=False)
    report_path = out / "intent_report.json"
    if result.returncode != 0 or not report_path.exists():
        print((result.stdout + result.stderr)[-4000:])
        return fail("nlu-report: `rasa test nlu --cross-validation` failed (above).")
    print(f"Intent classification, {folds}-fold cross-validation (each fold trains on the rest of "
          "data/nlu and is tested on what it did not see), worst first:\n")
    print(intent_table(json.loads(report_path.read_text())))
    print(f"\nConfusion matrix: {shown(out / 'intent_confusion_matrix.png')}")
    print(f"Misclassified examples: {shown(out / 'intent_errors.json')}")
    return 0


# ---------------------------------------------------------------- holdout: the handler each turn reaches

# What a user message should run, by its intent in tests/nlu_holdout.yml (faq/<key>: utter_faq/<key>).
EXPECTED_HANDLER = {
    "greet": "utter_greet",
    "goodbye": "utter_goodbye",
    "thank": "utter_youre_welcome",
    "bot_challenge": "utter_iamabot",
    "human_handoff": "action_human_handoff",
    "check_order_status": "order_status_form",
    "open_question": "action_llm_response",
    # product search (domain/catalog.yml): the actions answer from the catalog
    "product_search": "action_search_products",
    "refine_search": "action_search_products",
    "more_like_this": "action_search_products",
    "product_details": "action_product_details",
    "compare_products": "action_product_details",
    # affirm / deny only mean something as the answer to "anything else?" (rules.yml): they are
    # sent after a store-policy question that the assistant answered with utter_anything_else.
    "affirm": "utter_what_else",
    "deny": "utter_goodbye",
    # a verdict button's payload (domain/feedback.yml), parsed without the NLU: never typed, so never held out
    "feedback": "utter_feedback_thanks",
}
ANSWERS_TO_ANYTHING_ELSE = ("affirm", "deny")
OPENING_BEFORE_ANYTHING_ELSE = "what is your return policy?"  # a training example -> utter_faq, utter_anything_else
LLM_ACTION = "action_llm_response"
# Targets (issue 11, item 5): share of held-out utterances that reach the right handler.
HOLDOUT_TARGETS = {"overall": 0.92, "open_to_llm": 0.90, "in_domain": 0.92}
HOLDOUT_MAX_OPEN_TO_FAQ = 0.05


def holdout_examples(path: Path) -> list[tuple[str, str]]:
    """(intent, text) for every example of an NLU YAML file, entity annotations removed."""
    pairs = []
    for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
        if "intent" not in block:
            continue
        for line in block.get("examples", "").splitlines():
            if line.strip().startswith("- "):
                text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.strip()[2:].strip())
                pairs.append((block["intent"], text))
    return pairs


def expected_handler(intent: str) -> str:
    return f"utter_{intent}" if intent.startswith("faq/") else EXPECTED_HANDLER[intent]


def _route_in_rasa(model: Path, project: Path, texts: list[list[str]]) -> list[dict]:
    """Runs inside Rasa's Python: each conversation (a list of user texts) starts fresh; for its
    last text, what the model does next: the first action predicted and, for utter_faq, the response
    the ResponseSelector chose. Only NLU and the policies run: no action is executed."""
    import asyncio
    import logging

    logging.disable(logging.WARNING)
    sys.path.insert(0, str(project))  # as `rasa` with cwd=project (the deprecated components.* names)
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    agent = Agent.load(str(model))
    processor, domain = agent.processor, agent.domain

    def next_action(tracker) -> str:
        scores = processor.predict_next_with_tracker(tracker)["scores"]
        return max(scores, key=lambda s: s["score"])["action"]

    async def run() -> list[dict]:
        results = []
        for number, conversation in enumerate(texts):
            tracker = DialogueStateTracker.from_events(
                f"holdout-{number}", [ActionExecuted("action_session_start"), SessionStarted(),
                                      ActionExecuted("action_listen")], domain.slots)
            for turn, text in enumerate(conversation):
                parse = await processor.parse_message(UserMessage(text))
                tracker.update(UserUttered(text, parse["intent"], parse["entities"], parse), domain)
                actions: list[str] = []
                while len(actions) < 6:
                    action = next_action(tracker)
                    actions.append(action)
                    if action == "action_listen" or turn == len(conversation) - 1:
                        break
                    tracker.update(ActionExecuted(action), domain)
                if turn < len(conversation) - 1:
                    tracker.update(ActionExecuted("action_listen"), domain)
            handler = actions[0]
            selector = (parse.get("response_selector") or {})
            selected = (selector.get("faq") or selector.get("default") or {}).get("response") or {}
            if handler == "utter_faq" and selected.get("intent_response_key"):
                handler = f"utter_{selected['intent_response_key']}"
            results.append({
                "text": conversation[-1], "handler": handler, "before": actions if len(conversation) > 1 else [],
                "intent": parse["intent"].get("name"), "intent_confidence": parse["intent"].get("confidence"),
                "faq_response": selected.get("intent_response_key"),
                "faq_confidence": selected.get("confidence"),
            })
        return results

    return asyncio.run(run())


RESULTS_MARKER = "@@RESULTS@@"


def run_in_rasa(project: Path, what: str, call: str, request: dict):
    """``designer.<call>`` (a call whose arguments may use ``r``, the request) in Rasa's venv; its JSON result."""
    script = ("import json, pathlib, sys; from scripts import designer; r = json.load(sys.stdin); "
              f"print('\\n{RESULTS_MARKER}' + json.dumps(designer.{call}))")
    result = subprocess.run([rasa_python(), "-c", script], input=json.dumps(request), cwd=REPO,
                            capture_output=True, text=True,
                            env={**launch.environment(os.environ), **RASA_ENV, "PYTHONPATH": os.pathsep.join([str(REPO), str(project)])})
    marker = result.stdout.rfind(RESULTS_MARKER)
    if result.returncode != 0 or marker < 0:
        raise RuntimeError(f"{what} failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return json.loads(result.stdout[marker + len(RESULTS_MARKER):])


def rasa_python() -> str:
    rasa = Path(rasa_command())
    return str(rasa.with_name("python"))


def route_holdout(project: Path, model: Path, holdout: Path) -> list[dict]:
    """Each held-out example with the handler it reaches (see _route_in_rasa), run in Rasa's venv."""
    examples = holdout_examples(holdout)
    conversations = [[OPENING_BEFORE_ANYTHING_ELSE, text] if intent in ANSWERS_TO_ANYTHING_ELSE else [text]
                     for intent, text in examples]
    routed = run_in_rasa(project, "routing the held-out set through Rasa",
                         "_route_in_rasa(pathlib.Path(r['model']), pathlib.Path(r['project']), r['conversations'])",
                         {"model": str(model), "project": str(project), "conversations": conversations})
    for (intent, _), row in zip(examples, routed):
        row["expected_intent"] = intent
        row["expected"] = expected_handler(intent)
        row["correct"] = row["handler"] == row["expected"]
    return routed


def holdout_scores(rows: list[dict]) -> dict:
    """overall, open_to_llm, in_domain, open_to_faq (shares) and per-intent counts."""
    def share(selected, hit) -> float:
        selected = list(selected)
        return sum(1 for r in selected if hit(r)) / len(selected) if selected else 0.0

    open_rows = [r for r in rows if r["expected_intent"] == "open_question"]
    domain_rows = [r for r in rows if r["expected_intent"] != "open_question"]
    per_intent: dict[str, list[int]] = {}
    for r in rows:
        counts = per_intent.setdefault(r["expected_intent"], [0, 0])
        counts[0] += r["correct"]
        counts[1] += 1
    return {
        "overall": share(rows, lambda r: r["correct"]),
        "open_to_llm": share(open_rows, lambda r: r["handler"] == LLM_ACTION),
        "in_domain": share(domain_rows, lambda r: r["correct"]),
        "open_to_faq": share(open_rows, lambda r: r["handler"].startswith("utter_faq")),
        "n": len(rows), "n_open": len(open_rows), "n_in_domain": len(domain_rows),
        "per_intent": per_intent,
    }


def holdout_misses(scores: dict) -> list[str]:
    misses = [f"{name} {scores[name]:.3f} < {target:.2f}" for name, target in HOLDOUT_TARGETS.items()
              if scores[name] < target]
    if scores["open_to_faq"] > HOLDOUT_MAX_OPEN_TO_FAQ:
        misses.append(f"open_to_faq {scores['open_to_faq']:.3f} > {HOLDOUT_MAX_OPEN_TO_FAQ:.2f}")
    return misses


def holdout(project: Path, model: Path, holdout_file: Path, out: Path | None) -> int:
    rows = route_holdout(project, model, holdout_file)
    scores = holdout_scores(rows)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"scores": scores, "rows": rows}, indent=1))
    print(f"Held-out utterances ({shown(holdout_file)}), each the first message of a fresh conversation "
          f"(affirm/deny: the answer to 'anything else?'), scored by the handler it reaches:\n")
    print(f"{'intent':24} {'right':>5} / {'n':>3}")
    for intent, (right, n) in sorted(scores["per_intent"].items()):
        print(f"{intent:24} {right:5d} / {n:3d}")
    wrong = [r for r in rows if not r["correct"]]
    if wrong:
        print("\nWrong handler:")
        for r in wrong:
            confidence = (f", faq {r['faq_response']} {r['faq_confidence']:.2f}"
                          if r["handler"].startswith("utter_faq") and r.get("faq_confidence") is not None else "")
            print(f"  {r['expected_intent']:20} -> {r['handler']:28} {r['text']!r} "
                  f"(intent {r['intent']} {r['intent_confidence']:.2f}{confidence})")
    print(f"\noverall      {scores['overall']:.3f}  (n={scores['n']}, target >= {HOLDOUT_TARGETS['overall']})")
    print(f"open -> LLM  {scores['open_to_llm']:.3f}  (n={scores['n_open']}, target >= {HOLDOUT_TARGETS['open_to_llm']})")
    print(f"in-domain    {scores['in_domain']:.3f}  (n={scores['n_in_domain']}, target >= {HOLDOUT_TARGETS['in_domain']})")
    print(f"open -> FAQ  {scores['open_to_faq']:.3f}  (target <= {HOLDOUT_MAX_OPEN_TO_FAQ})")
    if "product_search" in scores["per_intent"]:
        right, n = scores["per_intent"]["product_search"]
        print(f"product search {right / n:.3f}  (n={n}, product questions that reach {EXPECTED_HANDLER['product_search']})")
    misses = holdout_misses(scores)
    if misses:
        return fail("holdout: below target: " + "; ".join(misses))
    return 0


# ---------------------------------------------------------------- faq-threshold: pick FaqConfidenceGate's threshold

GATE_COMPONENT = "ridgeline_rasa.faq_gate.FaqConfidenceGate"


def _cross_validate_in_rasa(project: Path, folds: int, workdir: Path, seed: int = 42) -> list[dict]:
    """Runs inside Rasa's Python. Splits data/nlu (stratified by intent, faq/<key> kept whole) into
    folds; for each, trains an NLU model on the rest with the project's pipeline, the gate switched
    off (threshold 0), and parses the fold: the intent, and what the ResponseSelector chose with
    which confidence. Never looks at tests/nlu_holdout.yml."""
    import asyncio
    import logging
    import random

    logging.disable(logging.WARNING)
    sys.path.insert(0, str(project))
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.model_training import train_nlu

    blocks, regexes = {}, []
    for path in sorted((project / "data" / "nlu").glob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            if "intent" in block:
                blocks.setdefault(block["intent"], []).extend(
                    line.strip()[2:].strip() for line in block.get("examples", "").splitlines()
                    if line.strip().startswith("- "))
            else:
                regexes.append(block)
    config = yaml.safe_load((project / "config.yml").read_text(encoding="utf-8"))
    for component in config["pipeline"]:
        if component["name"] == GATE_COMPONENT:
            component["threshold"] = 0.0
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    rng = random.Random(seed)
    fold_of = {}
    for intent, texts in blocks.items():
        order = list(range(len(texts)))
        rng.shuffle(order)
        for rank, index in enumerate(order):
            fold_of[(intent, index)] = rank % folds

    def plain(text: str) -> str:
        return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)

    rows = []
    for fold in range(folds):
        train = {"version": "3.1", "nlu": regexes + [
            {"intent": intent, "examples": "".join(f"- {t}\n" for i, t in enumerate(texts) if fold_of[(intent, i)] != fold)}
            for intent, texts in blocks.items()]}
        (workdir / f"train-{fold}.yml").write_text(yaml.safe_dump(train, sort_keys=False, width=1000))
        model = train_nlu(str(workdir / "config.yml"), str(workdir / f"train-{fold}.yml"), str(workdir / "models"),
                          fixed_model_name=f"fold-{fold}", domain=str(project / "domain"))
        agent = Agent.load(model)

        async def parse_fold() -> None:
            for intent, texts in blocks.items():
                for i, text in enumerate(texts):
                    if fold_of[(intent, i)] != fold:
                        continue
                    parse = await agent.processor.parse_message(UserMessage(plain(text)))
                    selector = parse.get("response_selector") or {}
                    selected = (selector.get("faq") or selector.get("default") or {}).get("response") or {}
                    rows.append({"fold": fold, "text": plain(text), "expected_intent": intent,
                                 "intent": parse["intent"].get("name"),
                                 "intent_confidence": parse["intent"].get("confidence"),
                                 "faq_response": selected.get("intent_response_key"),
                                 "faq_confidence": selected.get("confidence")})

        asyncio.run(parse_fold())
    return rows


def gate_score(row: dict, joint: bool) -> float | None:
    """What FaqConfidenceGate compares with its threshold: the ResponseSelector's confidence in the
    answer it chose, times the intent's confidence when `joint` (use_intent_confidence)."""
    if row["faq_confidence"] is None:
        return None
    return row["faq_confidence"] * (row["intent_confidence"] if joint else 1.0)


def gated_outcomes(rows: list[dict], threshold: float, joint: bool = False) -> dict:
    """With the gate at `threshold`: right store-policy answers, wrong ones, and open questions
    (and others) whose faq prediction the gate sent to the LLM."""
    def answered(r) -> bool:
        score = gate_score(r, joint)
        return r["intent"] == "faq" and score is not None and score >= threshold

    faq = [r for r in rows if r["expected_intent"].startswith("faq/")]
    other = [r for r in rows if not r["expected_intent"].startswith("faq/")]
    return {
        "faq_right": sum(1 for r in faq if answered(r) and r["faq_response"] == r["expected_intent"]),
        "faq_wrong_answer": sum(1 for r in faq if answered(r) and r["faq_response"] != r["expected_intent"]),
        "faq_to_llm": sum(1 for r in faq if r["intent"] == "faq" and not answered(r)),
        "n_faq": len(faq),
        "other_to_faq": sum(1 for r in other if answered(r)),
        "other_saved": sum(1 for r in other if r["intent"] == "faq" and not answered(r)),
        "n_other": len(other),
    }


def faq_threshold(project: Path, folds: int, out: Path) -> int:
    try:
        rows = run_in_rasa(project, "cross-validation",
                           "_cross_validate_in_rasa(pathlib.Path(r['project']), r['folds'], pathlib.Path(r['workdir']))",
                           {"project": str(project), "folds": folds, "workdir": str(out)})
    except RuntimeError as error:
        print(error)
        return fail("faq-threshold: cross-validation failed (above).")
    (out / "cross_validation.json").write_text(json.dumps(rows, indent=1))
    print(f"{folds}-fold cross-validation on data/nlu (not the held-out set), gate off: what a gate at each "
          "threshold would do. A wrong handler costs 1, whether a policy answer withheld (-> LLM), "
          "a wrong policy answer, or a policy answer to a non-policy message.\n")
    for joint, label in ((False, "ResponseSelector confidence (use_intent_confidence: false)"),
                         (True, "intent confidence x ResponseSelector confidence (use_intent_confidence: true)")):
        print(f"Gate on the {label}:")
        print(f"{'threshold':>9} {'faq right':>9} {'faq->LLM':>8} {'faq wrong':>9} {'other->faq':>10} {'errors':>6}")
        best = None
        for step in range(0, 20):
            threshold = step / 20
            o = gated_outcomes(rows, threshold, joint)
            errors = o["faq_to_llm"] + o["faq_wrong_answer"] + o["other_to_faq"]
            print(f"{threshold:9.2f} {o['faq_right']:5d}/{o['n_faq']:<3d} {o['faq_to_llm']:8d} "
                  f"{o['faq_wrong_answer']:9d} {o['other_to_faq']:6d}/{o['n_other']:<3d} {errors:6d}")
            if best is None or errors < best[1]:
                best = (threshold, errors)
        print(f"fewest wrong handlers at threshold {best[0]:.2f} ({best[1]} of {len(rows)})\n")
    print(f"Per-example results in {shown(out / 'cross_validation.json')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.designer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("validate", "test-stories", "nlu-report", "holdout", "faq-threshold"):
        command = commands.add_parser(name)
        command.add_argument("project", type=Path, help="the Rasa project folder (rasa_project)")
        if name == "test-stories":
            command.add_argument("--model", type=Path, required=True)
            command.add_argument("--out", type=Path, help="default: PROJECT/results/core")
        if name == "nlu-report":
            command.add_argument("--folds", type=int, default=3)
            command.add_argument("--out", type=Path, help="default: PROJECT/results/nlu-report")
        if name == "faq-threshold":
            command.add_argument("--folds", type=int, default=3)
            command.add_argument("--out", type=Path, help="default: PROJECT/results/faq-threshold")
        if name == "holdout":
            command.add_argument("--model", type=Path, required=True)
            command.add_argument("--holdout", type=Path, help="default: PROJECT/tests/nlu_holdout.yml")
            command.add_argument("--out", type=Path, help="also write every routed example as JSON here")
    args = parser.parse_args(argv)
    project = args.project.resolve()
    if not (project / "domain").exists() and not (project / "domain.yml").exists():
        print(f"error: {project} is not a Rasa project (no domain/).", file=sys.stderr)
        return 2
    if args.command == "validate":
        return validate(project)
    if args.command == "test-stories":
        return test_stories(project, args.model.resolve(), (args.out or project / "results" / "core").resolve())
    if args.command == "holdout":
        return holdout(project, args.model.resolve(), (args.holdout or project / "tests" / "nlu_holdout.yml").resolve(),
                       args.out)
    if args.command == "faq-threshold":
        return faq_threshold(project, args.folds, (args.out or project / "results" / "faq-threshold").resolve())
    return nlu_report(project, args.folds, (args.out or project / "results" / "nlu-report").resolve())


if __name__ == "__main__":
    sys.exit(main())
