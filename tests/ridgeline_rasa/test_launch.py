"""How Rasa is launched is defined once (ridgeline_rasa/launch.py), and every launcher uses it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from ridgeline_rasa import launch, settings
from stack.services import RASA_PROJECT, StackConfig, build_services
from tests.deploy.test_images import stages

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "rasa.Dockerfile"


def _env(steps: list[tuple[str, str]]) -> dict[str, str]:
    return dict(pair.split("=", 1) for word, rest in steps if word == "ENV" for pair in shlex.split(rest))


def test_the_server_arguments():
    assert launch.server_args("m.tar.gz", "e.yml", "c.yml", 5005) == [
        "run", "--model", "m.tar.gz", "--endpoints", "e.yml", "--credentials", "c.yml", "--port", "5005"]
    assert launch.server_args("m", "e", "c", 1, interface="0.0.0.0", api_token="t", jwt_secret="s", cors="*")[7:] == [
        "--interface", "0.0.0.0", "--port", "1", "--enable-api", "--auth-token=t", "--jwt-secret=s",
        "--cors", "*"]


def test_a_token_that_begins_with_a_dash_reaches_rasa_whole():
    """secrets.token_urlsafe() begins with "-" about once in 64 starts; `--auth-token -x…` made rasa's
    argparse stop with "expected one argument" and `make run` could not start."""
    import argparse

    parser = argparse.ArgumentParser()  # as `rasa run` declares these two options
    parser.add_argument("-t", "--auth-token")
    parser.add_argument("--jwt-secret")
    args = launch.server_args("m", "e", "c", 1, api_token="-Yw9p-token", jwt_secret="--secret")
    parsed, _ = parser.parse_known_args(args)
    assert (parsed.auth_token, parsed.jwt_secret) == ("-Yw9p-token", "--secret")


def test_make_run_starts_rasa_as_defined(tmp_path):
    config = StackConfig(run_dir=tmp_path, rasa_auth_token="api-token", rasa_jwt_secret="jwt-secret")
    rasa = next(s for s in build_services(config) if s.name == "rasa")
    assert rasa.command == [str(config.rasa_venv / "bin" / "rasa"), *launch.server_args(
        config.rasa_model, tmp_path / "endpoints.yml", RASA_PROJECT / "credentials.yml", config.rasa_port,
        interface=config.host, api_token="api-token", jwt_secret="jwt-secret", cors="*")]
    assert {name: rasa.env[name] for name in launch.ENV} == launch.ENV
    assert "PYTHONPATH" not in rasa.env, "the extension and the ground floor are installed in .venv-rasa"


def test_the_image_launches_rasa_as_defined():
    """The Dockerfile is static: its ENV, its training RUN and its CMD are the definition's."""
    rasa = stages(DOCKERFILE)
    for stage in ("train", "runtime"):
        env = _env(rasa[stage]["steps"])
        assert {name: env.get(name) for name in launch.ENV} == launch.ENV, \
            f"docker/rasa.Dockerfile's {stage} stage: set ENV as ridgeline_rasa/launch.py's ENV says"
    trains = [rest for word, rest in rasa["train"]["steps"] if word == "RUN" and "rasa train" in rest]
    assert trains == [shlex.join(["/opt/rasa/bin/rasa", *launch.train_args(launch.IMAGE_TRAIN_OUT)])]
    runtime = dict(rasa["runtime"]["steps"])
    assert json.loads(runtime["ENTRYPOINT"]) == ["rasa"]
    assert json.loads(runtime["CMD"]) == launch.image_command()
    assert runtime["EXPOSE"] == str(launch.IMAGE_PORT)
    copied = [rest.split()[-1] for word, rest in rasa["runtime"]["steps"] if word == "COPY"]
    assert {launch.IMAGE_MODEL, "/app/"} <= set(copied)
    assert "/models/assistant.tar.gz" in " ".join(r for w, r in rasa["runtime"]["steps"] if w == "COPY")


def test_the_model_script_and_make_shell_go_through_the_definition():
    script = (REPO / "scripts" / "rasa_model.sh").read_text()
    assert '"$RASA_VENV/bin/python" -m ridgeline_rasa.launch train --out models' in script
    makefile = (REPO / "Makefile").read_text()
    assert "-m ridgeline_rasa.launch shell --model models/assistant.tar.gz" in makefile
    from scripts import designer
    assert {name: designer.RASA_ENV[name] for name in launch.ENV} == launch.ENV


@pytest.mark.parametrize("path", ["Makefile", "scripts/rasa_model.sh", "scripts/designer.py", "stack/services.py"])
def test_no_launcher_writes_rasas_environment_itself(path):
    text = (REPO / path).read_text()
    for name in launch.ENV:
        assert name not in text, f"{path} names {name}: take Rasa's environment from ridgeline_rasa.launch.ENV"


@pytest.mark.parametrize(("argv", "expected"), [
    (["train"], launch.train_args("models")),
    (["train", "--out", "/models"], launch.train_args("/models")),
    (["shell", "--model", "models/assistant.tar.gz"], launch.shell_args("models/assistant.tar.gz")),
])
def test_the_command_line_runs_this_virtualenvs_rasa_with_the_definition(monkeypatch, tmp_path, argv, expected):
    rasa = tmp_path / "rasa"
    rasa.write_text("")
    monkeypatch.setattr(launch.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("RATE_LIMIT_MESSAGES", "3")  # the extension's
    monkeypatch.setenv("DB_HOST", "db")  # endpoints.yml's ${DB_HOST}
    monkeypatch.setenv("ACTIONS_LLM_TIMEOUT_S", "7")  # the action server's
    monkeypatch.setenv("LLM_MODEL", "some/model")  # the LLM service's
    ran = []
    monkeypatch.setattr(launch.os, "execve", lambda path, args, env: ran.append((path, args, env)))
    launch.main(argv)
    [(path, args, env)] = ran
    assert path == rasa and args == [str(rasa), *expected]
    assert {name: env[name] for name in launch.ENV} == launch.ENV
    assert env["RATE_LIMIT_MESSAGES"] == "3" and env["DB_HOST"] == "db" and env["PATH"] == launch.os.environ["PATH"]
    assert "ACTIONS_LLM_TIMEOUT_S" not in env and "LLM_MODEL" not in env, "Rasa is given only what it reads"


def test_rasa_is_given_what_it_reads_and_the_process_basics():
    env = launch.environment({"PATH": "/usr/bin", "HOME": "/home/me", "LC_ALL": "C", "PYTHONWARNINGS": "ignore",
                              "SLACK_SIGNING_SECRET": "s", "RASA_JWT_METHOD": "HS512", "REDIS_PASSWORD": "r",
                              "ACTION_SERVER_TOKEN": "t", "LOG_LEVEL": "DEBUG", "TF_INTRA_OP_PARALLELISM_THREADS": "2",
                              "SANIC_REQUEST_MAX_SIZE": "1", "ORDERS_DB_URL": "sqlite://", "LLM_API_KEY": "k",
                              "ACTIONS_LLM_API_KEY": "k", "AWS_SECRET_ACCESS_KEY": "x"})
    assert set(env) == {"PATH", "HOME", "LC_ALL", "PYTHONWARNINGS", "SLACK_SIGNING_SECRET", "RASA_JWT_METHOD",
                        "REDIS_PASSWORD", "ACTION_SERVER_TOKEN", "LOG_LEVEL", "TF_INTRA_OP_PARALLELISM_THREADS",
                        *launch.ENV}
    assert env["SANIC_REQUEST_MAX_SIZE"] == launch.ENV["SANIC_REQUEST_MAX_SIZE"], "ENV wins"
    assert all(launch.READS.allows(name) for name in settings.VARIABLES)


def test_without_rasa_next_to_the_python_the_command_line_says_what_to_do(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(launch.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(SystemExit) as exit_:
        launch.main(["train"])
    assert exit_.value.code == 2
    assert "run this with the Python of Rasa's virtualenv" in capsys.readouterr().err
