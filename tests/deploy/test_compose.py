"""docker-compose.yml, its .env.example and the monitoring it provisions (no container engine here)."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess

import jsonschema
import pytest
import yaml

from tests.deploy.compose_spec import SCHEMA, interpolate, read_env_file, required_variables
from tests.deploy.conftest import REPO, of_kind, render

COMPOSE_TEXT = (REPO / "docker-compose.yml").read_text()
ENV_EXAMPLE = read_env_file((REPO / ".env.example").read_text())
SECRET_VARIABLES = {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "RASA_AUTH_TOKEN", "ACTION_SERVER_TOKEN", "GRAFANA_ADMIN_PASSWORD"}


def compose(env: dict | None = None) -> dict:
    return interpolate(yaml.safe_load(COMPOSE_TEXT), ENV_EXAMPLE if env is None else env)


def services() -> dict:
    return compose()["services"]


def test_compose_file_matches_the_specification():
    jsonschema.Draft202012Validator(SCHEMA).validate(compose())


@pytest.mark.parametrize(
    "mistake",
    [
        lambda c: c["services"]["redis"].update(restart_policy="always"),  # not a service key
        lambda c: c["services"]["rasa"]["depends_on"]["redis"].update(condition="service_ready"),
        lambda c: c["services"]["rasa"]["healthcheck"].update(interval="often"),
        lambda c: c.update(service={}),
    ],
)
def test_the_specification_check_catches_mistakes(mistake):
    broken = copy.deepcopy(compose())
    mistake(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(broken)


def test_docker_compose_config_accepts_it():
    """The reference implementation's own check, where a Docker Compose v2 is installed."""
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no `docker compose` on this machine; test_compose_file_matches_the_specification checked the file")
    for profile in ("cpu", "gpu"):
        result = subprocess.run(
            [docker, "compose", "--env-file", ".env.example", "--profile", profile, "config", "--quiet"],
            cwd=REPO, capture_output=True, text=True,
        )
        assert result.returncode == 0, result.stderr


def test_every_service_has_a_healthcheck():
    for name, service in services().items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"} and {"interval", "timeout", "retries"} <= check.keys(), name


def test_dependencies_are_declared_and_wait_for_health():
    all_services = services()
    depends = {name: s.get("depends_on", {}) for name, s in all_services.items()}
    for name, targets in depends.items():
        assert set(targets) <= set(all_services), f"{name} depends on an unknown service"
    assert {k: v["condition"] for k, v in depends["rasa"].items()} == {
        "postgres": "service_healthy", "redis": "service_healthy", "actions": "service_healthy"}
    # the action server works (with apologies) while the LLM loads; exactly one LLM variant runs
    assert depends["actions"] == {
        "llm-cpu": {"condition": "service_started", "required": False},
        "llm-gpu": {"condition": "service_started", "required": False},
    }
    assert depends["prometheus"]["blackbox"]["condition"] == "service_healthy"
    assert depends["grafana"]["prometheus"]["condition"] == "service_healthy"

    def visit(name, path):
        assert name not in path, f"dependency cycle {path + [name]}"
        for target in depends[name]:
            visit(target, path + [name])

    for name in depends:
        visit(name, [])


def test_the_llm_runs_on_the_cpu_or_with_a_gpu_reservation():
    all_services = services()
    cpu, gpu = all_services["llm-cpu"], all_services["llm-gpu"]
    assert cpu["profiles"] == ["cpu"] and gpu["profiles"] == ["gpu"]
    assert ENV_EXAMPLE["COMPOSE_PROFILES"] == "cpu"
    for service in (cpu, gpu):
        assert service["networks"]["default"]["aliases"] == ["llm"]  # what actions and Prometheus call
    assert cpu["build"]["target"] == "cpu" and gpu["build"]["target"] == "gpu"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    others = [n for n, s in all_services.items() if "deploy" in s and n != "llm-gpu"]
    assert others == [], "only the GPU variant reserves a GPU"
    assert all_services["actions"]["environment"]["ACTIONS_LLM_URL"] == "http://llm:8000/v1"


def test_secrets_come_from_the_env_file_only():
    required = required_variables(COMPOSE_TEXT)
    assert SECRET_VARIABLES <= required, "a missing password must stop `docker compose up` with a message"
    assert required <= set(ENV_EXAMPLE), f"{required - set(ENV_EXAMPLE)} missing from .env.example"
    assert all(ENV_EXAMPLE[name] == "change-me" for name in SECRET_VARIABLES), ".env.example holds placeholders only"
    raw = yaml.safe_load(COMPOSE_TEXT)["services"]
    for name, service in raw.items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "TOKEN", "AUTH")):
                assert str(value).startswith("${"), f"{name}.{key} is written into docker-compose.yml"
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD"):
        compose({k: v for k, v in ENV_EXAMPLE.items() if k != "POSTGRES_PASSWORD"})


def test_containers_are_hardened_and_images_pinned():
    for name, service in services().items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        image = service["image"]
        tag = image.rsplit(":", 1)[-1]
        assert tag != "latest" and any(ch.isdigit() for ch in tag), f"{name}: {image}"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost by default"


def test_rasa_reads_its_stores_from_the_environment():
    endpoints_text = (REPO / "docker" / "compose" / "rasa-endpoints.yml").read_text()
    endpoints = yaml.safe_load(endpoints_text)
    assert endpoints["action_endpoint"]["url"] == "http://actions:5055/webhook"
    assert endpoints["tracker_store"]["type"] == "SQL" and endpoints["tracker_store"]["dialect"] == "postgresql"
    assert endpoints["lock_store"]["type"] == "redis"
    rasa = services()["rasa"]
    mounts = {v.split(":")[1] for v in rasa["volumes"]}
    assert "/app/compose-endpoints.yml" in mounts and "--endpoints /app/compose-endpoints.yml" in rasa["command"][0]
    values = "\n".join(line for line in endpoints_text.splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\$\{(\w+)\}", values))
    assert len(used) == 10
    assert used <= set(rasa["environment"]), f"{used - set(rasa['environment'])} not in rasa's environment"
    assert '"$RASA_AUTH_TOKEN"' in rasa["command"][0], "the token comes from the environment at run time"
    assert endpoints["action_endpoint"]["headers"] == {"Authorization": "Bearer ${ACTION_SERVER_TOKEN}"}


def test_rasa_and_the_action_server_share_a_required_token():
    raw = yaml.safe_load(COMPOSE_TEXT)["services"]
    for name in ("rasa", "actions"):
        assert raw[name]["environment"]["ACTION_SERVER_TOKEN"].startswith("${ACTION_SERVER_TOKEN:?"), name
    all_services = services()
    assert all_services["rasa"]["environment"]["ACTION_SERVER_TOKEN"] == ENV_EXAMPLE["ACTION_SERVER_TOKEN"]
    assert all_services["actions"]["environment"]["ACTION_SERVER_TOKEN"] == ENV_EXAMPLE["ACTION_SERVER_TOKEN"]
    with pytest.raises(ValueError, match="ACTION_SERVER_TOKEN"):
        compose({k: v for k, v in ENV_EXAMPLE.items() if k != "ACTION_SERVER_TOKEN"})


def test_the_action_server_runs_the_hardened_server():
    actions = services()["actions"]
    assert actions["entrypoint"] == ["python", "-m", "actions.server"]
    assert actions["command"] == ["--actions", "actions", "--port", "5055"]


@pytest.mark.parametrize("key", ["", "k3y"])
def test_the_llm_api_key_is_optional_and_the_same_on_both_sides(key):
    all_services = services() if key == "" else compose({**ENV_EXAMPLE, "LLM_API_KEY": key})["services"]
    assert ENV_EXAMPLE["LLM_API_KEY"] == "", ".env.example leaves the LLM unauthenticated by default"
    for name in ("llm-cpu", "llm-gpu"):
        assert all_services[name]["environment"]["LLM_API_KEY"] == key, name
    assert all_services["actions"]["environment"]["ACTIONS_LLM_API_KEY"] == key


def test_rasa_passes_the_channel_limits_through():
    rasa = services()["rasa"]["environment"]
    assert {k: rasa[k] for k in ("MAX_MESSAGE_CHARS", "RATE_LIMIT_MESSAGES", "RATE_LIMIT_WINDOW_S")} == {
        "MAX_MESSAGE_CHARS": "4000", "RATE_LIMIT_MESSAGES": "15", "RATE_LIMIT_WINDOW_S": "30"}
    without = {k: v for k, v in ENV_EXAMPLE.items() if k not in {"MAX_MESSAGE_CHARS", "RATE_LIMIT_MESSAGES"}}
    assert compose(without)["services"]["rasa"]["environment"]["MAX_MESSAGE_CHARS"] == "4000"


def test_prometheus_scrapes_all_three_services():
    config = yaml.safe_load((REPO / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["llm"]["static_configs"][0]["targets"] == ["llm:8000"]
    probed = {c["labels"]["service"]: c["targets"][0] for c in jobs["health"]["static_configs"]}
    assert probed == {"rasa": "http://rasa:5005/", "actions": "http://actions:5055/health", "llm": "http://llm:8000/ready"}
    assert jobs["health"]["relabel_configs"][-1]["replacement"] == "blackbox:9115"
    for job in jobs.values():
        assert all(c["labels"]["namespace"] == "compose" for c in job["static_configs"])  # the dashboard's filter
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert "./monitoring/prometheus:/etc/prometheus:ro" in services()["prometheus"]["volumes"]


def test_compose_alerts_match_the_charts():
    rules = yaml.safe_load((REPO / "monitoring" / "prometheus" / "alerts.yml").read_text())
    compose_llm = {r["alert"]: r for g in rules["groups"] if g["name"] == "ridgeline-llm" for r in g["rules"]}
    (rule,) = of_kind(render("staging"), "PrometheusRule")
    chart_llm = {r["alert"]: r for g in rule["spec"]["groups"] if g["name"] == "ridgeline-llm" for r in g["rules"]}
    assert compose_llm.keys() == chart_llm.keys()
    for name, alert in compose_llm.items():
        chart = chart_llm[name]
        assert alert["for"] == chart["for"] and alert["labels"] == chart["labels"], name
        threshold = chart["expr"].rsplit(" ", 1)[-1]
        if threshold.replace(".", "").isdigit():
            assert alert["expr"].endswith(f" {threshold}"), f"{name}: compose and chart thresholds differ"
    conversations = {r["alert"] for g in rules["groups"] if g["name"] == "ridgeline-conversations" for r in g["rules"]}
    # the conversation alerts equal the chart's as well: tests/deploy/test_monitoring.py
    assert {r["alert"] for g in rules["groups"] for r in g["rules"]} - compose_llm.keys() - conversations == {
        "RidgelineServiceDown"}


def test_grafana_provisions_the_charts_dashboard():
    grafana = services()["grafana"]
    assert "./helm/ridgeline/files/dashboards:/etc/grafana/dashboards/ridgeline:ro" in grafana["volumes"]
    provider = yaml.safe_load((REPO / "monitoring/grafana/provisioning/dashboards/ridgeline.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards/ridgeline"
    source = yaml.safe_load((REPO / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert (REPO / "helm/ridgeline/files/dashboards/ridgeline.json").is_file()
