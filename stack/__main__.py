"""``python -m stack run``: start the LLM service, action server, Rasa and the webchat page.

`make run` calls this after setting up what is missing. Ctrl-C stops everything.
Environment: LLM_MODEL (hub id or local directory), RASA_PORT, ACTIONS_PORT,
LLM_PORT, WEBCHAT_PORT, STACK_HOST (default 127.0.0.1), STACK_RUN_DIR (logs,
endpoints, tracker; default var/run), LLM_API_KEY (both sides' key). Each service
is given the variables it reads besides: ACTIONS_* reach the action server (e.g.
ACTIONS_LLM_TIMEOUT_S), LLM_* the LLM service, Rasa's the Rasa server
(stack/services.py).

A service that stops is restarted 1, 2, 4 … s later (at most 30 s) while the others keep
serving; after STACK_MAX_RESTARTS restarts (default 5) of one service within
STACK_RESTART_WINDOW_S seconds (default 300) the next crash stops the assistant.
The services die with this process, however it ends.
"""

from __future__ import annotations

import argparse
import logging
import sys

from stack.process import Stack, StackError, interrupted_by_signal
from stack.services import StackConfig, build_services
from stack.supervisor import RestartPolicy, supervise

logger = logging.getLogger("stack")


def preflight(config: StackConfig) -> list[str]:
    problems = []
    if not (config.rasa_venv / "bin" / "rasa").exists():
        problems.append(f"No Rasa in {config.rasa_venv}; run `make setup`.")
    if not config.rasa_model.exists():
        problems.append(f"No trained Rasa model at {config.rasa_model}; run `make rasa-model`.")
    return problems


def run(config: StackConfig) -> int:
    problems = preflight(config)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    stop = interrupted_by_signal()
    stack = Stack(build_services(config), log_dir=config.run_dir / "logs", echo=sys.stdout,
                  stopping=stop, owner="`make run`")
    print(f"Starting the assistant (LLM_MODEL={config.llm_model}); logs in {stack.log_dir}", flush=True)
    try:
        stack.check_ports()
        stack.start()
    except StackError as error:
        stack.stop()
        if stop.is_set():
            print("\nStopped.", flush=True)
            return 0
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    urls = "\n".join(f"  {s.name:8} {s.url}" for s in stack.services)
    print(
        f"\nThe assistant is up:\n{urls}\n\nChat in the browser: {stack.services[-1].url}\n"
        f"Or over REST: curl -s {stack.services[2].url}/webhooks/rest/webhook "
        "-H 'Content-Type: application/json' -d '{\"sender\": \"me\", \"message\": \"hi\"}'\n"
        f"Rasa's HTTP API (/model/parse, /conversations/...) needs ?token={config.rasa_auth_token}"
        " (set RASA_AUTH_TOKEN to choose it).\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )
    return supervise(stack, RestartPolicy(max_restarts=config.max_restarts, window_s=config.restart_window_s), stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run"])
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = StackConfig.from_env()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
