"""Turn latency of the local stack: ``python -m tools.bench.turns [--turns 200]``.

Starts Rasa (and the action server and a tiny LLM service for the open-ended
turns) on free loopback ports, then measures, one request at a time:
  * NLU only: POST /model/parse;
  * a scripted turn over the REST channel ("hi" -> utter_greet);
  * a form turn that calls the action server (order look-up);
  * an open-ended turn through the action server to the LLM service (tiny model).
Prints a markdown table (p50/p95/mean in ms). Figures hold for the machine and
the model they were measured with; the tiny LLM says nothing about a real 1.5B model.

``--open-questions N --llm-model DIR`` measures instead open questions answered by the model in
DIR (e.g. ``models/bench/qwen2.5-1.5b`` from ``python -m tools.bench.llm``), one visitor at a time and
``--concurrency`` at once: see ``tools/bench/open_questions.py``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from stack.process import Stack
from tools.procs import tiny_model_services
from tools.stats import percentile


def timed(call, n: int) -> list[float]:
    call(0)  # warm-up
    samples = []
    for i in range(n):
        start = time.perf_counter()
        call(i + 1)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.turns", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=200, help="measured requests per row")
    parser.add_argument("--open-questions", type=int, default=0, metavar="N",
                        help="instead: N open questions through the whole stack with --llm-model")
    parser.add_argument("--llm-model", help="the LLM service's model for --open-questions (a directory)")
    parser.add_argument("--concurrency", type=int, default=4, help="visitors at once in --open-questions' 2nd round")
    parser.add_argument("--max-tokens", type=int, default=80, help="ACTIONS_LLM_MAX_TOKENS for --open-questions")
    parser.add_argument("--llm-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the LLM service (repeatable), e.g. LLM_ENGINE=llamacpp")
    args = parser.parse_args(argv)
    if args.open_questions:
        from tools.bench.open_questions import parse_env, run

        if not args.llm_model:
            parser.error("--open-questions needs --llm-model DIR (e.g. models/bench/qwen2.5-1.5b)")
        return run(args.llm_model, args.open_questions, args.concurrency, args.max_tokens, parse_env(args.llm_env))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config, services = tiny_model_services(root)
        rasa = f"http://127.0.0.1:{config.rasa_port}"
        with Stack(services, log_dir=root / "logs"), httpx.Client(timeout=60) as client:
            def parse(i: int) -> None:
                client.post(f"{rasa}/model/parse", params={"token": config.rasa_auth_token},
                            json={"text": "where is my order RG-10421?"}).raise_for_status()

            def rest(sender: str, text: str):
                def call(i: int) -> None:
                    reply = client.post(f"{rasa}/webhooks/rest/webhook",
                                        json={"sender": f"{sender}-{i}", "message": text})
                    reply.raise_for_status()
                    assert reply.json(), f"no reply to {text!r}"
                return call

            rows = [
                ("NLU parse (/model/parse)", timed(parse, args.turns)),
                ("scripted turn: `hi` -> utter_greet", timed(rest("greet", "hi"), args.turns)),
                ("form turn: `check order RG-10421` (action server)",
                 timed(rest("order", "check order RG-10421"), args.turns)),
                ("open-ended turn -> action server -> LLM (tiny model, 16 tokens)",
                 timed(rest("open", "which stove is best for winter camping?"), max(10, args.turns // 4))),
            ]
    print(f"\nMeasured on {platform.node()} ({platform.machine()}), {time.strftime('%Y-%m-%d')}, "
          "one request at a time over loopback\n")
    print("| turn | n | p50 ms | p95 ms | mean ms |\n| --- | ---: | ---: | ---: | ---: |")
    for name, samples in rows:
        print(f"| {name} | {len(samples)} | {percentile(samples, 0.5):.1f} | {percentile(samples, 0.95):.1f} "
              f"| {statistics.fmean(samples):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
