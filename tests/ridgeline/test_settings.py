"""ridgeline/settings.py: a number from the environment, a renamed variable, what a child process is given."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest

from ridgeline import settings
from ridgeline.settings import Allowlist, ConfigError, env_number, parse_number, renamed

REPO = Path(__file__).resolve().parents[2]
RASA_PYTHON = Path(os.environ.get("RASA_VENV") or REPO / ".venv-rasa") / "bin" / "python"


@pytest.mark.parametrize(("kind", "raw", "bounds", "value"), [
    (int, "15", {"above": 0}, 15),
    (int, " 3 ", {"at_least": 0}, 3),
    (int, "0", {"at_least": 0}, 0),
    (float, "2.5", {"above": 0}, 2.5),
    (float, "30", {}, 30.0),
    (int, "65535", {"at_least": 1, "at_most": 65535}, 65535),
])
def test_a_number_within_its_bounds(kind, raw, bounds, value):
    parsed = parse_number(kind, raw, "X", **bounds)
    assert parsed == value and type(parsed) is kind


@pytest.mark.parametrize(("kind", "raw", "bounds", "message"), [
    (int, "none", {"above": 0}, "RATE='none' is not a whole number > 0."),
    (int, "1.5", {"above": 0}, "RATE='1.5' is not a whole number > 0."),
    (int, "-1", {"at_least": 0}, "RATE='-1' is not a whole number >= 0."),
    (int, "0", {"at_least": 1, "at_most": 65535, "meaning": "a TCP port"},
     "RATE='0' is not a whole number from 1 to 65535 (a TCP port)."),
    (float, "nan", {}, "RATE='nan' is not a number."),
    (float, "inf", {"above": 0}, "RATE='inf' is not a number > 0."),
    (float, "5m", {"above": 0, "unit": "seconds"}, "RATE='5m' is not a number of seconds > 0."),
    (float, "0", {"above": 0, "unit": "seconds", "meaning": "the window"},
     "RATE='0' is not a number of seconds > 0 (the window)."),
])
def test_a_number_that_cannot_be_used_is_named_with_what_it_must_be(kind, raw, bounds, message):
    with pytest.raises(ConfigError) as caught:
        parse_number(kind, raw, "RATE", **bounds)
    assert str(caught.value) == message


def test_a_flag_is_named_as_a_flag():
    with pytest.raises(ConfigError, match=r"^--port 'x' is not a whole number\.$"):
        parse_number(int, "x", "--port")


def test_an_unset_or_blank_variable_is_its_default():
    assert env_number({}, "N", int, 7) == 7
    assert env_number({"N": "  "}, "N", int, 7) == 7
    assert env_number({"N": "8"}, "N", int, 7, above=0) == 8
    with pytest.raises(ConfigError, match="N='-8' is not a whole number > 0"):
        env_number({"N": "-8"}, "N", int, 7, above=0)


@pytest.fixture
def warnings_(monkeypatch, caplog):
    monkeypatch.setattr(settings, "_warned", set())
    caplog.set_level(logging.WARNING, logger="ridgeline.settings")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "ridgeline.settings"]


def test_an_old_name_works_with_one_warning_naming_the_new_one(warnings_):
    renames = {"OLD_X": "NEW_X", "OLD_Y": "NEW_Y"}
    env = {"OLD_X": "1", "OTHER": "o"}
    assert renamed(env, renames, "the service") == {"OLD_X": "1", "NEW_X": "1", "OTHER": "o"}
    assert renamed(env, renames, "the service")["NEW_X"] == "1"
    assert warnings_() == ["OLD_X is the old name of NEW_X (the service); it works until the next release: "
                           "rename it to NEW_X."]
    assert env == {"OLD_X": "1", "OTHER": "o"}, "the environment itself is left alone"


def test_the_new_name_wins_and_a_different_old_value_is_reported_ignored(warnings_):
    assert renamed({"OLD_X": "1", "NEW_X": "2"}, {"OLD_X": "NEW_X"}, "svc")["NEW_X"] == "2"
    assert warnings_() == ["OLD_X is ignored: NEW_X is set too and wins (svc); remove OLD_X, its old name."]


def test_the_same_value_under_both_names_or_a_blank_old_one_is_no_news(warnings_):
    assert renamed({"OLD_X": "1", "NEW_X": "1"}, {"OLD_X": "NEW_X"}, "svc")["NEW_X"] == "1"
    assert renamed({"OLD_X": " ", "NEW_X": ""}, {"OLD_X": "NEW_X"}, "svc")["NEW_X"] == ""
    assert renamed({"OLD_X": "3", "NEW_X": " "}, {"OLD_X": "NEW_X"}, "svc")["NEW_X"] == "3"  # blank is unset
    assert len(warnings_()) == 1


def test_a_child_process_is_given_the_basics_and_what_it_reads():
    env = {"PATH": "/bin", "HOME": "/h", "LANG": "C", "LC_CTYPE": "C", "TMPDIR": "/t", "TZ": "UTC", "HF_HOME": "/hf",
           "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "0",
           "HTTP_PROXY": "p", "https_proxy": "p", "NO_PROXY": "n", "PYTHONPATH": "/s", "VIRTUAL_ENV": "/v",
           "SSL_CERT_FILE": "/c", "REQUESTS_CA_BUNDLE": "/c", "XDG_CACHE_HOME": "/x", "COVERAGE_PROCESS_START": "c",
           "MINE_A": "a", "MINE": "m", "THEIRS": "t", "AWS_SECRET_ACCESS_KEY": "s"}
    given = Allowlist(names=["MINE"], prefixes=["MINE_"]).select(env)
    assert set(env) - set(given) == {"THEIRS", "AWS_SECRET_ACCESS_KEY"}
    assert Allowlist().select(env) == {k: v for k, v in env.items() if not k.startswith(("MINE", "THEIRS", "AWS"))}


def test_the_ground_floors_settings_run_on_rasas_python():
    if not RASA_PYTHON.exists():
        pytest.fail(f"{RASA_PYTHON} is missing: run `make setup` (make test does)")
    code = ("from ridgeline.settings import Allowlist, env_number, renamed\n"
            "assert env_number({'N': '3'}, 'N', int, 1, above=0) == 3\n"
            "assert renamed({'O': '1'}, {'O': 'N'}, 's')['N'] == '1'\n"
            "assert Allowlist(['N']).select({'N': '1', 'X': '2', 'PATH': '/'}) == {'N': '1', 'PATH': '/'}\n")
    result = subprocess.run([str(RASA_PYTHON), "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
