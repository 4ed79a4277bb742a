"""ridgeline_rasa/speedups/tf_predict.py, in Rasa's own virtualenv with the project's trained model."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RASA_PYTHON = Path(os.environ.get("RASA_VENV") or ROOT / ".venv-rasa") / "bin" / "python"
MODEL = ROOT / "rasa_project" / "models" / "assistant.tar.gz"

SCRIPT = r"""
import asyncio, logging, sys
import numpy as np
logging.disable(logging.WARNING)
from rasa.core.agent import Agent
from rasa.utils.tensorflow.models import RasaModel
from tensorflow.python.eager.polymorphic_function import tracing_compiler
from ridgeline_rasa.speedups import tf_predict

TEXTS = ["hi", "what is your return policy", "how do I repair a small tear in my tent fly",
         "where is my order RG-10421", "I want to talk to a person", "fleece or softshell?"]
dispatches = []
real_maybe_define = tracing_compiler.TracingCompiler._maybe_define_function
def counting_maybe_define(self, *args, **kwargs):
    dispatches.append(1)
    return real_maybe_define(self, *args, **kwargs)
tracing_compiler.TracingCompiler._maybe_define_function = counting_maybe_define

async def predictions(agent, sender):
    parses = [await agent.parse_message(t) for t in TEXTS]
    await agent.handle_text("hi", sender_id=sender)
    tracker = await agent.processor.get_tracker(sender)
    policy = agent.processor._predict_next_with_tracker(tracker)
    return parses, policy

async def main():
    agent = Agent.load(sys.argv[1])
    before, policy_before = await predictions(agent, "rasa-path")
    tf_predict.install()
    tf_predict.install()
    await predictions(agent, "warm-up")
    dispatches.clear()
    after, policy_after = await predictions(agent, "compiled-path")
    print("dispatches after install:", len(dispatches))
    same = all(b["intent"] == a["intent"] and
               [(r["name"], r["confidence"]) for r in b["intent_ranking"]] ==
               [(r["name"], r["confidence"]) for r in a["intent_ranking"]] and
               b.get("response_selector") == a.get("response_selector")
               for b, a in zip(before, after))
    print("parses identical:", same)
    print("policy identical:", policy_before.policy_name == policy_after.policy_name and
          np.array_equal(policy_before.probabilities, policy_after.probabilities))
    tf_predict.uninstall()
    dispatches.clear()
    await predictions(agent, "rasa-path-again")
    print("dispatches after uninstall:", len(dispatches) > 0)

asyncio.run(main())
"""


def test_rasa_models_predict_the_same_through_the_compiled_function_without_per_call_dispatch():
    if not RASA_PYTHON.exists():
        pytest.fail(f"{RASA_PYTHON} is missing: run `make setup` (make test does)")
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make rasa-model` (make test does)")
    result = subprocess.run([str(RASA_PYTHON), "-c", SCRIPT, str(MODEL)], cwd=ROOT / "rasa_project",
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "dispatches after install: 0" in lines
    assert "parses identical: True" in lines
    assert "policy identical: True" in lines
    assert "dispatches after uninstall: True" in lines  # the counter does see Rasa's own path
