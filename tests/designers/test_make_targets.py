"""The conversation designers' make targets, run on temporary copies of the Rasa project.

The real rasa_project/ is never changed: each test copies its YAML (not the models) into
tmp_path, breaks the copy the way a designer might, and runs the make target on it with
RASA_PROJECT pointing there. What a designer needs from a failure is where: file and line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from scripts.designer import failed_test_stories, intent_table, story_conflicts, story_locations
from tests.support.servers import ROOT

PROJECT = ROOT / "rasa_project"


def project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "rasa_project"
    copy.mkdir()
    shutil.copy(PROJECT / "config.yml", copy)
    for folder in ("domain", "data", "tests"):
        shutil.copytree(PROJECT / folder, copy / folder)
    return copy


def make(target: str, *variables: str, timeout_s: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", target, *variables], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout_s, env={**os.environ, "SYSTEM_DEPS": "skip"})


def insert_after(path: Path, line_number: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(line_number, text)
    path.write_text("".join(lines))


def test_validate_names_the_file_and_line_of_broken_yaml(tmp_path):
    copy = project_copy(tmp_path)
    nlu = copy / "data" / "nlu" / "general.yml"
    line = next(n for n, text in enumerate(nlu.read_text().splitlines(), 1) if "- intent:" in text)
    insert_after(nlu, line, "    examples: - hi: there\n")  # a designer's typo: a list item after a colon

    result = make("validate", f"RASA_PROJECT={copy}")
    assert result.returncode != 0
    assert re.search(rf"{re.escape(str(nlu))}:{line + 1}:\d+: invalid YAML", result.stdout), result.stdout
    assert "not valid YAML" in result.stderr


@pytest.mark.slow
def test_validate_fails_on_conflicting_stories_and_names_them(tmp_path):
    copy = project_copy(tmp_path)
    stories = copy / "data" / "stories.yml"
    conflicting = (
        "\n"
        "  - story: thanks after a greeting is welcomed\n"
        "    steps:\n"
        "      - intent: greet\n"
        "      - action: utter_greet\n"
        "      - intent: thank\n"
        "      - action: utter_youre_welcome\n"
        "\n"
        "  - story: thanks after a greeting ends the chat\n"
        "    steps:\n"
        "      - intent: greet\n"
        "      - action: utter_greet\n"
        "      - intent: thank\n"
        "      - action: utter_goodbye\n"
    )
    text = stories.read_text()
    text = text if text.endswith("\n") else text + "\n"
    first = len(text.splitlines()) + 2
    stories.write_text(text + conflicting)

    result = make("validate", f"RASA_PROJECT={copy}")
    assert result.returncode != 0, result.stdout[-2000:]
    assert f"{stories}:{first}: Story structure conflict" in result.stdout, result.stdout[-2000:]
    assert f"{stories}:{first + 7}: Story structure conflict" in result.stdout
    assert "contradict each other" in result.stderr


@pytest.mark.slow
def test_validate_passes_on_the_project():
    result = make("validate")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "free of conflicts" in result.stdout


def test_story_conflicts_point_at_each_story(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "stories.yml").write_text('stories:\n  - story: one\n    steps: []\n  - story: "two"\n    steps: []\n')
    output = ("WARNING  rasa.validator  - Story structure conflict after intent 'thank':\n"
              "  utter_youre_welcome predicted in 'one'\n  utter_goodbye predicted in 'two'\n")
    assert story_conflicts(output, story_locations(tmp_path)) == [
        f"{data / 'stories.yml'}:2: Story structure conflict after intent 'thank': utter_youre_welcome predicted in 'one'",
        f"{data / 'stories.yml'}:4: Story structure conflict after intent 'thank': utter_goodbye predicted in 'two'",
    ]


def test_a_failed_test_story_is_located(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_stories.yml").write_text("stories:\n  - story: greet, thank and say goodbye\n    steps: []\n")
    output = textwrap.dedent("""\
        WrongPredictionException: Model predicted a wrong action. Failed Story:

        version: "3.1"
        stories:
        - story: greet, thank and say goodbye (/tmp/tmpab12/test_stories.yml)
          steps:
          - intent: thank
          - action: utter_goodbye  # predicted: utter_youre_welcome
        """)
    assert failed_test_stories(output, story_locations(tmp_path)) == [
        f"{tests / 'test_stories.yml'}:2: test story 'greet, thank and say goodbye' failed",
        "    expected utter_goodbye, the model predicted utter_youre_welcome",
    ]


def test_nlu_report_prints_f1_per_intent_and_the_confusion_matrix(tmp_path):
    """The target's plumbing, with a stand-in for `rasa test nlu` (the real one trains for minutes)."""
    copy = project_copy(tmp_path)
    fake_rasa = tmp_path / "rasa"
    fake_rasa.write_text(textwrap.dedent("""\
        #!/usr/bin/env python3
        import json, pathlib, sys
        args = sys.argv[1:]
        assert args[:2] == ["test", "nlu"] and "--cross-validation" in args, args
        out = pathlib.Path(args[args.index("--out") + 1]); out.mkdir(parents=True)
        (out / "args.json").write_text(json.dumps(args))
        (out / "intent_confusion_matrix.png").write_bytes(b"\\x89PNG")
        (out / "intent_report.json").write_text(json.dumps({
            "greet": {"precision": 1.0, "recall": 0.9, "f1-score": 0.947, "support": 10, "confused_with": {"thank": 1}},
            "thank": {"precision": 0.9, "recall": 1.0, "f1-score": 0.947, "support": 9, "confused_with": {}},
            "affirm": {"precision": 0.5, "recall": 0.4, "f1-score": 0.444, "support": 5, "confused_with": {"deny": 3}},
            "accuracy": 0.875, "macro avg": {"precision": 0.8, "recall": 0.77, "f1-score": 0.78, "support": 24}}))
    """))
    fake_rasa.chmod(fake_rasa.stat().st_mode | stat.S_IXUSR)

    result = make("nlu-report", f"RASA_PROJECT={copy}", "NLU_FOLDS=2", f"RASA={fake_rasa}")
    assert result.returncode == 0, result.stdout + result.stderr
    out = copy / "results" / "nlu-report"
    assert json.loads((out / "args.json").read_text())[-4:] == ["--folds", "2", "--out", str(out)]
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["affirm", "0.444", "0.500", "0.400", "5", "deny", "(3)"] in rows  # worst first
    assert rows.index(["affirm", "0.444", "0.500", "0.400", "5", "deny", "(3)"]) < rows.index(
        ["thank", "0.947", "0.900", "1.000", "9"])
    assert f"Confusion matrix: {out / 'intent_confusion_matrix.png'}" in result.stdout


def test_intent_table_leaves_out_the_averages():
    table = intent_table({"greet": {"precision": 1, "recall": 1, "f1-score": 1, "support": 3},
                          "macro avg": {"precision": 1, "recall": 1, "f1-score": 1, "support": 3}})
    assert "greet" in table and "macro avg" not in table
