"""The conversation designers' checks behind `make validate`, `make test-stories` and `make nlu-report`.

    python -m scripts.designer validate rasa_project
    python -m scripts.designer test-stories rasa_project --model rasa_project/models/assistant.tar.gz
    python -m scripts.designer nlu-report rasa_project --folds 3

Each runs Rasa's own command (the Rasa of $RASA, default .venv-rasa/bin/rasa) and, when it
finds a mistake, says where as ``file:line: what`` (the form editors and CI annotate):
- validate: YAML that does not parse, then `rasa data validate` (domain, NLU, stories,
  rules) and story structure conflicts, which plain `rasa data validate` only warns about;
- test-stories: the test story whose prediction was wrong;
- nlu-report: cross-validated F1 per intent, and where the confusion matrix image is.
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

REPO = Path(__file__).resolve().parent.parent
RASA_ENV = {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONWARNINGS": "ignore::DeprecationWarning"}
YAML_FOLDERS = ("domain", "data", "tests")


def rasa_command() -> str:
    if os.environ.get("RASA"):
        return os.environ["RASA"]
    venv = Path(os.environ.get("RASA_VENV", ".venv-rasa"))
    return str((venv if venv.is_absolute() else REPO / venv) / "bin" / "rasa")


def run_rasa(project: Path, *args: str, echo: bool = True) -> subprocess.CompletedProcess:
    """A Rasa command in the project folder; its output is shown (and returned)."""
    result = subprocess.run([rasa_command(), *args], cwd=project, env={**os.environ, **RASA_ENV},
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.designer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("validate", "test-stories", "nlu-report"):
        command = commands.add_parser(name)
        command.add_argument("project", type=Path, help="the Rasa project folder (rasa_project)")
        if name == "test-stories":
            command.add_argument("--model", type=Path, required=True)
            command.add_argument("--out", type=Path, help="default: PROJECT/results/core")
        if name == "nlu-report":
            command.add_argument("--folds", type=int, default=3)
            command.add_argument("--out", type=Path, help="default: PROJECT/results/nlu-report")
    args = parser.parse_args(argv)
    project = args.project.resolve()
    if not (project / "domain").exists() and not (project / "domain.yml").exists():
        print(f"error: {project} is not a Rasa project (no domain/).", file=sys.stderr)
        return 2
    if args.command == "validate":
        return validate(project)
    if args.command == "test-stories":
        return test_stories(project, args.model.resolve(), (args.out or project / "results" / "core").resolve())
    return nlu_report(project, args.folds, (args.out or project / "results" / "nlu-report").resolve())


if __name__ == "__main__":
    sys.exit(main())
