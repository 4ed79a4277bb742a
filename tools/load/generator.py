"""Load generator: concurrent simulated conversations through Rasa's REST channel.

    python -m tools.load                                   # 50 conversations x 10 turns, own stack (tiny model)
    python -m tools.load --memory-turns 1000,10000         # keep 50 going to 10,000 turns; RSS at each mark
    python -m tools.load --rasa-url http://localhost:5005  # drive a running stack (`make run`)
    make loadtest LOAD_ARGS="--conversations 20 --json var/load.json"

Without --rasa-url it starts the LLM service (a tiny random model), the action server (a
temporary orders database) and Rasa (rasa_project/models/assistant.tar.gz) on free loopback
ports, as `python -m tools.bench.turns` does. Each conversation is its own sender
(`load-<run>-<n>`) and sends its turns one after another, with no pause: a greeting, FAQ
questions, the order-status form, open-ended questions (answered by the LLM), thanks and
goodbye, taken from the project's training data and test stories.

Every turn is classified (ok, missing, apology, rate_limited, 4xx, 5xx, error) and timed.
The report gives p50/p95/p99/max latency overall and per kind of turn, throughput and the
count of each class; with --memory-turns, the RSS of each service (its process and all its
descendants) at each mark and the ratio last/first against the 10% target.
Exit status 1 when any turn was missing, 4xx, 5xx or an error, or a service's RSS grew past
the target; 0 otherwise (apologies and 429s are reported, not failed).
tests/e2e/test_load_smoke.py runs `run_load` small; tests/tools/test_load.py tests the pure parts.

Why not Locust: it covers the load itself (users, concurrency, latency percentiles), but not
what this generator checks. Locust runs on gevent and monkey-patches the standard library,
which does not mix with this generator's asyncio/httpx client or with starting the stack
through stack.process in the same process; and its per-turn classification (missing reply,
utter_no_reply, the apology, 429), the RSS marks over each service's process tree and the
exit status on a failed check would all have to be rebuilt in its event hooks. So the
generator stays as it is (docs/load-test.md says the same).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import platform
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Mapping

import httpx
import yaml

from ridgeline.paths import REPO_ROOT
from tools.stats import percentile  # nearest rank, as every benchmark reports it

RASA_PROJECT = REPO_ROOT / "rasa_project"
APOLOGY_RESPONSES = ("utter_llm_unavailable",)  # the LLM failed and the action apologised: reported
NO_REPLY_RESPONSES = ("utter_no_reply",)  # Rasa itself said nothing (an action failed): a failure
RSS_TARGET_RATIO = 1.10
FAILING = ("missing", "no_reply", "4xx", "5xx", "error")


class Kind(str, Enum):
    SCRIPTED = "scripted"  # answered from the domain: greeting, FAQ, thanks, goodbye, bot challenge
    FORM = "form"          # the order-status form and the action server's order look-up
    OPEN = "open"          # open-ended: action server -> LLM service


class Outcome(str, Enum):
    OK = "ok"                      # HTTP 200 with at least one non-empty bot text
    MISSING = "missing"            # HTTP 200 with no bot text at all
    NO_REPLY = "no_reply"          # only the channel's utter_no_reply: Rasa produced no reply itself
    APOLOGY = "apology"            # utter_llm_unavailable among the texts
    RATE_LIMITED = "rate_limited"  # HTTP 429 (the channel's per-sender limit)
    CLIENT_ERROR = "4xx"
    SERVER_ERROR = "5xx"
    ERROR = "error"                # no HTTP answer: connection error, timeout; or an unexpected body


# ---- what the simulated users say (rasa_project/data and tests/test_stories.yml) ----

GREETINGS = ["hello", "hi", "hey there", "good morning", "hi, i need some help", "hello, I have a question"]
FAQ = [
    "what is your return policy?", "how long do I have to return an item?", "how do I get a refund",
    "how much does shipping cost to germany?", "can I pay with paypal?",
    "my tent pole broke, is it under warranty?", "when is customer support open?",
]
BOT_CHALLENGES = ["am I talking to a bot?", "are you a bot?", "are you a real person?"]
OPEN = [
    "what sleeping bag do you recommend for -5C?", "how do I pitch a tent in strong wind?",
    "what's your favourite mountain?", "which backpack is best for a weekend hike?",
    "how do I break in new hiking boots", "what should I pack for a 3 day hike",
    "which stove is best for cooking at altitude", "merino or synthetic base layers?",
]
ORDERS = [("RG-10421", "anna.berg@example.com"), ("RG-10422", "tom.okafor@example.com"),
          ("RG-10423", "mia.rossi@example.com")]
THANKS = ["thanks a lot!", "thank you", "thx"]
GOODBYES = ["bye", "goodbye", "see you later"]


@dataclass(frozen=True)
class Turn:
    kind: Kind
    text: str


def form_segment(rng: random.Random, room: int) -> list[Turn]:
    """The order-status form in three turns (ask, id, email) or, with less room, two (id up front)."""
    order_id, email = ORDERS[0] if rng.random() < 0.6 else rng.choice(ORDERS)
    if room >= 3:
        opener = rng.choice(["I want to check my order", "track my order please", "order status"])
        texts = [opener, order_id, rng.choice([email, f"my email is {email}"])]
    else:
        texts = [f"where is my order {order_id}?", email]
    return [Turn(Kind.FORM, t) for t in texts]


def plan_conversation(n: int, turns: int, seed: int = 0) -> list[Turn]:
    """What conversation ``n`` says, ``turns`` turns long: a greeting, then a rotating mix of
    the order form, open-ended questions and FAQ/bot questions, then thanks and goodbye.
    The same (n, turns, seed) always gives the same conversation."""
    rng = random.Random(seed * 1_000_003 + n)
    closing = [Turn(Kind.SCRIPTED, rng.choice(THANKS))] if turns >= 6 else []
    closing += [Turn(Kind.SCRIPTED, rng.choice(GOODBYES))] if turns >= 3 else []
    middle: list[Turn] = []
    room = turns - 1 - len(closing)
    order = [Kind.FORM, Kind.OPEN, Kind.SCRIPTED, Kind.OPEN]
    for kind in itertools.islice(itertools.cycle(order), n % len(order), None):
        left = room - len(middle)
        if left <= 0:
            break
        if kind is Kind.FORM and left >= 2:
            middle += form_segment(rng, left)
        elif kind is Kind.OPEN:
            middle.append(Turn(Kind.OPEN, rng.choice(OPEN)))
        elif kind is Kind.SCRIPTED:
            middle.append(Turn(Kind.SCRIPTED, rng.choice(FAQ if rng.random() < 0.75 else BOT_CHALLENGES)))
    return ([Turn(Kind.SCRIPTED, rng.choice(GREETINGS))] + middle + closing)[:turns]


# ---- classifying and summarising turns ----

def normalise(text: str) -> str:
    return " ".join(text.split())


def apology_texts(project: Path = RASA_PROJECT, names: Iterable[str] = APOLOGY_RESPONSES) -> frozenset[str]:
    """The texts of these responses (utter_llm_unavailable by default) in the domain, whitespace-normalised."""
    texts = set()
    for path in sorted((project / "domain").glob("*.yml")):
        responses = (yaml.safe_load(path.read_text()) or {}).get("responses") or {}
        for name in names:
            texts.update(normalise(v["text"]) for v in responses.get(name) or [] if v.get("text"))
    return frozenset(texts)


def classify(status: int | None, body: Any, apologies: Iterable[str], no_reply: Iterable[str] = ()) -> Outcome:
    """The outcome of one turn from its HTTP status (None: no answer) and decoded JSON body."""
    if status is None:
        return Outcome.ERROR
    if status == 429:
        return Outcome.RATE_LIMITED
    if 500 <= status < 600:
        return Outcome.SERVER_ERROR
    if 400 <= status < 500:
        return Outcome.CLIENT_ERROR
    if status != 200 or not isinstance(body, list):
        return Outcome.ERROR
    texts = [normalise(m["text"]) for m in body if isinstance(m, dict) and isinstance(m.get("text"), str)]
    texts = [t for t in texts if t]
    if not texts:
        return Outcome.MISSING
    if set(texts) <= set(no_reply):
        return Outcome.NO_REPLY
    if set(texts) & set(apologies):
        return Outcome.APOLOGY
    return Outcome.OK


def latency_summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": percentile(values, 0.50), "p95": percentile(values, 0.95),
            "p99": percentile(values, 0.99), "max": max(values), "mean": statistics.fmean(values)}


@dataclass
class TurnResult:
    sender: str
    index: int
    kind: Kind
    text: str
    outcome: Outcome
    status: int | None
    latency_ms: float | None  # None when no HTTP answer came
    detail: str = ""


# ---- memory of the services: RSS of a process and all its descendants ----

def read_stat(pid_dir: Path) -> tuple[int, int]:
    """(ppid, session id) of a process from /proc/<pid>/stat (its name may hold spaces and parentheses)."""
    fields = pid_dir.joinpath("stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[3])


def process_tree(root: int, proc: Path = Path("/proc")) -> set[int]:
    """``root``, its descendants, and any process in the session ``root`` leads (orphaned workers)."""
    parent: dict[int, int] = {}
    tree: set[int] = set()
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                ppid, session = read_stat(entry)
            except (OSError, IndexError, ValueError):
                continue  # it exited while we looked
            parent[int(entry.name)] = ppid
            if session == root:
                tree.add(int(entry.name))
    if root not in parent:
        return set()
    tree.add(root)
    while children := {pid for pid, ppid in parent.items() if ppid in tree} - tree:
        tree |= children
    return tree


def rss_kib(pid: int, proc: Path = Path("/proc")) -> int:
    try:
        for line in proc.joinpath(str(pid), "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0  # gone, a zombie, or a kernel thread


def services_rss_mib(pids: Mapping[str, int], proc: Path = Path("/proc")) -> dict[str, float]:
    return {name: round(sum(rss_kib(p, proc) for p in process_tree(pid, proc)) / 1024, 1)
            for name, pid in pids.items()}


# ---- the load ----

@dataclass
class LoadSettings:
    conversations: int = 50
    turns: int = 10
    memory_marks: tuple[int, ...] = ()  # cumulative turn counts at which to sample RSS
    timeout_s: float = 120.0
    seed: int = 0
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    progress_s: float = 0.0  # print progress to stderr every this many seconds (0: never)

    @property
    def total_turns(self) -> int:
        """Turns to send: one conversation per worker, or enough whole conversations to pass the last mark."""
        if not self.memory_marks:
            return self.conversations * self.turns
        return max(math.ceil(max(self.memory_marks) / self.turns) * self.turns, self.conversations * self.turns)


async def run_load(rasa_url: str, settings: LoadSettings, pids: Mapping[str, int] | None = None,
                   apologies: Iterable[str] | None = None) -> dict:
    """Drive ``settings.conversations`` concurrent conversations against ``rasa_url``; return the report."""
    apologies = frozenset(apologies if apologies is not None else apology_texts())
    no_reply = apology_texts(names=NO_REPLY_RESPONSES)
    pids = dict(pids or {})
    url = f"{rasa_url.rstrip('/')}/webhooks/rest/webhook"
    results: list[TurnResult] = []
    memory: list[dict] = [{"turns": 0, "rss_mib": services_rss_mib(pids)}] if pids else []
    marks = sorted(settings.memory_marks) if pids else []
    planned = 0
    next_conversation = itertools.count()

    def record(result: TurnResult) -> None:
        results.append(result)
        while marks and len(results) >= marks[0]:
            marks.pop(0)
            memory.append({"turns": len(results), "rss_mib": services_rss_mib(pids)})
            if settings.progress_s > 0:
                print(f"[load] RSS MiB after {memory[-1]['turns']} turns: {memory[-1]['rss_mib']}",
                      file=sys.stderr, flush=True)

    async def converse(client: httpx.AsyncClient, n: int) -> None:
        sender = f"load-{settings.run_id}-{n}"
        for index, turn in enumerate(plan_conversation(n, settings.turns, settings.seed)):
            start = time.perf_counter()
            try:
                response = await client.post(url, json={"sender": sender, "message": turn.text})
            except (httpx.HTTPError, OSError) as error:
                record(TurnResult(sender, index, turn.kind, turn.text, Outcome.ERROR, None, None,
                                  f"{type(error).__name__}: {error}"))
                continue
            latency_ms = (time.perf_counter() - start) * 1000
            try:
                body = response.json()
            except ValueError:
                body = None
            outcome = classify(response.status_code, body, apologies, no_reply)
            detail = "" if outcome is Outcome.OK else response.text[:300]
            record(TurnResult(sender, index, turn.kind, turn.text, outcome, response.status_code, latency_ms, detail))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal planned
        while planned < settings.total_turns:
            planned += settings.turns
            await converse(client, next(next_conversation))

    async def progress(started: float) -> None:
        while settings.progress_s > 0:
            await asyncio.sleep(settings.progress_s)
            elapsed = time.monotonic() - started
            counts = {o.value: n for o, n in count_outcomes(results).items() if n}
            print(f"[load] {elapsed:6.0f} s  {len(results)}/{settings.total_turns} turns  "
                  f"{len(results) / elapsed:.2f} turns/s  {counts}", file=sys.stderr, flush=True)

    limits = httpx.Limits(max_connections=settings.conversations, max_keepalive_connections=settings.conversations)
    load_before = os.getloadavg()
    started_wall, started = time.time(), time.monotonic()
    async with httpx.AsyncClient(timeout=settings.timeout_s, limits=limits) as client:
        reporter = asyncio.create_task(progress(started))
        interrupted = False
        try:
            with cancelled_by_sigterm():
                await asyncio.gather(*(worker(client) for _ in range(settings.conversations)))
        except asyncio.CancelledError:  # Ctrl-C or SIGTERM: report what was measured so far
            asyncio.current_task().uncancel()
            interrupted = True
        finally:
            reporter.cancel()
    duration_s = time.monotonic() - started
    if pids and (interrupted or not settings.memory_marks) and (not memory or memory[-1]["turns"] < len(results)):
        memory.append({"turns": len(results), "rss_mib": services_rss_mib(pids)})
    report = build_report(results, settings, duration_s, memory, rasa_url=rasa_url, started=started_wall,
                          loadavg=(load_before, os.getloadavg()))
    if interrupted:
        report["interrupted"] = True
        report["failures"].insert(0, f"interrupted after {len(results)} of {settings.total_turns} turns")
    return report


@contextmanager
def cancelled_by_sigterm():
    """SIGTERM cancels the running task, as Ctrl-C does under asyncio.run (main thread only)."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    except (NotImplementedError, RuntimeError, ValueError):
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def count_outcomes(results: Iterable[TurnResult]) -> dict[Outcome, int]:
    counts = {o: 0 for o in Outcome}
    for r in results:
        counts[r.outcome] += 1
    return counts


def build_report(results: list[TurnResult], settings: LoadSettings, duration_s: float, memory: list[dict],
                 **context: Any) -> dict:
    """The machine-readable report (also what the printed tables are made from)."""
    answered = [r for r in results if r.latency_ms is not None]
    latency = {"all": latency_summary([r.latency_ms for r in answered])}
    latency.update({k.value: latency_summary([r.latency_ms for r in answered if r.kind is k]) for k in Kind})
    by_kind = {k.value: {o.value: n for o, n in count_outcomes(r for r in results if r.kind is k).items()}
               for k in Kind}
    outcomes = {o.value: n for o, n in count_outcomes(results).items()}
    report = {
        "run_id": settings.run_id,
        "settings": {"conversations": settings.conversations, "turns": settings.turns,
                     "memory_marks": list(settings.memory_marks), "timeout_s": settings.timeout_s,
                     "seed": settings.seed},
        **context,
        "turns": len(results),
        "duration_s": round(duration_s, 2),
        "throughput_turns_per_s": round(len(results) / duration_s, 3) if duration_s > 0 else math.nan,
        "outcomes": outcomes,
        "outcomes_by_kind": by_kind,
        "latency_ms": latency,
        "memory": memory_summary(memory, marked=bool(settings.memory_marks)),
        "examples": {o.value: [{**asdict(r), "kind": r.kind.value, "outcome": o.value}
                               for r in results if r.outcome is o][:3]
                     for o in Outcome if o is not Outcome.OK and outcomes[o.value]},
    }
    report["failures"] = failures(report)
    return report


def memory_summary(samples: list[dict], marked: bool = True) -> dict:
    """The RSS samples and, with two or more marks passed, each service's ratio last/first mark."""
    marks = [s for s in samples if s["turns"] > 0]
    ratio = {}
    if marked and len(marks) >= 2:
        first, last = marks[0]["rss_mib"], marks[-1]["rss_mib"]
        ratio = {name: round(last[name] / first[name], 3) for name in first if first[name] > 0 and name in last}
    return {"samples": samples, "ratio_last_first": ratio, "target_ratio": RSS_TARGET_RATIO}


def failures(report: dict) -> list[str]:
    """Why this run fails as a check (empty: it passes)."""
    found = [f"{report['outcomes'][name]} turn(s) {name}" for name in FAILING if report["outcomes"][name]]
    found += [f"{name} RSS grew x{ratio:.3f} (target <= x{RSS_TARGET_RATIO:.2f})"
              for name, ratio in report["memory"]["ratio_last_first"].items() if ratio > RSS_TARGET_RATIO]
    found += [f"{name} was not running at the {sample['turns']}-turn mark (RSS 0)"
              for sample in report["memory"]["samples"] for name, mib in sample["rss_mib"].items() if mib <= 0]
    return found


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [f"{s['conversations']} concurrent conversations x {s['turns']} turns: {report['turns']} turns in "
             f"{report['duration_s']:.1f} s, {report['throughput_turns_per_s']:.2f} turns/s "
             f"(run {report['run_id']}, load average {report.get('loadavg', [[0]])[0][0]:.2f} before)", "",
             "| turn | n | p50 ms | p95 ms | p99 ms | max ms | mean ms |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, row in report["latency_ms"].items():
        if row["n"]:
            lines.append(f"| {name} | {row['n']} | " + " | ".join(
                f"{row[k]:.0f}" for k in ("p50", "p95", "p99", "max", "mean")) + " |")
    names = list(Outcome)
    lines += ["", "| turn | " + " | ".join(o.value for o in names) + " |",
              "| --- |" + " ---: |" * len(names)]
    for kind, counts in report["outcomes_by_kind"].items():
        lines.append(f"| {kind} | " + " | ".join(str(counts[o.value]) for o in names) + " |")
    lines.append("| all | " + " | ".join(str(report["outcomes"][o.value]) for o in names) + " |")
    samples = report["memory"]["samples"]
    if samples:
        services = list(samples[0]["rss_mib"])
        lines += ["", "| RSS MiB after turns | " + " | ".join(services) + " |",
                  "| ---: |" + " ---: |" * len(services)]
        for sample in samples:
            lines.append(f"| {sample['turns']} | " + " | ".join(f"{sample['rss_mib'][n]:.1f}" for n in services) + " |")
        ratio = report["memory"]["ratio_last_first"]
        if ratio:
            lines.append(f"| last / first mark (target <= {RSS_TARGET_RATIO:.2f}) | "
                         + " | ".join(f"{ratio.get(n, math.nan):.3f}" for n in services) + " |")
    for outcome, examples in report["examples"].items():
        lines += ["", f"{outcome}, first {len(examples)}:"]
        lines += [f"  {e['sender']} turn {e['index']} ({e['kind']}) {e['text']!r}: {e['status']} {e['detail']!r}"
                  for e in examples]
    lines += ["", "FAIL: " + "; ".join(report["failures"]) if report["failures"] else "PASS"]
    return "\n".join(lines)


# ---- command line ----

def start_stack(exits: ExitStack, log_dir: Path | None) -> tuple[str, dict[str, int]]:
    """The tiny-model stack on free loopback ports, as tools/bench/turns.py starts it; (Rasa URL, pids)."""
    from stack.process import Stack
    from stack.services import DEFAULT_RASA_MODEL
    from tools.procs import tiny_model_services

    if not DEFAULT_RASA_MODEL.exists():
        raise SystemExit(f"No trained Rasa model at {DEFAULT_RASA_MODEL}; run `make rasa-model` first.")
    root = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="load-")))
    config, services = tiny_model_services(root)
    print(f"[load] starting llm, actions, rasa (logs in {log_dir or root / 'logs'}) ...", file=sys.stderr, flush=True)
    stack = exits.enter_context(Stack(services, log_dir=log_dir or root / "logs"))
    return f"http://127.0.0.1:{config.rasa_port}", {n: r.process.pid for n, r in stack.running.items()}


def marks(raw: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted(int(v) for v in raw.split(",") if v.strip()))
    except ValueError:
        values = ()
    if len(values) < 2 or values[0] <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r}: give two or more positive turn counts, e.g. 1000,10000")
    return values


def service_pid(raw: str) -> tuple[str, int]:
    name, _, pid = raw.partition("=")
    if not name or not pid.isdigit():
        raise argparse.ArgumentTypeError(f"{raw!r}: give NAME=PID, e.g. rasa=12345")
    return name, int(pid)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=50, help="concurrent conversations (default 50)")
    parser.add_argument("--turns", type=int, default=10, help="turns per conversation (default 10)")
    parser.add_argument("--memory-turns", type=marks, default=(), metavar="N1,N2[,...]",
                        help="keep starting conversations until the last count; sample each service's RSS "
                             "when the cumulative turn count passes each one (e.g. 1000,10000)")
    parser.add_argument("--rasa-url", help="drive a running Rasa (e.g. http://localhost:5005) instead of starting one")
    parser.add_argument("--pid", type=service_pid, action="append", default=[], metavar="NAME=PID",
                        help="with --rasa-url: a service's main process, to sample its RSS (repeatable)")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="per-turn HTTP timeout (default 120)")
    parser.add_argument("--seed", type=int, default=0, help="varies what the conversations say")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--log-dir", type=Path, help="keep the started services' logs here")
    parser.add_argument("--progress-s", type=float, default=30.0, help="progress line every N seconds (0: none)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if args.conversations < 1 or args.turns < 1:
        raise SystemExit("--conversations and --turns must be at least 1.")
    settings = LoadSettings(conversations=args.conversations, turns=args.turns, memory_marks=args.memory_turns,
                            timeout_s=args.timeout_s, seed=args.seed, progress_s=args.progress_s)
    with ExitStack() as exits:
        if args.rasa_url:
            rasa_url, pids = args.rasa_url, dict(args.pid)
        else:
            rasa_url, pids = start_stack(exits, args.log_dir)
        if settings.memory_marks and not pids:
            print("[load] no service pids (--pid NAME=PID): RSS is not sampled", file=sys.stderr)
        print(f"[load] run {settings.run_id}: {settings.conversations} conversations x {settings.turns} turns, "
              f"{settings.total_turns} turns against {rasa_url}", file=sys.stderr, flush=True)
        report = asyncio.run(run_load(rasa_url, settings, pids))
    report["host"] = {"node": platform.node(), "machine": platform.machine(), "cpus": os.cpu_count(),
                      "date": time.strftime("%Y-%m-%d", time.localtime(report["started"]))}
    print(markdown(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
