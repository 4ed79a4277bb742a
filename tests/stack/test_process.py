"""The process supervisor `make run` and the end-to-end tests rely on, with real child processes."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from stack.process import Service, Stack, StackError, free_port, http_ok, port_is_free
from stack.services import StackConfig, build_services


def http_server(name: str, tmp_path, port: int | None = None, **kwargs) -> Service:
    port = port or free_port()
    return Service(
        name=name,
        command=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        health_url=f"http://127.0.0.1:{port}/",
        url=f"http://127.0.0.1:{port}",
        cwd=tmp_path,
        **kwargs,
    )


def test_services_start_healthy_and_stop_cleanly(tmp_path):
    services = [http_server("one", tmp_path), http_server("two", tmp_path)]
    with Stack(services, log_dir=tmp_path / "logs") as stack:
        assert all(http_ok(s.health_url) for s in services)
        processes = [r.process for r in stack.running.values()]
    assert all(p.poll() is not None for p in processes), "a child outlived the stack"
    assert all(port_is_free(s.port) for s in services)


def test_one_service_can_be_stopped_and_started_again(tmp_path):
    service = http_server("web", tmp_path)
    with Stack([service], log_dir=tmp_path / "logs") as stack:
        stack.stop(["web"])
        assert not http_ok(service.health_url)
        stack.start(["web"])
        assert http_ok(service.health_url)


def test_a_service_that_dies_at_start_is_reported_with_its_log(tmp_path):
    crashing = Service(
        name="crashy",
        command=[sys.executable, "-c", "import sys; print('Could not load model X.'); sys.exit(2)"],
        health_url=f"http://127.0.0.1:{free_port()}/",
        url="http://127.0.0.1:1",
        cwd=tmp_path,
    )
    with pytest.raises(StackError) as caught:
        with Stack([crashing], log_dir=tmp_path / "logs"):
            pass
    assert "crashy exited with code 2" in str(caught.value)
    assert "Could not load model X." in str(caught.value)


def test_a_service_that_never_gets_healthy_times_out(tmp_path):
    sleeper = Service(
        name="sleepy",
        command=[sys.executable, "-c", "import time; time.sleep(60)"],
        health_url=f"http://127.0.0.1:{free_port()}/",
        url="http://127.0.0.1:1",
        cwd=tmp_path,
        startup_timeout_s=1.5,
    )
    started = time.monotonic()
    with pytest.raises(StackError, match="sleepy was not ready"):
        with Stack([sleeper], log_dir=tmp_path / "logs"):
            pass
    assert time.monotonic() - started < 20


def test_a_busy_port_is_named_before_anything_starts(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(StackError, match=f"web :{port}.*RASA_PORT"):
            with Stack([http_server("web", tmp_path, port=port)], log_dir=tmp_path / "logs"):
                pass


def test_config_from_env_rejects_a_bad_port():
    with pytest.raises(ValueError, match="RASA_PORT='http' is not a port"):
        StackConfig.from_env({"RASA_PORT": "http"})


def test_rasa_is_pointed_at_the_action_server_of_this_run(tmp_path):
    config = StackConfig(actions_port=6123, run_dir=tmp_path)
    rasa = next(s for s in build_services(config) if s.name == "rasa")
    endpoints = rasa.command[rasa.command.index("--endpoints") + 1]
    assert "http://127.0.0.1:6123/webhook" in open(endpoints).read()


def test_rasa_needs_its_token_and_the_action_server_gets_rasa_s_token(tmp_path):
    config = StackConfig.from_env({"RASA_AUTH_TOKEN": "api-token", "ACTION_SERVER_TOKEN": "action-token"})
    config = StackConfig(**{**config.__dict__, "run_dir": tmp_path})
    services = {s.name: s for s in build_services(config)}
    rasa, actions = services["rasa"], services["actions"]
    assert rasa.command[rasa.command.index("--auth-token") + 1] == "api-token"
    assert rasa.health_url.endswith("/"), "the health check must not need the token"
    assert rasa.env["ACTION_SERVER_TOKEN"] == actions.env["ACTION_SERVER_TOKEN"] == "action-token"
    assert actions.command[1:3] == ["-m", "actions.server"]
    endpoints = open(rasa.command[rasa.command.index("--endpoints") + 1]).read()
    assert "Bearer ${ACTION_SERVER_TOKEN}" in endpoints and "action-token" not in endpoints


def test_unset_tokens_are_made_up_per_run_and_never_shown(tmp_path):
    first, second = StackConfig.from_env({}), StackConfig.from_env({})
    assert len(first.rasa_auth_token) >= 24 and first.rasa_auth_token != second.rasa_auth_token
    assert first.action_server_token != second.action_server_token
    assert first.rasa_auth_token not in repr(first) and first.action_server_token not in repr(first)


def test_the_llm_api_key_reaches_the_llm_service_and_the_action_server_only_when_set(tmp_path):
    plain = {s.name: s for s in build_services(StackConfig(run_dir=tmp_path))}
    assert "LLM_API_KEY" not in plain["llm"].env and "LLM_API_KEY" not in plain["actions"].env
    keyed = {s.name: s for s in build_services(StackConfig(run_dir=tmp_path, llm_api_key="k3y"))}
    assert keyed["llm"].env["LLM_API_KEY"] == keyed["actions"].env["LLM_API_KEY"] == "k3y"
    assert "LLM_API_KEY" not in keyed["rasa"].env


def test_a_jwt_secret_is_passed_to_rasa_when_set(tmp_path):
    config = StackConfig(run_dir=tmp_path, rasa_jwt_secret="jwt-s3cret")
    rasa = next(s for s in build_services(config) if s.name == "rasa")
    assert rasa.command[rasa.command.index("--jwt-secret") + 1] == "jwt-s3cret"
