"""``python -m llm``: the old tiny-model command, start-up errors, and a real server process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from llm.__main__ import main
from tools.procs import free_port

REPO = Path(__file__).resolve().parents[2]


def test_the_old_tiny_model_command_forwards_to_the_tool_with_a_warning_naming_it(tmp_path):
    from transformers import AutoModelForCausalLM

    with pytest.warns(DeprecationWarning, match=r"python -m tools\.testing\.tiny_model .*next release"):
        assert main(["tiny-model", "--output", str(tmp_path / "tiny"), "--seed", "1"]) == 0
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "tiny").config.model_type == "qwen2"


def test_the_old_tiny_model_command_without_the_tools_says_where_it_went(tmp_path, monkeypatch, capsys):
    """As in the LLM image, which has no tools/: one sentence naming the new command, exit 2."""
    monkeypatch.setitem(sys.modules, "tools.testing.tiny_model", None)  # importing it now fails
    assert main(["tiny-model", "--output", str(tmp_path / "tiny")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: `python -m llm tiny-model` moved to `python -m tools.testing.tiny_model")
    assert "make tiny-model" in err and not (tmp_path / "tiny").exists()


def test_invalid_configuration_exits_2_with_one_sentence(monkeypatch, capsys):
    monkeypatch.setenv("LLM_DEFAULT_MAX_TOKENS", "900")
    assert main(["serve", "--model", "/nowhere", "--max-new-tokens-cap", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: --default-max-tokens (900) must be between 1 and --max-new-tokens-cap (100); "
        "lower LLM_DEFAULT_MAX_TOKENS or raise LLM_MAX_NEW_TOKENS_CAP."
    )


def test_invalid_combination_exits_2_before_loading_anything(capsys):
    assert main(["serve", "--model", "/nowhere", "--quantization", "int8", "--cpu-prepack", "on"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --cpu-prepack on repacks unquantized weights, but --quantization is int8; "
        "use --quantization none, or --cpu-prepack auto/off."
    )


def serve_process(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "llm", "serve", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(process: subprocess.Popen, base_url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base_url}/ready did not turn 200 within {timeout_s}s")


@pytest.mark.slow
def test_real_server_serves_a_completion_and_stops_on_sigterm(tiny_model_dir):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = serve_process("--model", str(tiny_model_dir), "--port", str(port), env={"LLM_CPU_THREADS": "1"})
    try:
        wait_ready(process, base_url)
        assert httpx.get(f"{base_url}/health").json() == {"status": "ok"}
        response = httpx.post(
            f"{base_url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "canary-word tent"}], "max_tokens": 6},
            timeout=30,
        )
        assert response.status_code == 200
        assert response.json()["usage"]["completion_tokens"] <= 6
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=60)  # a hang guard, not a measurement
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.communicate()[1]
    assert returncode == 0, stderr
    assert f"port={port} (flag --port)" in stderr  # the effective config is printed
    assert "cpu_threads=1 (env LLM_CPU_THREADS)" in stderr
    request_line = next(line for line in stderr.splitlines() if "completion_tokens=" in line)
    assert response.json()["id"] in request_line and "finish_reason=" in request_line
    assert "canary-word" not in stderr  # message content is never logged
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_missing_model_exits_2_with_one_sentence_and_no_traceback(tmp_path):
    missing = tmp_path / "no-such-model"
    process = serve_process("--model", str(missing), "--port", str(free_port()))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [
        f"error: Could not load model '{missing}': the directory does not exist. Set LLM_MODEL (or --model) to a "
        "local model directory (for a demo: `make tiny-model` then LLM_MODEL=models/tiny-qwen2), or allow network "
        "access."
    ]
