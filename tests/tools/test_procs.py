"""tools.procs: free ports, the LLM service alone, and the stack on free loopback ports (no process started)."""

from __future__ import annotations

import os
import socket
import sys

from stack.process import port_is_free
from tools.procs import LLMServer, free_port, loopback_services, peak_rss_bytes


def test_a_free_port_can_be_bound_at_once():
    port = free_port()
    assert 1024 <= port <= 65535 and port_is_free(port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_the_llm_server_is_python_m_llm_serve_awaited_on_ready(tmp_path):
    server = LLMServer("models/bench/tiny", ["--cpu-threads", "1"], tmp_path / "logs", name="server-none",
                       ready_timeout_s=12.0)
    command = server.service.command
    assert command[:3] == [sys.executable, "-m", "llm"] and command[3:6] == ["serve", "--model", "models/bench/tiny"]
    assert command[-2:] == ["--cpu-threads", "1"] and str(server.port) in command
    assert server.service.health_url == f"http://127.0.0.1:{server.port}/ready" == f"{server.url}/ready"
    assert server.service.startup_timeout_s == 12.0
    assert server.log_path == tmp_path / "logs" / "server-none.log"


def test_loopback_services_are_the_three_services_on_distinct_free_ports(tmp_path):
    config, services = loopback_services(tmp_path, "models/some-model", llm_env={"LLM_ENGINE": "llamacpp"},
                                         llm_max_tokens=80)
    by_name = {s.name: s for s in services}
    assert list(by_name) == ["llm", "actions", "rasa"]  # no webchat
    ports = {config.llm_port, config.actions_port, config.rasa_port, config.webchat_port}
    assert len(ports) == 4 and all(port_is_free(p) for p in ports)
    assert [by_name[n].port for n in ("llm", "actions", "rasa")] == [config.llm_port, config.actions_port,
                                                                      config.rasa_port]
    assert config.llm_model == "models/some-model" and config.run_dir == tmp_path / "run"
    assert by_name["llm"].env["LLM_ENGINE"] == "llamacpp"
    assert by_name["actions"].env["ACTIONS_LLM_MAX_TOKENS"] == "80"
    assert by_name["actions"].env["ORDERS_DB_URL"] == f"sqlite:///{tmp_path / 'orders.db'}"


def test_peak_rss_of_this_process_and_of_no_process():
    assert peak_rss_bytes(os.getpid()) > 10 * 2**20
    assert peak_rss_bytes(2**22 + 1) is None  # above Linux's pid_max
