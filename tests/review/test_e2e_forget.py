"""Erasure through the real stack: a visitor talks to Rasa, `forget` runs against the stack's tracker
store, and Rasa's own tracker endpoint then holds nothing the visitor said."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
import yaml

from tests.e2e.conftest import Conversation, responses, stack  # noqa: F401  (the fixtures)
from tests.support.servers import RASA_TOKEN, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def tracker_db_url(running) -> str:
    rasa = next(s for s in running.services if s.name == "rasa")
    endpoints = rasa.command[rasa.command.index("--endpoints") + 1]
    store = yaml.safe_load(open(endpoints))["tracker_store"]
    assert store["type"].endswith("SQLiteTrackerStore"), store
    return f"sqlite:///{store['db']}"


def review(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "review", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)


def test_forget_removes_a_conversation_rasa_then_no_longer_has(stack, responses, tmp_path):  # noqa: F811
    rasa = next(s for s in stack.services if s.name == "rasa")
    rasa_url = f"http://127.0.0.1:{rasa.port}"
    visitor, bystander = Conversation(rasa_url, "forget-me-visitor"), Conversation(rasa_url, "keep-me-visitor")
    assert visitor.say("hi")[-1] in responses["utter_greet"]
    assert visitor.say("where is my order RG-10421?")[-1] in responses["utter_ask_email"]
    visitor.say("anna.berg@example.com")
    bystander.say("hi")
    db = tracker_db_url(stack)
    state = ["--state-dir", str(tmp_path / "state")]

    shown = review("show", "forget-me-visitor", "--db", db, *state)
    assert shown.returncode == 0, shown.stderr
    assert "<order-id>" in shown.stdout and "RG-10421" not in shown.stdout and "anna.berg" not in shown.stdout
    story = tmp_path / "story.yml"
    assert review("export-story", "forget-me-visitor", "--db", db, "--output", str(story), *state).returncode == 0
    steps = yaml.safe_load(story.read_text())["stories"][0]["steps"]
    said = [step["user"] for step in steps if "user" in step]
    assert len(said) == 3 and "[RG-00000](order_id)" in said[1] and "anna.berg" not in story.read_text()

    forgotten = review("forget", "--sender", "forget-me-visitor", "--db", db, "--store-db",
                       f"sqlite:///{tmp_path / 'no-store.db'}", *state)
    assert forgotten.returncode == 0, forgotten.stderr
    assert forgotten.stdout.startswith("forget forget-me-visitor: removed ") and "1 exported file deleted" in forgotten.stdout
    assert not story.exists()

    def user_texts(sender: str) -> list[str]:
        response = httpx.get(f"{rasa_url}/conversations/{sender}/tracker", params={"token": RASA_TOKEN}, timeout=30)
        response.raise_for_status()
        return [e.get("text") for e in response.json()["events"] if e["event"] == "user"]

    assert user_texts("forget-me-visitor") == []
    assert user_texts("keep-me-visitor") == ["hi"]


def test_list_finds_the_fallback_and_the_handoff_of_real_conversations(stack, tmp_path):  # noqa: F811
    rasa = next(s for s in stack.services if s.name == "rasa")
    rasa_url = f"http://127.0.0.1:{rasa.port}"
    Conversation(rasa_url, "review-gibberish").say("asdkjh qwe zxcvbnm")
    Conversation(rasa_url, "review-wants-a-person").say("I want to talk to a person")
    Conversation(rasa_url, "review-all-fine").say("hi")
    listed = review("list", "--json", "--since", "1h", "--db", tracker_db_url(stack),
                    "--state-dir", str(tmp_path / "state"))
    assert listed.returncode == 0, listed.stderr
    reasons = {record["sender"]: {r["reason"] for r in record["reasons"]} for record in json.loads(listed.stdout)}
    assert "nlu_fallback" in reasons["review-gibberish"]
    assert "handoff" in reasons["review-wants-a-person"]
    assert "review-all-fine" not in reasons
