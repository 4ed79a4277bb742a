"""`python -m training`: the entry point, its usage, and every command's --help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from training.__main__ import COMMANDS, main


def test_usage_lists_the_commands(capsys):
    assert main([]) == 2
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in COMMANDS)
    assert main(["train"]) == 2
    assert "unknown command 'train'" in capsys.readouterr().err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help_with_config_and_flags(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"python -m training {command}" in out
    assert "--model" in out or "--input" in out


def test_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "training", "prepare", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--val-fraction" in result.stdout and "--redact {all,tracker,none}" in result.stdout
