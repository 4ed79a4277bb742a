"""The process supervisor `make run` and the end-to-end tests rely on, with real child processes."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time

import pytest

from stack.process import Service, Stack, StackError, child_env, http_ok, port_is_free
from stack.services import StackConfig, build_services
from stack.supervisor import GaveUp, RestartPolicy, Supervisor
from tests.stack.supervised import Supervised
from tests.support.servers import wait_until
from tools.procs import free_port


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
        with pytest.raises(StackError, match=fr"port {port} \(web\) is held by pid {os.getpid()} .*RASA_PORT"):
            with Stack([http_server("web", tmp_path, port=port)], log_dir=tmp_path / "logs"):
                pass


def test_config_from_env_rejects_a_bad_port():
    with pytest.raises(ValueError, match=r"RASA_PORT='http' is not a whole number from 1 to 65535 \(a TCP port\)"):
        StackConfig.from_env({"RASA_PORT": "http"})
    with pytest.raises(ValueError, match="LLM_PORT='70000' is not a whole number from 1 to 65535"):
        StackConfig.from_env({"LLM_PORT": "70000"})


@pytest.mark.parametrize("name, raw, says", [
    ("STACK_MAX_RESTARTS", "-1", "is not a whole number >= 0 (how often a crashed service is restarted"),
    ("STACK_MAX_RESTARTS", "five", "is not a whole number >= 0"),
    ("STACK_RESTART_WINDOW_S", "0", "is not a number of seconds > 0 (the window in which"),
    ("STACK_RESTART_WINDOW_S", "inf", "is not a number of seconds > 0"),
    ("STACK_RESTART_WINDOW_S", "5m", "is not a number of seconds > 0"),
])
def test_config_from_env_rejects_bad_restart_settings_saying_what_they_mean(name, raw, says):
    with pytest.raises(ValueError) as caught:
        StackConfig.from_env({name: raw})
    assert str(caught.value).startswith(f"{name}={raw!r} {says}")


def test_config_from_env_reads_the_restart_settings_and_the_run_dir(tmp_path):
    config = StackConfig.from_env({"STACK_MAX_RESTARTS": "0", "STACK_RESTART_WINDOW_S": "90.5",
                                   "STACK_RUN_DIR": str(tmp_path)})
    assert (config.max_restarts, config.restart_window_s, config.run_dir) == (0, 90.5, tmp_path)
    defaults = StackConfig.from_env({})
    assert (defaults.max_restarts, defaults.restart_window_s) == (5, 300.0)


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
    assert "--auth-token=api-token" in rasa.command
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
    assert "LLM_API_KEY" not in plain["llm"].env and "ACTIONS_LLM_API_KEY" not in plain["actions"].env
    keyed = {s.name: s for s in build_services(StackConfig(run_dir=tmp_path, llm_api_key="k3y"))}
    assert keyed["llm"].env["LLM_API_KEY"] == keyed["actions"].env["ACTIONS_LLM_API_KEY"] == "k3y"
    assert not {"LLM_API_KEY", "ACTIONS_LLM_API_KEY"} & set(keyed["rasa"].env)
    # the action server is pointed at this run's LLM service, and left its own default budget
    assert keyed["actions"].env["ACTIONS_LLM_URL"] == f"http://127.0.0.1:{StackConfig.llm_port}/v1"
    assert "ACTIONS_LLM_TIMEOUT_S" not in keyed["actions"].env


# ---------------------------------------------------------------- each child's environment


SUPERVISOR_ENV = {
    "PATH": "/usr/bin", "HOME": "/home/me", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HF_HOME": "/hf",
    "HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost", "PYTHONPATH": "/src", "VIRTUAL_ENV": "/venv",
    "CUDA_VISIBLE_DEVICES": "0", "OMP_NUM_THREADS": "2", "COVERAGE_PROCESS_START": ".coveragerc",
    "ACTIONS_LLM_TIMEOUT_S": "7", "ACTIONS_LLM_MAX_TOKENS": "50", "ORDERS_DB_URL": "sqlite:///o.db",
    "LLM_MODEL": "some/model", "LLM_ENGINE": "llamacpp", "LLM_DEFAULT_MAX_TOKENS": "64",
    "RATE_LIMIT_MESSAGES": "3", "DB_HOST": "db", "REDIS_PASSWORD": "r3dis", "RASA_JWT_METHOD": "HS512",
    "AWS_SECRET_ACCESS_KEY": "not-theirs", "GITHUB_TOKEN": "nor-this", "STACK_MAX_RESTARTS": "2",
}
BASICS = {"PATH", "HOME", "LANG", "LC_ALL", "HF_HOME", "HTTPS_PROXY", "no_proxy", "PYTHONPATH", "VIRTUAL_ENV",
          "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "COVERAGE_PROCESS_START"}


def children_env(tmp_path, environ=SUPERVISOR_ENV, **config) -> dict[str, dict[str, str]]:
    services = build_services(StackConfig(run_dir=tmp_path, **config))
    return {s.name: child_env(s, environ) for s in services}


def test_each_service_is_given_the_variables_it_reads_and_the_process_basics_only(tmp_path):
    env = children_env(tmp_path)
    for name, given in env.items():
        assert BASICS <= set(given), name
        assert given["PYTHONUNBUFFERED"] == "1", name
        assert not {"AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "STACK_MAX_RESTARTS"} & set(given), name
    # the action server's own variables reach it, and no other service
    assert env["actions"]["ACTIONS_LLM_TIMEOUT_S"] == "7" and env["actions"]["ACTIONS_LLM_MAX_TOKENS"] == "50"
    assert env["actions"]["ORDERS_DB_URL"] == "sqlite:///o.db"
    for name in ("llm", "rasa", "webchat"):
        assert not {"ACTIONS_LLM_TIMEOUT_S", "ACTIONS_LLM_MAX_TOKENS", "ORDERS_DB_URL"} & set(env[name]), name
    # the LLM service's reach it only: LLM_MODEL means the service's checkpoint, not what the action server asks for
    assert {k: env["llm"][k] for k in ("LLM_MODEL", "LLM_ENGINE", "LLM_DEFAULT_MAX_TOKENS")} == {
        "LLM_MODEL": "some/model", "LLM_ENGINE": "llamacpp", "LLM_DEFAULT_MAX_TOKENS": "64"}
    for name in ("actions", "rasa", "webchat"):
        assert not [k for k in env[name] if k.startswith("LLM_")], name
    # Rasa's: the extension's settings and the stores of endpoints.yml
    assert {k: env["rasa"][k] for k in ("RATE_LIMIT_MESSAGES", "DB_HOST", "REDIS_PASSWORD", "RASA_JWT_METHOD")} == {
        "RATE_LIMIT_MESSAGES": "3", "DB_HOST": "db", "REDIS_PASSWORD": "r3dis", "RASA_JWT_METHOD": "HS512"}
    for name in ("llm", "actions", "webchat"):
        assert not {"RATE_LIMIT_MESSAGES", "DB_HOST", "REDIS_PASSWORD"} & set(env[name]), name
    assert set(env["webchat"]) == BASICS | {"PYTHONUNBUFFERED"}


def test_what_the_supervisor_sets_wins_over_its_environment(tmp_path):
    env = children_env(tmp_path, {**SUPERVISOR_ENV, "ACTIONS_LLM_URL": "http://elsewhere/v1",
                                  "SANIC_REQUEST_MAX_SIZE": "1"}, llm_timeout_s=15.0, llm_api_key="k3y")
    assert env["actions"]["ACTIONS_LLM_URL"] == f"http://127.0.0.1:{StackConfig.llm_port}/v1"
    assert env["actions"]["ACTIONS_LLM_TIMEOUT_S"] == "15"
    assert env["actions"]["ACTIONS_LLM_API_KEY"] == env["llm"]["LLM_API_KEY"] == "k3y"
    assert env["rasa"]["SANIC_REQUEST_MAX_SIZE"] == str(2 * 1024 * 1024)  # ridgeline_rasa.launch.ENV
    assert "SANIC_REQUEST_MAX_SIZE" not in env["actions"], "Sanic reads SANIC_* in the action server too"


def test_the_old_names_of_the_action_servers_variables_still_reach_it_for_one_release(tmp_path):
    env = children_env(tmp_path, {"LLM_MAX_TOKENS": "24", "LLM_TIMEOUT_S": "9", "LLM_MODEL_NAME": "m"})
    assert {k: env["actions"][k] for k in ("LLM_MAX_TOKENS", "LLM_TIMEOUT_S", "LLM_MODEL_NAME")} == {
        "LLM_MAX_TOKENS": "24", "LLM_TIMEOUT_S": "9", "LLM_MODEL_NAME": "m"}


def test_a_jwt_secret_is_passed_to_rasa_when_set(tmp_path):
    config = StackConfig(run_dir=tmp_path, rasa_jwt_secret="jwt-s3cret")
    rasa = next(s for s in build_services(config) if s.name == "rasa")
    assert "--jwt-secret=jwt-s3cret" in rasa.command


# ---------------------------------------------------------------- restarts (stack/supervisor.py)


def flag_service(name: str, tmp_path, flag) -> Service:
    """An HTTP server that exits with code 3, saying why, as soon as ``flag`` exists (also right at start)."""
    port = free_port()
    code = (
        "import http.server, os, sys, threading, time\n"
        f"server = http.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler)\n"
        "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
        f"while not os.path.exists({str(flag)!r}):\n"
        "    time.sleep(0.02)\n"
        "print('oops: the disk is full', flush=True)\n"
        "sys.exit(3)\n"
    )
    return Service(name=name, command=[sys.executable, "-c", code], health_url=f"http://127.0.0.1:{port}/",
                   url=f"http://127.0.0.1:{port}", cwd=tmp_path)


def hang_on_start_after(service: Service, flag) -> None:
    """From when ``flag`` exists, a new start of ``service`` runs but never answers its health check."""
    service.command = [sys.executable, "-c",
                       f"import os, sys, time\nif os.path.exists({str(flag)!r}): time.sleep(600)\n"
                       f"os.execv(sys.executable, [sys.executable, '-m', 'http.server', '{service.port}', "
                       "'--bind', '127.0.0.1'])"]


def supervise_until(supervisor: Supervisor, condition, timeout_s: float = 30.0, each_tick=lambda: None):
    """Tick the supervisor as `make run`'s loop does until ``condition()`` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not reached within {timeout_s:.0f} s"
        supervisor.tick()
        each_tick()
        time.sleep(0.05)


def restart_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "restarting it in" in r.getMessage()]


def restart_counts(caplog) -> list[str]:
    """What each restart line says about the count, e.g. "restart 1 of at most 2 within 60 s"."""
    return [line.split(" (restart ", 1)[1].split(");", 1)[0] for line in restart_lines(caplog)]


def test_restart_delays_double_up_to_the_cap():
    policy = RestartPolicy(first_delay_s=1.0, max_delay_s=30.0)
    assert [policy.delay_s(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_killed_service_is_restarted_with_backoff_while_the_others_keep_serving(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="stack")
    steady, flaky = http_server("steady", tmp_path), http_server("flaky", tmp_path)
    with Stack([steady, flaky], log_dir=tmp_path / "logs") as stack:
        supervisor = Supervisor(stack, RestartPolicy(max_restarts=3, window_s=60, first_delay_s=0.2))
        steady_pid = stack.running["steady"].process.pid

        def steady_keeps_serving():
            assert stack.running["steady"].process.pid == steady_pid and http_ok(steady.health_url, 5)

        for restart, delay in ((1, "0.2"), (2, "0.4")):
            killed = stack.running["flaky"].process.pid
            os.kill(killed, signal.SIGKILL)
            supervise_until(supervisor, lambda: any(f"flaky is ready again at {flaky.url} (restart {restart})"
                                                    in r.getMessage() for r in caplog.records),
                            each_tick=steady_keeps_serving)
            assert stack.running["flaky"].process.pid != killed and http_ok(flaky.health_url)
            assert restart_lines(caplog)[-1] == (
                f"flaky stopped (killed by SIGKILL); restarting it in {delay} s "
                f"(restart {restart} of at most 3 within 60 s); log: {tmp_path / 'logs' / 'flaky.log'}")
        assert len(restart_lines(caplog)) == 2, "one log line per restart"
        assert "--- restart 2 at" in (tmp_path / "logs" / "flaky.log").read_text()


def test_a_service_that_keeps_crashing_is_given_up_with_one_sentence_and_its_log(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="stack")
    flag = tmp_path / "crash"
    with Stack([http_server("steady", tmp_path), flag_service("flaky", tmp_path, flag)],
               log_dir=tmp_path / "logs") as stack:
        supervisor = Supervisor(stack, RestartPolicy(max_restarts=2, window_s=60, first_delay_s=0.05))
        flag.touch()  # from now on every start of flaky ends at once: the restarts crash too
        with pytest.raises(GaveUp) as caught:
            supervise_until(supervisor, lambda: False)
    message = str(caught.value)
    assert message.startswith(
        "flaky stopped (exit code 3) and it stopped 3 times within 60 s (STACK_MAX_RESTARTS=2, "
        "STACK_RESTART_WINDOW_S=60), so the assistant is stopping: fix what its log shows, or allow more "
        "restarts with STACK_MAX_RESTARTS / STACK_RESTART_WINDOW_S."), message
    assert "oops: the disk is full" in message
    assert len(restart_lines(caplog)) == 2
    assert restart_counts(caplog) == ["1 of at most 2 within 60 s", "2 of at most 2 within 60 s"]


def test_no_restarts_allowed_gives_up_at_the_first_crash(tmp_path):
    with Stack([http_server("web", tmp_path)], log_dir=tmp_path / "logs") as stack:
        supervisor = Supervisor(stack, RestartPolicy(max_restarts=0))
        os.kill(stack.running["web"].process.pid, signal.SIGKILL)
        with pytest.raises(GaveUp, match=r"^web stopped \(killed by SIGKILL\) and STACK_MAX_RESTARTS=0 allows no "
                                         r"restart, so the assistant is stopping"):
            supervise_until(supervisor, lambda: False)


def test_a_restart_that_never_gets_healthy_is_stopped_and_counted_as_a_crash(tmp_path):
    hang = tmp_path / "hang"
    web = http_server("web", tmp_path, startup_timeout_s=1.5)
    hang_on_start_after(web, hang)
    with Stack([web], log_dir=tmp_path / "logs") as stack:
        supervisor = Supervisor(stack, RestartPolicy(max_restarts=1, first_delay_s=0.05))
        hang.touch()
        os.kill(stack.running["web"].process.pid, signal.SIGKILL)
        supervise_until(supervisor, lambda: "web" in stack.running)
        hanging = stack.running["web"].process
        with pytest.raises(GaveUp, match=r"^web stopped \(not ready 1.5 s after restart 1\) and it stopped 2 times"):
            supervise_until(supervisor, lambda: False)
        assert hanging.poll() is not None, "the restart that never got healthy is still running"


def test_crashes_older_than_the_window_are_forgotten(tmp_path, caplog):
    now = [1000.0]
    with Stack([http_server("web", tmp_path)], log_dir=tmp_path / "logs") as stack:
        supervisor = Supervisor(stack, RestartPolicy(max_restarts=1, window_s=10, first_delay_s=1),
                                clock=lambda: now[0])

        def crash_and_restart() -> None:
            os.kill(stack.running["web"].process.pid, signal.SIGKILL)
            supervise_until(supervisor, lambda: supervisor.waiting)  # noticed: in backoff
            now[0] += 1  # the backoff passes
            supervise_until(supervisor, lambda: "web" in stack.running and not supervisor.waiting
                            and http_ok(stack.service("web").health_url))

        crash_and_restart()
        now[0] += 20  # longer than the window without a crash
        crash_and_restart()  # counted as the first crash again: restarted, not given up
        assert restart_counts(caplog) == ["1 of at most 1 within 10 s"] * 2
        now[0] += 5
        os.kill(stack.running["web"].process.pid, signal.SIGKILL)
        with pytest.raises(GaveUp, match="stopped 2 times within 10 s"):
            supervise_until(supervisor, lambda: False)


def test_ctrl_c_stops_everything_cleanly_during_a_backoff(tmp_path):
    web, other = http_server("web", tmp_path), http_server("other", tmp_path)
    with Supervised(tmp_path, [web, other], RestartPolicy(first_delay_s=60, max_delay_s=60)) as supervised:
        os.kill(supervised.pids()["web"], signal.SIGKILL)
        supervised.wait_for_log("web stopped (killed by SIGKILL); restarting it in 60 s")
        supervised.interrupt_and_expect_all_gone([web, other])


def test_ctrl_c_stops_everything_cleanly_mid_restart(tmp_path):
    hang = tmp_path / "hang"
    web, other = http_server("web", tmp_path), http_server("other", tmp_path)
    hang_on_start_after(web, hang)
    with Supervised(tmp_path, [web, other], RestartPolicy(first_delay_s=0.05)) as supervised:
        first = supervised.pids()["web"]
        hang.touch()
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: supervised.pids().get("web") not in (None, first), what="web started again")
        supervised.interrupt_and_expect_all_gone([web, other])
