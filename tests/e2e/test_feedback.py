"""Visitors' verdicts through the real stack: an LLM reply carries the two buttons, a click is recorded
on Rasa's tracker, counted in /metrics and not as a turn, thanked without the LLM, and left out of the
next prompt; `review feedback` and `review export-preferences` then turn it into a preference pair.
The LLM is an OpenAI-compatible server on loopback whose replies the test sets."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest
import yaml

from ridgeline import feedback
from ridgeline.shapes import SKU
from tests.e2e.conftest import service_url
from tests.e2e.test_faults import actions_using_llm
from tests.e2e.test_metrics import delta, scrape
from tests.review.test_e2e_forget import tracker_db_url
from tests.review.test_feedback import fill, items_of
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.servers import RASA_TOKEN, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUESTION = "which sleeping bag should I take for a winter camp in the Alps?"
REPLY = "Pick a bag rated a few degrees below the coldest night you expect, and layer up."
FOLLOW_UP = "and how do I keep it dry?"


@pytest.fixture(scope="module")
def scripted_llm(stack):
    with FakeOpenAIServer() as server, actions_using_llm(stack, server.base_url, timeout_s=10.0):
        server.behaviour.reply = REPLY
        yield server


def post(stack, sender: str, text: str) -> list[dict]:
    response = httpx.post(f"{service_url(stack, 'rasa')}/webhooks/rest/webhook",
                          json={"sender": sender, "message": text}, timeout=60)
    response.raise_for_status()
    return response.json()


def events(stack, sender: str) -> list[dict]:
    response = httpx.get(f"{service_url(stack, 'rasa')}/conversations/{sender}/tracker",
                         params={"token": RASA_TOKEN}, timeout=30)
    response.raise_for_status()
    return response.json()["events"]


def run(module: str, *args: str) -> subprocess.CompletedProcess:
    """One command of the README's loop, as the operator types it (``python -m review|training ...``)."""
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"python -m {module} {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def served_model(stack) -> str:
    llm = next(s for s in stack.services if s.name == "llm")
    return llm.command[llm.command.index("--model") + 1]


def test_a_verdict_is_recorded_counted_thanked_and_left_out_of_the_next_prompt(stack, scripted_llm, responses):
    sender = "feedback-visitor"
    (reply,) = post(stack, sender, QUESTION)
    assert reply["text"] == REPLY
    up, down = reply["buttons"]
    assert (up["title"], down["title"]) == (feedback.BUTTON_TITLES["up"], feedback.BUTTON_TITLES["down"])
    reply_id = json.loads(down["payload"][len("/feedback"):])["reply_id"]
    assert down["payload"] == feedback.payload("down", reply_id)
    asked = len(scripted_llm.behaviour.requests)

    before = scrape(stack, "rasa")
    thanks = post(stack, sender, down["payload"])
    after = scrape(stack, "rasa")
    assert [m["text"] for m in thanks] == responses[feedback.THANKS_RESPONSE]
    assert len(scripted_llm.behaviour.requests) == asked, "a verdict must never be answered by the LLM"
    assert delta(before, after, "rasa_feedback_total", verdict="down") == 1
    assert delta(before, after, "rasa_feedback_total", verdict="up") == 0
    assert delta(before, after, "rasa_turns_total", channel="rest") == 0
    assert delta(before, after, "rasa_intents_total", intent="feedback") == 0

    # On the tracker: the reply with its id and its sources' SKUs, then the verdict that names it.
    tracked = events(stack, sender)
    judged = [e for e in tracked if feedback.reply_id_of(e) == reply_id]
    assert len(judged) == 1 and judged[0]["text"] == REPLY
    prompt = scripted_llm.behaviour.requests[asked - 1]["messages"][-1]["content"]
    assert feedback.sources_of(judged[0]) == re.findall(SKU, prompt) and feedback.sources_of(judged[0])
    verdicts = [feedback.verdict_of(e) for e in tracked if e["event"] == "user"]
    assert [v for v in verdicts if v] == [feedback.Verdict("down", reply_id)]

    # The next question's prompt holds the conversation, not the click or its thanks.
    post(stack, sender, FOLLOW_UP)
    messages = scripted_llm.behaviour.requests[-1]["messages"]
    said = [m["content"] for m in messages[1:]]
    assert said[0].startswith(QUESTION) and said[1] == REPLY and said[2].startswith(FOLLOW_UP), said
    assert not any("/feedback" in text or text in responses[feedback.THANKS_RESPONSE] for text in said)


BETTER = "For the Alps in winter take a bag rated to -10 °C or lower, and put a warm mat under it."


def test_from_a_thumbs_down_to_a_preference_tuned_model(stack, scripted_llm, tmp_path):
    """The README's loop, every command as the operator runs it: the visitor's thumbs-down in the real
    stack -> review feedback -> a designer's better reply -> export-preferences -> prepare -> dpo ->
    evaluate -> merge (the merged folder is what LLM_MODEL serves: tests/training/test_dpo.py serves one)."""
    sender = "feedback-loop-visitor"
    (reply,) = post(stack, sender, QUESTION)
    reply_id = json.loads(reply["buttons"][1]["payload"][len("/feedback"):])["reply_id"]
    post(stack, sender, reply["buttons"][1]["payload"])
    state = ["--state-dir", str(tmp_path / "state")]

    verdicts = tmp_path / "review" / "verdicts.yml"
    run("review", "feedback", "--db", tracker_db_url(stack), "--since", "1d", "--output", str(verdicts), *state)
    [item] = [i for i in items_of(verdicts) if i.endswith(f":{reply_id}")]
    assert items_of(verdicts)[item]["reply"] == REPLY
    fill(verdicts, item, BETTER)
    pairs = tmp_path / "preferences" / "pairs.jsonl"
    run("review", "export-preferences", "--input", str(verdicts), "--output", str(pairs), *state)
    [pair] = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines()]
    assert pair["chosen"] == [{"role": "assistant", "content": BETTER}]
    assert pair["rejected"] == [{"role": "assistant", "content": REPLY}]
    question = pair["prompt"][-1]["content"]
    assert question.startswith(QUESTION) and feedback.sources_of(
        next(e for e in events(stack, sender) if feedback.reply_id_of(e) == reply_id)) == re.findall(SKU, question)

    model, dataset = served_model(stack), tmp_path / "dataset"
    run("training", "prepare", "--input", str(pairs.parent), "--output", str(dataset), "--val-fraction", "0")
    [prepared] = [json.loads(line) for line in (dataset / "preferences_train.jsonl").read_text().splitlines()]
    assert prepared["prompt"][0]["role"] == "system" and prepared["chosen"] == pair["chosen"]
    run("training", "dpo", "--model", model, "--data", str(dataset), "--output", str(tmp_path / "dpo"),
        "--max-steps", "2", "--batch-size", "1", "--gradient-accumulation-steps", "1", "--report-to", "none",
        "--max-length", "3072")
    summary = json.loads((tmp_path / "dpo" / "training_summary.json").read_text())
    assert summary["train"]["global_step"] == 2
    run("training", "evaluate", "--model", model, "--adapter", str(tmp_path / "dpo"), "--data", str(dataset),
        "--split", "train", "--generations", "0")
    report = json.loads((tmp_path / "dpo" / "eval" / "report.json").read_text())
    assert set(report["results"]) == {"base", "fine_tuned"}
    assert all(r["preferences"]["pairs"] == 1 and 0 <= r["preferences"]["accuracy"] <= 1
               for r in report["results"].values())
    run("training", "merge", "--model", model, "--adapter", str(tmp_path / "dpo"), "--output", str(tmp_path / "merged"))
    assert (tmp_path / "merged" / "config.json").is_file() and "DPO" in (tmp_path / "merged" / "README.md").read_text()
