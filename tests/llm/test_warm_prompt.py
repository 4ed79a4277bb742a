"""``--warm-prompt auto`` is the action server's system prompt, built from the ground floor alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from llm.engine.warm_prompt import warm_system_prompt
from ridgeline.knowledge import load

REPO = Path(__file__).resolve().parents[2]


def test_auto_is_the_system_prompt_the_action_server_sends():
    from actions.prompt import build_messages  # the action server's prompt builder

    events = [{"event": "user", "text": "how do I pitch a tent in strong wind?"}]
    messages = build_messages(events, {}, load(), history_turns=6, max_user_chars=500)
    assert messages[0]["role"] == "system"
    # the cache holds the tokens of this text; what the action server adds after it is computed per request
    assert messages[0]["content"].startswith(warm_system_prompt("auto"))
    assert len(warm_system_prompt("auto")) > 500


def test_auto_needs_no_action_server_package():
    # The LLM image holds ridgeline/, llm/ and knowledge/, not actions/: block its import and ask again.
    code = (
        "import sys; sys.modules['actions'] = None\n"
        "from llm.engine.warm_prompt import warm_system_prompt\n"
        "prompt = warm_system_prompt('auto')\n"
        "assert prompt and len(prompt) > 500, prompt\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_none_and_a_file(tmp_path):
    path = tmp_path / "system.txt"
    path.write_text("You are a test assistant.")
    assert warm_system_prompt("none") is None
    assert warm_system_prompt(str(path)) == "You are a test assistant."
