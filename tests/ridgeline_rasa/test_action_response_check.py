"""ridgeline_rasa/speedups/action_response_check.py, in Rasa's own virtualenv against Rasa's RemoteAction."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RASA_PYTHON = Path(os.environ.get("RASA_VENV") or ROOT / ".venv-rasa") / "bin" / "python"

SCRIPT = r"""
import jsonschema
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from ridgeline_rasa.speedups import action_response_check

calls = []
real_validate = jsonschema.validate
def counting_validate(*args, **kwargs):
    calls.append(1)
    return real_validate(*args, **kwargs)
jsonschema.validate = counting_validate

action = RemoteAction("action_llm_response", None)
valid = {"events": [{"event": "slot", "name": "email", "value": "a@b.c"}],
         "responses": [{"response": "utter_greet"}]}
invalid = {"events": [{"event": "no-such-event"}], "responses": []}

assert action._validate_action_result(valid)
print("before install: full checks", len(calls))
action_response_check.install()
action_response_check.install()
calls.clear()
for _ in range(5):
    assert action._validate_action_result(valid)
print("after install: full checks for valid", len(calls))
try:
    action._validate_action_result(invalid)
except ValidationError as error:
    print("invalid refused:", "Failed to validate Action server response" in error.message)
"""


def test_valid_action_responses_skip_the_schema_self_check_and_invalid_ones_fail_as_in_rasa():
    if not RASA_PYTHON.exists():
        pytest.fail(f"{RASA_PYTHON} is missing: run `make setup` (make test does)")
    result = subprocess.run([str(RASA_PYTHON), "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "before install: full checks 1" in lines  # Rasa's own check, for contrast
    assert "after install: full checks for valid 0" in lines
    assert "invalid refused: True" in lines
