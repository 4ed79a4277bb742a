"""Open questions through the whole stack: ``python -m tools.bench.turns --open-questions 20 --llm-model DIR``.

Starts the LLM service (on ``--llm-model``, with the service's own defaults unless ``--llm-env``
says otherwise), the action server (``ACTIONS_LLM_MAX_TOKENS`` = ``--max-tokens``, its default 20 s budget)
and Rasa, as ``make run`` does, and waits until the LLM service is ready (its warm-up included).
Then visitors say "hi" and ask open questions over the REST channel, and each question's whole
turn is timed:

* one visitor at a time (``--open-questions`` questions in all, five per visitor, so the
  conversation history grows as it does in a real chat), the first one right after start-up;
* then ``--concurrency`` visitors at once, five questions each.

For each round it prints p50/p95 of the turn, how many got the apology (``utter_llm_unavailable``),
how many replies the deadline cut at a sentence (the action server's ``action_llm_replies_total``)
and how many questions reached the LLM service (``llm_requests_total``).
"""

from __future__ import annotations

import concurrent.futures
import platform
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from stack.process import Stack
from stack.services import RASA_PROJECT
from tools.procs import loopback_services
from tools.stats import percentile

QUESTIONS_PER_VISITOR = 5
QUESTIONS = (
    "how do I keep condensation down inside a tent on a cold night?",
    "is a fleece or a softshell better for a windy ridge walk?",
    "what should I pack for a two-day hike in the Lake District in October?",
    "how do I waterproof old leather boots?",
    "can you explain how down fill power works?",
    "what's the best way to cook on a camping stove in the rain?",
    "how many litres should a daypack have for a long summer hike?",
    "how do I choose between trail runners and hiking boots?",
    "what is the difference between a three-season and a four-season tent?",
    "how should I layer for a winter hill walk?",
    "is it safe to drink from mountain streams if I use a filter?",
    "how do I stop my feet getting blisters on long walks?",
    "what kind of headtorch do I need for night hiking?",
    "how do I pitch a tent when the ground is too hard for pegs?",
    "which is warmer, a synthetic or a down sleeping bag when it's damp?",
    "how do I clean and store a sleeping bag after a trip?",
    "what food keeps well on a week-long trek?",
    "how heavy should my pack be for a first overnight hike?",
    "how do walking poles help on steep descents?",
    "what should I do if the weather turns while I'm on a summit?",
)


@dataclass
class Turn:
    visitor: str
    question: str
    seconds: float
    reply: str


def apology_texts() -> set[str]:
    texts = set()
    for path in (RASA_PROJECT / "domain").glob("*.yml"):
        responses = (yaml.safe_load(path.read_text()) or {}).get("responses") or {}
        texts |= {" ".join(v["text"].split()) for v in responses.get("utter_llm_unavailable", []) if "text" in v}
    return texts


def counter(url: str, name: str, labels: str = "") -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    pattern = rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$"
    return sum(float(value) for label, value in re.findall(pattern, text, re.M) if labels in (label or ""))


def visitor(rasa: str, name: str, questions: list[str]) -> list[Turn]:
    turns = []
    with httpx.Client(timeout=120) as client:
        client.post(f"{rasa}/webhooks/rest/webhook", json={"sender": name, "message": "hi"}).raise_for_status()
        for question in questions:
            started = time.perf_counter()
            reply = client.post(f"{rasa}/webhooks/rest/webhook", json={"sender": name, "message": question})
            seconds = time.perf_counter() - started
            reply.raise_for_status()
            text = " ".join(" ".join(m.get("text", "") for m in reply.json()).split())
            turns.append(Turn(name, question, seconds, text))
    return turns


def run(llm_model: str, questions: int, concurrency: int, max_tokens: int, llm_env: dict[str, str]) -> int:
    rounds: list[tuple[str, list[Turn], dict[str, float]]] = []
    apologies = apology_texts()
    with tempfile.TemporaryDirectory(prefix="bench-open-") as tmp:
        root = Path(tmp)
        config, services = loopback_services(root, llm_model, llm_env=llm_env, llm_max_tokens=max_tokens)
        started = time.perf_counter()
        with Stack(services, log_dir=root / "logs"):
            ready_s = time.perf_counter() - started
            rasa, llm, actions = (f"http://127.0.0.1:{port}"
                                  for port in (config.rasa_port, config.llm_port, config.actions_port))

            def measured(label: str, groups: list[list[str]], *, one_at_a_time: bool = False) -> None:
                """Each group is one visitor's questions; the visitors run at once, or one after another."""
                before = {"llm": counter(llm, "llm_requests_total"),
                          "cut": counter(actions, "action_llm_replies_total", 'outcome="cut"')}
                with concurrent.futures.ThreadPoolExecutor(1 if one_at_a_time else len(groups)) as pool:
                    futures = [pool.submit(visitor, rasa, f"{label}-{i}", g) for i, g in enumerate(groups)]
                    turns = [t for f in futures for t in f.result()]
                after = {"llm": counter(llm, "llm_requests_total"),
                         "cut": counter(actions, "action_llm_replies_total", 'outcome="cut"')}
                rounds.append((label, turns, {k: after[k] - before[k] for k in before}))

            asked = [QUESTIONS[i % len(QUESTIONS)] for i in range(questions)]
            measured("one visitor at a time",
                     [asked[i:i + QUESTIONS_PER_VISITOR] for i in range(0, questions, QUESTIONS_PER_VISITOR)],
                     one_at_a_time=True)
            groups = [[QUESTIONS[(v * QUESTIONS_PER_VISITOR + i + 7) % len(QUESTIONS)]
                       for i in range(QUESTIONS_PER_VISITOR)] for v in range(concurrency)]
            measured(f"{concurrency} visitors at once", groups)
    print(f"\nOpen questions through Rasa, {platform.node()} ({platform.machine()}), {time.strftime('%Y-%m-%d')}; "
          f"model {llm_model}, max_tokens {max_tokens}, LLM env {llm_env or '(defaults)'}; "
          f"stack ready in {ready_s:.0f} s\n")
    print("| round | questions | p50 s | p95 s | max s | apologies | cut by the deadline | reached the LLM |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, turns, counts in rounds:
        seconds = [t.seconds for t in turns]
        sorry = sum(1 for t in turns if t.reply in apologies)
        print(f"| {label} | {len(turns)} | {percentile(seconds, 0.5):.2f} | {percentile(seconds, 0.95):.2f} | "
              f"{max(seconds):.2f} | {sorry} | {counts['cut']:.0f} | {counts['llm']:.0f} |")
    first = rounds[0][1][0]
    print(f"\nFirst question after start-up: {first.seconds:.2f} s, "
          f"{'the apology' if first.reply in apologies else 'an LLM answer'}: {first.reply[:120]!r}")
    return 0


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--llm-env {pair!r}: write KEY=VALUE, e.g. --llm-env LLM_ENGINE=llamacpp")
        env[key] = value
    return env

