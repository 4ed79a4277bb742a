"""Against Rasa 3.6 itself (.venv-rasa): its SQL tracker store's rows are what review reads, and the
NLU snippet and test story review writes are what Rasa's readers and `rasa data validate` accept."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import yaml

from tests.review.conftest import RASA_PYTHON
from tests.support.servers import ROOT

pytestmark = [pytest.mark.slow]

WRITE_WITH_RASA = r"""
import asyncio, sys
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet, UserUttered)
from rasa.shared.core.trackers import DialogueStateTracker

domain = Domain.load("rasa_project/domain")
store = SQLTrackerStore(domain=domain, dialect="sqlite", db=sys.argv[1])
now = float(sys.argv[2])
text = "where is my order RG-10421? it's anna.berg@example.com"
entities = [{"entity": "order_id", "start": 18, "end": 26, "value": "RG-10421", "extractor": "RegexEntityExtractor"},
            {"entity": "email", "start": 33, "end": 54, "value": "anna.berg@example.com",
             "extractor": "RegexEntityExtractor"}]
tracker = DialogueStateTracker("rasa-written", domain.slots)
for event in [
    ActionExecuted("action_session_start", timestamp=now), SessionStarted(timestamp=now),
    ActionExecuted("action_listen", timestamp=now),
    UserUttered(text, {"name": "check_order_status", "confidence": 0.41}, entities,
                parse_data={"intent": {"name": "check_order_status", "confidence": 0.41}, "entities": entities,
                            "text": text, "intent_ranking": [{"name": "check_order_status", "confidence": 0.41}]},
                input_channel="socketio", timestamp=now + 1),
    ActionExecuted("order_status_form", policy="RulePolicy", confidence=1.0, timestamp=now + 2),
    ActiveLoop("order_status_form", timestamp=now + 2),
    SlotSet("order_id", "RG-10421", timestamp=now + 2), SlotSet("email", "anna.berg@example.com", timestamp=now + 2),
    ActionExecuted("action_check_order_status", timestamp=now + 3),
    BotUttered("Your order RG-10421 is on its way.", timestamp=now + 3),
    ActiveLoop(None, timestamp=now + 3),
    ActionExecuted("action_listen", timestamp=now + 3),
    UserUttered("gfhj asd", {"name": "nlu_fallback", "confidence": 0.5}, [],
                parse_data={"intent": {"name": "nlu_fallback", "confidence": 0.5}, "entities": [], "text": "gfhj asd",
                            "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.5},
                                               {"name": "open_question", "confidence": 0.3}]},
                input_channel="rest", timestamp=now + 4),
    ActionExecuted("action_llm_response", policy="RulePolicy", confidence=1.0, timestamp=now + 5),
    BotUttered("Sorry, I can't answer that right now.", metadata={"utter_action": "utter_llm_unavailable"},
               timestamp=now + 5),
    ActionExecuted("action_listen", timestamp=now + 6),
]:
    tracker.update(event)
asyncio.run(store.save(tracker))
print("saved", len(tracker.events))
"""

READ_WITH_RASA = r"""
import json, sys, warnings
from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

domain = Domain.load("rasa_project/domain")
warnings.simplefilter("error", UserWarning)  # Rasa warns, and skips, what it cannot read
steps = YAMLStoryReader(domain).read_from_file(sys.argv[1])
for step in steps:
    for event in step.events:
        data = event.as_dict()
        print("event", json.dumps({k: data.get(k) for k in ("event", "text", "name", "value")}),
              (data.get("parse_data") or {}).get("intent", {}).get("name"))
data = RasaYAMLReader().read(sys.argv[2])
for example in data.intent_examples:
    print("nlu", example.get("intent"), "|", example.get("text"), "|",
          [(e["entity"], e["value"]) for e in example.get("entities") or []])
"""


def rasa_python(script: str, *args: str, timeout: int = 300) -> str:
    if not RASA_PYTHON.exists():
        pytest.fail(f"{RASA_PYTHON} is missing: run `make setup` (make test does)")
    result = subprocess.run([str(RASA_PYTHON), "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
                                                  "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_review_reads_rasas_own_rows_and_rasa_reads_what_review_writes(review, tmp_path):
    database = tmp_path / "rasa.db"
    assert "saved" in rasa_python(WRITE_WITH_RASA, str(database), str(time.time() - 60))
    url = f"sqlite:///{database}"

    code, out, _ = review("list", db=url)
    assert code == 0 and out.split()[2] == "rasa-written"
    assert out.rstrip().endswith("low_confidence, nlu_fallback, apology")
    code, out, _ = review("show", "rasa-written", db=url)
    assert "entities order_id=<order-id>, email=<email>; via socketio" in out and "RG-10421" not in out

    story, nlu = tmp_path / "story.yml", tmp_path / "nlu.yml"
    assert review("export-story", "rasa-written", "--output", str(story), db=url)[0] == 0
    assert review("export-nlu", "--output", str(nlu), db=url)[0] == 0
    parsed = rasa_python(READ_WITH_RASA, str(story), str(nlu))
    events = [(json.loads(line.split(" ", 1)[1].rsplit(" ", 1)[0]), line.rsplit(" ", 1)[1])
              for line in parsed.splitlines() if line.startswith("event ")]
    assert [(e["event"], e["text"] or e["name"], intent) for e, intent in events] == [
        ("user", "where is my order RG-00000? it's visitor@example.com", "check_order_status"),
        ("action", "order_status_form", "None"), ("active_loop", "order_status_form", "None"),
        ("slot", "order_id", "None"), ("slot", "email", "None"), ("action", "action_check_order_status", "None"),
        ("active_loop", None, "None"), ("user", "gfhj asd", "nlu_fallback"), ("action", "action_llm_response", "None")]
    assert events[3][0]["value"] == "RG-00000"
    assert "nlu check_order_status | where is my order RG-00000? it's visitor@example.com | " \
           "[('order_id', 'RG-00000'), ('email', 'visitor@example.com')]" in parsed
    assert "nlu open_question | gfhj asd | []" in parsed  # nlu_fallback filed under the best real guess
    assert "anna.berg" not in story.read_text() + nlu.read_text()


def test_rasa_data_validate_accepts_an_exported_story(review, tmp_path):
    story = tmp_path / "data" / "reviewed.yml"
    assert review("export-story", "visitor-order", "--output", str(story))[0] == 0
    project = ROOT / "rasa_project"
    result = subprocess.run([str(RASA_PYTHON), "-m", "rasa", "data", "validate", "stories", "--domain",
                             str(project / "domain"), "--config", str(project / "config.yml"), "--data",
                             str(story.parent), "--fail-on-warnings"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "SQLALCHEMY_SILENCE_UBER_WARNING": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert yaml.safe_load(story.read_text())["stories"]
