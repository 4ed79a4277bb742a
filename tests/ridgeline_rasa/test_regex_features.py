"""ridgeline_rasa/speedups/regex_features.py, in Rasa's own virtualenv with the project's trained model:
the same features as Rasa's featurizer, in linear time."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RASA_PYTHON = Path(os.environ.get("RASA_VENV") or ROOT / ".venv-rasa") / "bin" / "python"
MODEL = ROOT / "rasa_project" / "models" / "assistant.tar.gz"

SCRIPT = r"""
import asyncio, logging, sys, time
import numpy as np
logging.disable(logging.WARNING)
from rasa.core.agent import Agent
from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer
from ridgeline_rasa.speedups import regex_features

TEXTS = ["hi", "do you have a 2-person tent under £200?", "sleeping bag tent bag tents, RG-10421 anna@x.example",
         "RO-10003 RO-10004 details", "-10 °C and minus five and 40 litres 1.2 kg for 2 people",
         "", "tent" * 50, "head torch headtorch head torches", "x" * 300]
captured = []
real = RegexFeaturizer._features_for_patterns

def capture(self, message, attribute):
    result = real(self, message, attribute)
    tokens = message.get("text_tokens") or []
    captured.append((result, [dict(t.get("pattern", default={})) for t in tokens]))
    return result

async def features(agent):
    captured.clear()
    for text in TEXTS:
        await agent.parse_message(text)
    return list(captured)

def same(a, b):
    (ra, ma), (rb, mb) = a, b
    if ma != mb:
        return False
    for x, y in zip(ra, rb):
        if (x is None) != (y is None):
            return False
        if x is not None and not np.array_equal(x.toarray(), y.toarray()):
            return False
    return True

async def main():
    agent = Agent.load(sys.argv[1])
    RegexFeaturizer._features_for_patterns = capture
    before = await features(agent)
    regex_features.install()
    regex_features.install()
    real_fast = RegexFeaturizer._features_for_patterns
    globals()["real"] = real_fast
    RegexFeaturizer._features_for_patterns = capture  # record what the installed method gives
    after = await features(agent)
    RegexFeaturizer._features_for_patterns = real_fast
    print("same features:", len(before) == len(after) > 0 and all(same(a, b) for a, b in zip(before, after)))
    # The work, counted: one binary search per token and pattern, however many matches the patterns have.
    searches = []
    real_bisect = regex_features.bisect.bisect_right
    regex_features.bisect.bisect_right = lambda *a: searches.append(1) or real_bisect(*a)
    shapes = []

    def counted(self, message, attribute):
        shapes.append(len(message.get("text_tokens") or []) * len(self.known_patterns))
        return real_fast(self, message, attribute)

    RegexFeaturizer._features_for_patterns = counted
    started = time.perf_counter()
    parsed = await agent.parse_message("tent " * 20480)
    print("100 KB of tents parsed in %.1f s" % (time.perf_counter() - started))  # information, not asserted
    regex_features.bisect.bisect_right = real_bisect
    RegexFeaturizer._features_for_patterns = real_fast
    print("tokens x patterns:", sum(shapes), "searches:", len(searches))
    regex_features.uninstall()
    print("restored:", RegexFeaturizer._features_for_patterns is not real_fast)

asyncio.run(main())
"""


@pytest.mark.slow
def test_the_linear_featurizer_gives_rasas_features_with_one_search_per_token_and_pattern():
    if not MODEL.exists():
        pytest.fail(f"No trained Rasa model at {MODEL}; run `make rasa-model` (make test does).")
    result = subprocess.run([str(RASA_PYTHON), "-c", SCRIPT, str(MODEL)], capture_output=True, text=True,
                            timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith(("same features", "restored"))]
    assert "same features: True" in lines, lines
    assert "restored: True" in lines, lines
    # Linear: one binary search per token and pattern, whatever the number of matches (Rasa's own loop
    # compares every token with every match: 20,480 tokens x 20,480 "tent" matches for this message).
    [work] = [line for line in result.stdout.splitlines() if line.startswith("tokens x patterns")]
    _, product, _, searches = work.rsplit(" ", 3)
    assert int(product.rstrip()) == int(searches) > 20_000, work
