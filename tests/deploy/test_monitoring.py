"""Rasa's and the action server's /metrics in docker-compose and the chart: scraped, kept off the public
entry, the "Conversations" dashboard row, and the two conversation alerts, unit-tested with `promtool test rules`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.deploy.conftest import REPO, RELEASE, by_name, namespace_of, of_kind, render
from tests.deploy.test_chart import edges
from tests.deploy.test_compose import services

ALERTS = REPO / "monitoring" / "prometheus" / "alerts.yml"
CONVERSATION_ALERTS = {"RidgelineApologyRateHigh", "RidgelineFallbackRateDoubled"}
BROKER = {"type": "ridgeline_rasa.metrics.MetricsEventBroker"}


def conversation_rules(groups: list[dict]) -> dict[str, dict]:
    return {r["alert"]: r for g in groups if g["name"] == "ridgeline-conversations" for r in g["rules"]}


def chart_rule(env: str = "staging") -> dict:
    (rule,) = of_kind(render(env), "PrometheusRule")
    return rule


# --- scraping ----------------------------------------------------------------------------------------------


def test_compose_prometheus_scrapes_rasa_and_the_action_server():
    config = yaml.safe_load((REPO / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for job, target in (("rasa", "rasa:5005"), ("actions", "actions:5055")):
        assert jobs[job].get("metrics_path", "/metrics") == "/metrics"
        assert jobs[job]["static_configs"] == [{"targets": [target], "labels": {"namespace": "compose", "service": job}}]


def test_compose_keeps_metrics_off_the_public_network():
    """/metrics is on Rasa's and the action server's own ports: Rasa's is published on loopback only
    (BIND_ADDRESS), the action server's not at all; Prometheus reaches both on the compose network."""
    all_services = services()
    assert all(port.startswith("127.0.0.1:") for port in all_services["rasa"]["ports"])
    assert "ports" not in all_services["actions"]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_chart_scrapes_the_three_services_and_only_prometheus_gets_in(env):
    objects = render(env)
    monitors = {m["metadata"]["name"]: m for m in of_kind(objects, "ServiceMonitor")}
    assert set(monitors) == {f"{RELEASE}-rasa", f"{RELEASE}-actions", f"{RELEASE}-llm"}
    assert all(m["spec"]["namespaceSelector"] == {"matchNames": [namespace_of(env)]} for m in monitors.values())
    ingress, _ = edges(objects)
    assert {("prometheus", "rasa", 5005), ("prometheus", "actions", 5055), ("prometheus", "llm", 8000)} <= ingress
    # the public entry routes the channels only: no path of the Ingress leads to /metrics
    for ing in of_kind(objects, "Ingress"):
        for path in (p["path"] for rule in ing["spec"]["rules"] for p in rule["http"]["paths"]):
            assert not "/metrics".startswith(path.rstrip("/") + "/") and path != "/", path


def test_without_service_monitors_prometheus_gets_in_nowhere():
    ingress, _ = edges(render("dev", sets=("monitoring.serviceMonitor.enabled=false",)))
    assert not [edge for edge in ingress if edge[0] == "prometheus"]
    assert not of_kind(render("dev", sets=("monitoring.serviceMonitor.enabled=false",)), "ServiceMonitor")


def test_every_rasa_endpoints_file_counts_the_turns_events():
    """make run and the image (rasa_project/endpoints.yml), compose's and the chart's endpoints."""
    assert yaml.safe_load((REPO / "rasa_project" / "endpoints.yml").read_text())["event_broker"] == BROKER
    assert yaml.safe_load((REPO / "docker" / "compose" / "rasa-endpoints.yml").read_text())["event_broker"] == BROKER
    for env in ("dev", "staging", "prod"):
        config = by_name(render(env), "ConfigMap", f"{RELEASE}-rasa")["data"]["endpoints.yml"]
        assert yaml.safe_load(config)["event_broker"] == BROKER, env


def test_make_run_gives_rasa_an_empty_metrics_folder_of_its_run(tmp_path):
    from stack.services import StackConfig, build_services

    config = StackConfig(run_dir=tmp_path / "run")
    (tmp_path / "run" / "rasa-metrics").mkdir(parents=True)
    (tmp_path / "run" / "rasa-metrics" / "counter_123.db").write_bytes(b"an earlier run's counts")
    rasa = next(s for s in build_services(config) if s.name == "rasa")
    assert rasa.env["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "run" / "rasa-metrics")
    assert list((tmp_path / "run" / "rasa-metrics").iterdir()) == []
    assert rasa.reads.allows("PROMETHEUS_MULTIPROC_DIR")


# --- the dashboard -----------------------------------------------------------------------------------------


def test_dashboard_has_a_conversations_row():
    board = json.loads((REPO / "helm" / "ridgeline" / "files" / "dashboards" / "ridgeline.json").read_text())
    panels = board["panels"]
    (row,) = [p for p in panels if p["type"] == "row" and p["title"] == "Conversations"]
    below = sorted((p for p in panels if p["gridPos"]["y"] > row["gridPos"]["y"]), key=lambda p: p["gridPos"]["y"])
    row_panels = [p for p in below if p["type"] != "row" and p["gridPos"]["y"] < next(
        q["gridPos"]["y"] for q in below if q["type"] == "row")]
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in row_panels}
    assert set(exprs) == {"Turns per second by channel", "Turn latency", "Fallback rate", "LLM share", "Apology rate",
                          "Handoffs per hour", "Verdicts on LLM replies per hour", "Not-helpful share of verdicts"}
    assert "rasa_turns_total" in exprs["Turns per second by channel"]
    assert "histogram_quantile(0.95" in exprs["Turn latency"] and "rasa_turn_duration_seconds_bucket" in exprs["Turn latency"]
    assert "rasa_fallbacks_total" in exprs["Fallback rate"] and "offset 1w" in exprs["Fallback rate"]
    assert "rasa_llm_turns_total" in exprs["LLM share"]
    assert "rasa_apologies_total" in exprs["Apology rate"]
    assert "rasa_handoffs_total" in exprs["Handoffs per hour"]
    assert "sum by (verdict) (increase(rasa_feedback_total" in exprs["Verdicts on LLM replies per hour"]
    assert 'verdict="down"' in exprs["Not-helpful share of verdicts"]
    assert all('namespace=~"$namespace"' in e for e in exprs.values())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    # no two panels overlap
    cells = set()
    for p in panels:
        g = p["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, p["title"]
        cells |= mine


# --- the alerts --------------------------------------------------------------------------------------------


def test_compose_conversation_alerts_equal_the_charts():
    compose = conversation_rules(yaml.safe_load(ALERTS.read_text())["groups"])
    chart = conversation_rules(chart_rule()["spec"]["groups"])
    assert set(compose) == set(chart) == CONVERSATION_ALERTS
    selector = f'{{namespace="{namespace_of("staging")}", job="{RELEASE}-rasa"}}'
    for name, alert in compose.items():
        assert alert["for"] == chart[name]["for"] and alert["labels"] == chart[name]["labels"], name
        assert alert["expr"] == chart[name]["expr"].replace(selector, '{job="rasa"}'), name
    assert compose["RidgelineApologyRateHigh"]["for"] == "10m"
    assert compose["RidgelineApologyRateHigh"]["expr"].endswith(" > 0.05")
    assert compose["RidgelineFallbackRateDoubled"]["expr"].count("offset 1w") == 2
    assert " > 2 * (" in compose["RidgelineFallbackRateDoubled"]["expr"]


def test_chart_conversation_thresholds_come_from_the_values():
    rules = conversation_rules(chart_rule("dev")["spec"]["groups"])
    assert rules["RidgelineApologyRateHigh"]["expr"].endswith(" > 0.05")
    rules = conversation_rules(of_kind(render("dev", sets=(
        "monitoring.prometheusRule.thresholds.apologyRatio=1",  # helm --set makes 0.1 a string
        "monitoring.prometheusRule.thresholds.fallbackIncreaseFactor=3")), "PrometheusRule")[0]["spec"]["groups"])
    assert rules["RidgelineApologyRateHigh"]["expr"].endswith(" > 1")
    assert " > 3 * (" in rules["RidgelineFallbackRateDoubled"]["expr"]


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: `scripts/system_deps.sh test` installs it (Debian's prometheus package)")
    return found


def promtool_tests(rule_file: str, labels: str) -> dict:
    """`promtool test rules` cases for the two conversation alerts, on series labelled ``labels``."""
    turns, intents = f"rasa_turns_total{{{labels}, channel=\"rest\"}}", f"rasa_intents_total{{{labels}, intent=\"greet\"}}"
    apologies = f"rasa_apologies_total{{{labels}, reason=\"llm_unavailable\"}}"
    fallbacks = f"rasa_fallbacks_total{{{labels}}}"
    rules = {r["alert"]: r for g in yaml.safe_load(open(rule_file))["groups"] for r in g["rules"]}

    def firing(name: str) -> list[dict]:
        return [{"exp_labels": rules[name]["labels"], "exp_annotations": rules[name]["annotations"]}]

    def case(series: list[tuple[str, str]], name: str, at: str, fires: bool, step: str = "1m") -> dict:
        return {"interval": step, "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": firing(name) if fires else []}]}

    # the fallback cases span a week and two hours, in 5-minute samples of 500 messages
    week, hours = 7 * 24 * 12, 2 * 12
    at = f"{(week + hours) * 5}m"

    def fallback_case(share_now: int, fires: bool) -> dict:
        """5% of messages fell back all last week; ``share_now`` % in the last two hours."""
        now = share_now * 5
        return case([(intents, f"0+500x{week + hours}"), (fallbacks, f"0+25x{week} {week * 25 + now}+{now}x{hours - 1}")],
                    "RidgelineFallbackRateDoubled", at, fires, step="5m")

    return {"rule_files": [rule_file], "evaluation_interval": "5m", "tests": [
        # 10% of turns apologise: firing once it has lasted 10 minutes, pending before
        case([(turns, "0+100x30"), (apologies, "0+10x30")], "RidgelineApologyRateHigh", "20m", True),
        case([(turns, "0+100x30"), (apologies, "0+10x30")], "RidgelineApologyRateHigh", "12m", False),
        # 4%: never
        case([(turns, "0+100x30"), (apologies, "0+4x30")], "RidgelineApologyRateHigh", "20m", False),
        # no traffic: no alert (no division by zero)
        case([(turns, "0+0x30"), (apologies, "0+0x30")], "RidgelineApologyRateHigh", "20m", False),
        fallback_case(15, True),  # triple the same hour last week
        fallback_case(9, False),  # less than double
        fallback_case(5, False),  # steady
    ]}


def run_promtool_tests(tmp_path, rule_file, labels: str) -> None:
    tool = promtool()
    check = subprocess.run([tool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = tmp_path / "conversation-alerts.test.yml"
    tests.write_text(yaml.safe_dump(promtool_tests(str(rule_file), labels), sort_keys=False))
    result = subprocess.run([tool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_conversation_alerts_pass_promtool(tmp_path):
    run_promtool_tests(tmp_path, ALERTS, 'job="rasa", namespace="compose", service="rasa"')


def test_chart_conversation_alerts_pass_promtool(tmp_path):
    rule_file = tmp_path / "chart-rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": chart_rule()["spec"]["groups"]}, sort_keys=False))
    run_promtool_tests(tmp_path, rule_file, f'namespace="{namespace_of("staging")}", job="{RELEASE}-rasa"')


def test_system_deps_install_promtool_for_the_tests():
    script = (REPO / "scripts" / "system_deps.sh").read_text()
    assert re.search(r"command -v promtool .*missing\+=\(prometheus\)", script)
