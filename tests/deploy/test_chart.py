"""The Helm chart, rendered for each environment and checked object by object (no cluster)."""

from __future__ import annotations

import base64
import json
import re
import shutil

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import (
    CHART,
    REPO,
    ENVIRONMENTS,
    KUBE_VERSION,
    RELEASE,
    VALIDATE_VERSIONS,
    by_name,
    containers,
    helm,
    namespace_of,
    of_kind,
    pod_specs,
    render,
    render_error,
    template_args,
    values_file,
)

# Custom resources: no schema in kubernetes-validate; their structure is checked below instead.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "VerticalPodAutoscaler"}
SENSITIVE_ENV = re.compile(r"(TOKEN|PASSWORD|SECRET|API_KEY|_AUTH|DB_URL)$")
PSA_RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}


def component(obj_or_meta: dict) -> str | None:
    meta = obj_or_meta.get("metadata", obj_or_meta)
    return (meta.get("labels") or {}).get("app.kubernetes.io/component")


# --- Helm itself ---------------------------------------------------------------------------------


def test_helm_is_v3():
    assert helm("version", "--short").stdout.startswith("v3.")


@pytest.mark.parametrize("env", (None, *ENVIRONMENTS))
def test_lint_strict(env):
    args = ["lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION]
    if env:
        args += ["-f", str(values_file(env)), "--namespace", namespace_of(env)]
    result = helm(*args)
    assert "0 chart(s) failed" in result.stdout


# --- Schemas -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VALIDATE_VERSIONS)
def test_rendered_objects_match_the_kubernetes_schemas(env, version):
    skipped = set()
    for obj in render(env):
        if obj["kind"] in CRD_KINDS:
            skipped.add(obj["kind"])
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} at {path}: {error.message}")
    assert skipped == CRD_KINDS, "the CRD objects should render when their APIs are present"


ALL_FEATURES = (
    "llm.engine=vllm", "llm.apiKey=true", "llm.autoscaling.enabled=true", "llm.weights.download.useHfToken=true",
    "rasa.channels.slack.enabled=true", "rasa.channels.telegram.enabled=true", "actions.ordersDatabase.fromSecret=true",
    "rasa.model.serverUrl=https://models.example/model.tar.gz", "global.imagePullSecrets[0]=regcred",
    "actions.image.digest=sha256:" + "a" * 64, "rasa.extraEgress[0].ports[0].port=443",
    "actions.handoff.slackChannel=C0123456789", "actions.handoff.smtp.host=smtp.example.com",
    "actions.handoff.smtp.user=sherpa",
)


@pytest.mark.parametrize("version", VALIDATE_VERSIONS)
def test_every_optional_feature_renders_valid_objects(version):
    for obj in render("prod", sets=ALL_FEATURES):
        if obj["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(obj, version, strict=True)
    actions = by_name(render("prod", sets=ALL_FEATURES), "Deployment", f"{RELEASE}-actions")["spec"]["template"]["spec"]
    assert actions["containers"][0]["image"].endswith("@sha256:" + "a" * 64)
    assert actions["imagePullSecrets"] == [{"name": "regcred"}]


def test_custom_resources_are_well_formed(env):
    objects = render(env)
    ns = namespace_of(env)
    services = of_kind(objects, "Service")
    monitors = of_kind(objects, "ServiceMonitor")
    scraped = []
    for monitor in monitors:  # Rasa's, the action server's and the LLM's /metrics (tests/deploy/test_monitoring.py)
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [ns]}
        selected = [s for s in services
                    if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
        assert len(selected) == 1
        scraped.append(component(selected[0]))
        port_names = {p["name"] for p in selected[0]["spec"]["ports"]}
        assert all(e["port"] in port_names and e["path"] == "/metrics" for e in monitor["spec"]["endpoints"])
    assert sorted(scraped) == ["actions", "llm", "rasa"]

    (rule,) = of_kind(objects, "PrometheusRule")
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    for alert in alerts:
        assert {"alert", "expr", "labels", "annotations"} <= alert.keys()
        assert alert["labels"]["severity"] in {"warning", "critical"}
        assert alert["annotations"]["summary"] and alert["annotations"]["runbook_url"]
        assert f'namespace="{ns}"' in alert["expr"] or "ingress=" in alert["expr"]
    names = {a["alert"] for a in alerts}
    # error rate, latency, LLM queue, pod restarts (the issue's list), and the rest
    assert {"RidgelineLLMHighErrorRate", "RidgelineLLMSlow", "RidgelineLLMQueueBacklog", "RidgelinePodRestarting",
            "RidgelineLLMDown", "RidgelineDeploymentDegraded"} <= names
    assert {"RidgelineRasaHighErrorRate", "RidgelineRasaSlow"} <= names  # every environment has an Ingress

    deployments = {d["metadata"]["name"] for d in of_kind(objects, "Deployment")}
    vpas = of_kind(objects, "VerticalPodAutoscaler")
    assert {v["spec"]["targetRef"]["name"] for v in vpas} == deployments
    assert all(v["spec"]["updatePolicy"]["updateMode"] == "Off" for v in vpas)


def test_crd_objects_only_when_their_apis_exist():
    without = {o["kind"] for o in render("staging", crds=False)}
    assert not without & CRD_KINDS
    assert CRD_KINDS <= {o["kind"] for o in render("staging")}


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("llm.engine=tgi", "/llm/engine"),
        ("rasa.image.tag=latest", "/rasa/image/tag"),
        ("actions.llm.timeoutSeconds=90", "/actions/llm/timeoutSeconds"),
        ("rasa.replicaCount=-1", "/rasa/replicaCount"),
        ("typo=1", "typo"),
    ],
)
def test_values_schema_rejects_bad_values(setting, complaint):
    error = render_error(sets=(setting,))
    assert "schema" in error and complaint in error, error


def test_every_value_has_a_doc_comment():
    """helm-docs style: each key in values.yaml has a comment block starting with `# --` above it."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        if not re.match(r"^\s*[A-Za-z0-9_.\-/]+:", line):
            continue
        above, i = [], number - 1
        while i >= 0 and lines[i].strip().startswith("#"):
            above.append(lines[i].strip())
            i -= 1
        if not any(comment.startswith("# -- ") for comment in above):
            undocumented.append(f"{number + 1}: {line.strip()}")
    assert not undocumented, "values without a `# --` comment:\n" + "\n".join(undocumented)


# --- Every object, every pod ----------------------------------------------------------------------


def test_objects_live_in_the_environment_namespace_with_standard_labels(env):
    for obj in render(env):
        meta = obj["metadata"]
        assert meta["namespace"] == namespace_of(env), f"{obj['kind']}/{meta['name']}"
        labels = meta["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["ridgeline.io/environment"] == env
    assert not [o for o in render(env) if o["kind"] in {"Namespace", "ClusterRole", "ClusterRoleBinding"}]


def test_every_container_has_requests_and_limits(env):
    for name, _, spec in pod_specs(render(env)):
        for c in containers(spec):
            resources = c.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(part, {})), f"{name}/{c['name']} lacks {part}"


def test_pods_and_containers_are_hardened(env):
    for name, _, spec in pod_specs(render(env)):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        for volume in spec.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= PSA_RESTRICTED_VOLUMES, f"{name} volume {volume['name']} is {kinds}"
        for c in containers(spec):
            sc = c["securityContext"]
            where = f"{name}/{c['name']}"
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["runAsNonRoot"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
            assert not sc.get("privileged"), where


def test_no_service_account_tokens_and_no_rbac_grants(env):
    objects = render(env)
    assert not [o for o in objects if o["kind"] in {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}]
    accounts = {sa["metadata"]["name"]: sa for sa in of_kind(objects, "ServiceAccount")}
    assert all(sa["automountServiceAccountToken"] is False for sa in accounts.values())
    used = {}
    for name, meta, spec in pod_specs(objects):
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["serviceAccountName"] in accounts, f"{name} uses a ServiceAccount the chart does not make"
        used.setdefault(spec["serviceAccountName"], set()).add(component(meta))
    # one account per component (the download Job and the test pod borrow the LLM's and the action server's)
    for account, components in used.items():
        assert len(components - {"llm-download", "test"}) == 1, f"{account} is shared by {components}"


def test_long_running_containers_have_probes(env):
    objects = render(env)
    for name, meta, spec in pod_specs(objects):
        if name.startswith(("Job/", "Pod/")):
            continue
        for c in spec["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in c, f"{name}/{c['name']} has no {probe}"
    llm = by_name(objects, "Deployment", f"{RELEASE}-llm")["spec"]["template"]["spec"]["containers"][0]
    assert llm["livenessProbe"]["httpGet"]["path"] == "/health"
    assert llm["readinessProbe"]["httpGet"]["path"] == "/ready"
    startup = llm["startupProbe"]
    assert startup["httpGet"]["path"] == "/health"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 15 * 60, "model loading needs a long startupProbe"
    actions = by_name(objects, "Deployment", f"{RELEASE}-actions")["spec"]["template"]["spec"]["containers"][0]
    assert {actions[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")} == {"/health"}


def test_only_the_llm_asks_for_a_gpu(env):
    objects = render(env)
    gpu_users = []
    for name, meta, spec in pod_specs(objects):
        for c in containers(spec):
            if any("nvidia.com/gpu" in part for part in c["resources"].values()):
                gpu_users.append((name, c["name"]))
    llm = by_name(objects, "Deployment", f"{RELEASE}-llm")["spec"]["template"]["spec"]
    if env == "dev":  # the CPU variant
        assert gpu_users == []
        assert llm["containers"][0]["image"].endswith(":0.1.0-cpu")
        assert "--device" in llm["containers"][0]["args"] and "cpu" in llm["containers"][0]["args"]
    else:
        assert gpu_users == [(f"Deployment/{RELEASE}-llm", "llm")]
        assert llm["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert llm["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in llm["tolerations"]


def test_images_are_pinned_and_come_from_the_registry(env):
    for name, _, spec in pod_specs(render(env)):
        for c in containers(spec):
            image = c["image"]
            tag = image.rsplit(":", 1)[-1] if "@" not in image else None
            assert "@sha256:" in image or (tag and tag != "latest" and re.search(r"\d", tag)), f"{name}: {image}"
            if "/ridgeline/" in image:
                assert image.startswith("ghcr.io/your-org/ridgeline/"), image


# --- NetworkPolicies ------------------------------------------------------------------------------


def _peer(peer: dict, np_values: dict | None = None) -> str:
    if "ipBlock" in peer:
        return peer["ipBlock"]["cidr"]
    ns = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get("kubernetes.io/metadata.name")
    if ns:
        return {"ingress-nginx": "ingress-controller", "kube-system": "dns", "monitoring": "prometheus"}[ns]
    return component({"labels": peer["podSelector"]["matchLabels"]})


def edges(objects) -> tuple[set, set]:
    """(ingress edges, egress edges) as (source, destination, port) from the NetworkPolicies."""
    ingress, egress = set(), set()
    for policy in of_kind(objects, "NetworkPolicy"):
        target = component({"labels": policy["spec"]["podSelector"].get("matchLabels") or {}}) or "*"
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                for port in rule["ports"]:
                    ingress.add((_peer(peer), target, port["port"]))
        for rule in policy["spec"].get("egress", []):
            for peer in rule["to"]:
                for port in rule["ports"]:
                    egress.add((target, _peer(peer), port["port"]))
    return ingress, egress


# The issue's flows: ingress -> Rasa, Rasa -> actions, actions -> LLM, Rasa -> Redis/PostgreSQL, DNS.
CORE_INGRESS = {("ingress-controller", "rasa", 5005), ("rasa", "actions", 5055), ("actions", "llm", 8000),
                ("rasa", "postgresql", 5432), ("rasa", "redis", 6379)}
CORE_EGRESS = {("rasa", "actions", 5055), ("actions", "llm", 8000), ("rasa", "postgresql", 5432),
               ("rasa", "redis", 6379), ("*", "dns", 53)}


def test_network_policies_allow_exactly_the_issues_flows():
    objects = render("dev", sets=("monitoring.serviceMonitor.enabled=false", "tests.enabled=false",
                                  "llm.weights.download.enabled=false"))
    ingress, egress = edges(objects)
    assert ingress == CORE_INGRESS
    assert egress == CORE_EGRESS


def test_network_policies_add_only_the_enabled_features_flows():
    ingress, egress = edges(render("dev"))
    assert ingress - CORE_INGRESS == {("prometheus", "llm", 8000), ("prometheus", "rasa", 5005),
                                      ("prometheus", "actions", 5055), ("test", "rasa", 5005)}
    assert egress - CORE_EGRESS == {("llm-download", "0.0.0.0/0", 443), ("test", "rasa", 5005)}


HANDOFF = ("actions.handoff.slackChannel=C0123456789", "actions.handoff.smtp.host=smtp.example.com",
           "actions.handoff.smtp.port=2525", "actions.handoff.smtp.from=sherpa@example.com",
           "actions.handoff.smtp.to=team@example.com", "actions.handoff.smtp.user=sherpa",
           "actions.handoff.egressCidr=203.0.113.0/24")


def test_handoff_notices_get_their_settings_secrets_and_egress_only_when_set():
    plain = render("dev", sets=("monitoring.serviceMonitor.enabled=false", "tests.enabled=false",
                                "llm.weights.download.enabled=false"))
    _, egress = edges(plain)
    assert egress == CORE_EGRESS  # no notice configured: no way out of the cluster
    env = {e["name"]: e for e in by_name(plain, "Deployment", f"{RELEASE}-actions")["spec"]["template"]["spec"][
        "containers"][0]["env"]}
    assert not [name for name in env if name.startswith("HANDOFF_") and name != "HANDOFF_NOTIFY_TIMEOUT_S"]

    objects = render("dev", sets=("monitoring.serviceMonitor.enabled=false", "tests.enabled=false",
                                  "llm.weights.download.enabled=false", *HANDOFF))
    _, egress = edges(objects)
    assert egress - CORE_EGRESS == {("actions", "203.0.113.0/24", 443), ("actions", "203.0.113.0/24", 2525)}
    env = {e["name"]: e for e in by_name(objects, "Deployment", f"{RELEASE}-actions")["spec"]["template"]["spec"][
        "containers"][0]["env"]}
    assert {n: env[n]["value"] for n in ("HANDOFF_SLACK_CHANNEL", "HANDOFF_SMTP_HOST", "HANDOFF_SMTP_PORT",
                                         "HANDOFF_SMTP_FROM", "HANDOFF_SMTP_TO", "HANDOFF_SMTP_USER",
                                         "HANDOFF_SMTP_STARTTLS", "HANDOFF_NOTIFY_TIMEOUT_S")} == {
        "HANDOFF_SLACK_CHANNEL": "C0123456789", "HANDOFF_SMTP_HOST": "smtp.example.com", "HANDOFF_SMTP_PORT": "2525",
        "HANDOFF_SMTP_FROM": "sherpa@example.com", "HANDOFF_SMTP_TO": "team@example.com",
        "HANDOFF_SMTP_USER": "sherpa", "HANDOFF_SMTP_STARTTLS": "true", "HANDOFF_NOTIFY_TIMEOUT_S": "3"}
    assert env["HANDOFF_SLACK_BOT_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "ridgeline-secrets", "key": "handoff-slack-bot-token"}
    assert env["HANDOFF_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "ridgeline-secrets", "key": "handoff-smtp-password"}
    # Every HANDOFF_* variable is one the action server reads (actions/config.py).
    from actions.config import VARIABLES
    assert {n for n in env if n.startswith("HANDOFF_")} <= set(VARIABLES)


def test_a_chart_made_secret_needs_the_handoff_credentials_it_is_told_to_use():
    error = render_error("dev", sets=("secrets.existingSecret=", "actions.handoff.slackChannel=C0123456789"))
    assert "secrets.values.handoffSlackBotToken is empty" in error
    error = render_error("dev", sets=("secrets.existingSecret=", "actions.handoff.smtp.host=smtp.example.com",
                                      "actions.handoff.smtp.user=sherpa"))
    assert "secrets.values.handoffSmtpPassword is empty" in error


@pytest.mark.parametrize(("env", "sets"), [*((e, ()) for e in ENVIRONMENTS), ("prod", ALL_FEATURES)],
                         ids=[*ENVIRONMENTS, "prod-all-features"])
def test_only_rasa_pods_reach_the_action_server(env, sets):
    """The action server's token is the second lock; the first is that only Rasa pods get through (and
    Prometheus, for /metrics, which needs no token, when the ServiceMonitors are on: test_monitoring.py)."""
    objects = render(env, sets=(*sets, "monitoring.serviceMonitor.enabled=false"))
    policy = by_name(objects, "NetworkPolicy", f"{RELEASE}-actions")
    actions_pods = by_name(objects, "Deployment", f"{RELEASE}-actions")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= actions_pods.items()
    assert "Ingress" in policy["spec"]["policyTypes"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5055}]
    (peer,) = rule["from"]
    assert set(peer) == {"podSelector"}, "same namespace only: no namespaceSelector, no ipBlock"
    selector = peer["podSelector"]["matchLabels"]
    selected = [name for name, meta, _ in pod_specs(objects) if selector.items() <= meta["labels"].items()]
    assert selected == [f"Deployment/{RELEASE}-rasa"]
    # no other policy lets anything in to the action server
    for other in of_kind(objects, "NetworkPolicy"):
        if other is not policy and other["spec"].get("ingress"):
            assert not other["spec"]["podSelector"] or not (
                other["spec"]["podSelector"].get("matchLabels", {}).items() <= actions_pods.items()), other["metadata"]["name"]


def test_network_policies_reach_external_stores_by_cidr_in_prod():
    ingress, egress = edges(render("prod"))
    assert ("rasa", "10.20.0.0/16", 5432) in egress and ("rasa", "10.20.0.0/16", 6379) in egress
    assert not {e for e in ingress | egress if "postgresql" in e or "redis" in e}


def test_default_deny_and_every_pod_has_its_policy(env):
    objects = render(env)
    policies = of_kind(objects, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1 and deny[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny[0]["spec"] and "egress" not in deny[0]["spec"]
    for name, meta, _ in pod_specs(objects):
        own = [p for p in policies if p["spec"]["podSelector"] and component({"labels": p["spec"]["podSelector"]["matchLabels"]})
               and p["spec"]["podSelector"]["matchLabels"].items() <= meta["labels"].items()]
        assert own, f"{name} is selected by no policy of its own"
        assert own[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]


# --- Scaling and disruption -------------------------------------------------------------------------


def test_autoscalers_and_budgets_target_real_workloads(env):
    objects = render(env)
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment")}
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        assert "replicas" not in deployments[target["name"]]["spec"], "the HPA owns the replica count"
    scaled = {component(h) for h in hpas}
    assert scaled == (set() if env == "dev" else {"rasa", "actions"})
    for hpa in hpas:
        (metric,) = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
        assert metric["resource"]["name"] == "cpu"
    pdbs = of_kind(objects, "PodDisruptionBudget")
    assert {component(p) for p in pdbs} == {"rasa", "actions", "llm"}
    for pdb in pdbs:
        selector = pdb["spec"]["selector"]["matchLabels"]
        matched = [d for d in deployments.values() if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matched) == 1, pdb["metadata"]["name"]


def test_llm_scales_on_its_queue_length():
    objects = render("prod", sets=("llm.autoscaling.enabled=true",))
    hpa = by_name(objects, "HorizontalPodAutoscaler", f"{RELEASE}-llm")
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-llm"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "llm_requests_waiting"
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "4"}


def test_more_than_one_rasa_replica_needs_redis_and_postgresql():
    error = render_error(sets=("rasa.replicaCount=3", "redis.enabled=false"))
    assert "more than one replica but has no Redis lock store" in error
    error = render_error(sets=("rasa.autoscaling.enabled=true", "redis.enabled=false"))
    assert "no Redis lock store" in error
    error = render_error(sets=("rasa.replicaCount=2", "postgresql.enabled=false"))
    assert "no PostgreSQL tracker store" in error
    # one replica without stores is fine (in-memory), and so are external stores
    render(sets=("redis.enabled=false", "postgresql.enabled=false"))
    render(sets=("rasa.replicaCount=2", "redis.enabled=false", "redis.external.host=redis.example",
                 "secrets.values.redisPassword=x"))


def test_values_of_one_environment_refuse_another_namespace():
    error = render_error("prod", namespace="ridgeline-dev")
    assert 'these values are for namespace "ridgeline-prod"' in error


# --- Rasa's configuration ----------------------------------------------------------------------------


def test_rasa_is_stateless_with_postgresql_and_redis(env):
    objects = render(env)
    config = by_name(objects, "ConfigMap", f"{RELEASE}-rasa")["data"]
    endpoints = yaml.safe_load(config["endpoints.yml"])
    assert endpoints["action_endpoint"]["url"] == f"http://{RELEASE}-actions.{namespace_of(env)}.svc:5055/webhook"
    assert endpoints["tracker_store"] == {
        "type": "SQL", "dialect": "postgresql", "url": "${DB_HOST}", "port": "${DB_PORT}",
        "username": "${DB_USER}", "password": "${DB_PASSWORD}", "db": "${DB_NAME}",
        **({"query": {"sslmode": "require"}} if env == "prod" else {}),
    }
    assert endpoints["lock_store"]["type"] == "redis" and endpoints["lock_store"]["password"] == "${REDIS_PASSWORD}"
    assert endpoints["lock_store"]["use_ssl"] is (env == "prod")
    assert {"ridgeline_rasa.channels.rest.RestInput", "ridgeline_rasa.channels.socketio.SocketIOInput"} <= set(yaml.safe_load(config["credentials.yml"]))
    rasa = by_name(objects, "Deployment", f"{RELEASE}-rasa")["spec"]["template"]["spec"]["containers"][0]
    env_vars = {e["name"]: e for e in rasa["env"]}
    host = env_vars["DB_HOST"]["value"]
    assert host == (f"{RELEASE}-postgresql" if env != "prod" else "ridgeline-prod.postgres.example.internal")
    assert "$(RASA_AUTH_TOKEN)" in rasa["args"]


def test_rasa_sends_the_action_server_token_from_its_environment(env):
    objects = render(env)
    endpoints = yaml.safe_load(by_name(objects, "ConfigMap", f"{RELEASE}-rasa")["data"]["endpoints.yml"])
    # Rasa expands ${ACTION_SERVER_TOKEN} itself: the value is never in the ConfigMap
    assert endpoints["action_endpoint"]["headers"] == {"Authorization": "Bearer ${ACTION_SERVER_TOKEN}"}


def test_rasa_channel_limits_come_from_the_values():
    def limits(objects):
        rasa = by_name(objects, "Deployment", f"{RELEASE}-rasa")["spec"]["template"]["spec"]["containers"][0]
        env_vars = {e["name"]: e.get("value") for e in rasa["env"]}
        return {k: env_vars[k] for k in ("MAX_MESSAGE_CHARS", "RATE_LIMIT_MESSAGES", "RATE_LIMIT_WINDOW_S")}

    # the defaults are the channels' own (ridgeline_rasa/settings.py)
    assert limits(render("dev")) == {"MAX_MESSAGE_CHARS": "4000", "RATE_LIMIT_MESSAGES": "15", "RATE_LIMIT_WINDOW_S": "30"}
    tuned = render("dev", sets=("rasa.limits.maxMessageChars=1000", "rasa.limits.rateLimitMessages=5",
                                "rasa.limits.rateLimitWindowSeconds=60"))
    assert limits(tuned) == {"MAX_MESSAGE_CHARS": "1000", "RATE_LIMIT_MESSAGES": "5", "RATE_LIMIT_WINDOW_S": "60"}
    assert "/rasa/limits/maxMessageChars" in render_error(sets=("rasa.limits.maxMessageChars=0",))
    assert "/rasa/limits/rateLimitWindowSeconds" in render_error(sets=("rasa.limits.rateLimitWindowSeconds=0",))


def test_channels_read_their_credentials_from_the_secret():
    objects = render("staging", sets=("rasa.channels.slack.enabled=true", "rasa.channels.telegram.enabled=true",
                                      "rasa.channels.telegram.botName=ridgeline_bot"))
    credentials = yaml.safe_load(by_name(objects, "ConfigMap", f"{RELEASE}-rasa")["data"]["credentials.yml"])
    # The project's connectors read the tokens from the environment: none in the ConfigMap.
    assert "ridgeline_rasa.channels.slack.SlackInput" in credentials and "ridgeline_rasa.channels.telegram.TelegramInput" in credentials
    assert "slack" not in credentials and "token" not in str(credentials).lower()
    rasa = by_name(objects, "Deployment", f"{RELEASE}-rasa")["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in rasa["env"] if "valueFrom" in e}
    assert refs["SLACK_BOT_TOKEN"] == {"name": "ridgeline-secrets", "key": "slack-bot-token"}
    assert refs["TELEGRAM_ACCESS_TOKEN"] == {"name": "ridgeline-secrets", "key": "telegram-access-token"}
    assert refs["TELEGRAM_SECRET_TOKEN"] == {"name": "ridgeline-secrets", "key": "telegram-secret-token"}


# --- Secrets ------------------------------------------------------------------------------------------


def test_sensitive_variables_always_come_from_a_secret(env):
    for name, _, spec in pod_specs(render(env)):
        for c in containers(spec):
            for var in c.get("env", []):
                if SENSITIVE_ENV.search(var["name"]):
                    if var["name"] == "ORDERS_DB_URL" and var.get("value", "").startswith("sqlite:"):
                        continue  # a file path, no credential
                    assert "value" not in var, f"{name}/{c['name']} {var['name']} is a plain value"
                    assert var["valueFrom"]["secretKeyRef"]["name"] == "ridgeline-secrets"


def test_existing_secret_means_no_secret_in_the_manifests():
    objects = render("prod")
    assert of_kind(objects, "Secret") == []
    for field in ("rasaAuthToken", "actionServerToken"):
        error = render_error("prod", sets=(f"secrets.values.{field}=oops",))
        assert "secrets.existingSecret is set, so secrets.values must stay empty" in error


def _secret_refs(objects, deployment: str) -> dict:
    container = by_name(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}


@pytest.mark.parametrize(("sets", "secret"), [((), "ridgeline-secrets"), (("secrets.existingSecret=vault-synced",), "vault-synced")],
                         ids=["environment", "renamed"])
def test_action_server_token_reaches_rasa_and_actions_from_one_key(env, sets, secret):
    objects = render(env, sets=sets)
    expected = {"name": secret, "key": "action-server-token"}
    assert _secret_refs(objects, f"{RELEASE}-rasa")["ACTION_SERVER_TOKEN"] == expected
    assert _secret_refs(objects, f"{RELEASE}-actions")["ACTION_SERVER_TOKEN"] == expected
    # existingSecret: the chart renders no Secret and no token value anywhere
    assert of_kind(objects, "Secret") == []
    for name, _, spec in pod_specs(objects):
        for c in containers(spec):
            assert all("value" not in e for e in c.get("env", []) if e["name"] == "ACTION_SERVER_TOKEN"), name
    # the key can be renamed, and both follow
    renamed = render(env, sets=sets + ("secrets.keys.actionServerToken=rasa-to-actions",))
    for deployment in (f"{RELEASE}-rasa", f"{RELEASE}-actions"):
        assert _secret_refs(renamed, deployment)["ACTION_SERVER_TOKEN"]["key"] == "rasa-to-actions"


def test_chart_made_secret_generates_the_action_server_token():
    """Without existingSecret the token is generated (Rasa cannot start without one), even with the API off."""
    for sets in ((), ("rasa.enableApi=false",)):
        objects = render(sets=sets)
        (secret,) = of_kind(objects, "Secret")
        token = base64.b64decode(secret["data"]["action-server-token"]).decode()
        assert len(token) == 32 and token.isalnum()
        for deployment in (f"{RELEASE}-rasa", f"{RELEASE}-actions"):
            assert _secret_refs(objects, deployment)["ACTION_SERVER_TOKEN"] == {
                "name": secret["metadata"]["name"], "key": "action-server-token"}
    given = ("secrets.values.actionServerToken=SentinelActions4444",)
    assert "SentinelActions4444" not in helm(*template_args(sets=given)).stdout
    (secret,) = of_kind(render(sets=given), "Secret")
    assert base64.b64decode(secret["data"]["action-server-token"]).decode() == "SentinelActions4444"


def test_chart_made_secret_never_shows_a_value_in_plain_text():
    sentinels = {"rasaAuthToken": "SentinelRasa1", "postgresPassword": "SentinelPg22", "llmApiKey": "SentinelKey333"}
    sets = tuple(f"secrets.values.{k}={v}" for k, v in sentinels.items()) + ("llm.apiKey=true",)
    text = helm(*template_args(sets=sets)).stdout
    for value in sentinels.values():
        assert value not in text
    (secret,) = of_kind(render(sets=sets), "Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["rasa-auth-token"] == "SentinelRasa1" and data["llm-api-key"] == "SentinelKey333"
    assert len(data["redis-password"]) == 32  # generated
    error = render_error(sets=("rasa.channels.slack.enabled=true",))
    assert "secrets.values.slackBotToken is empty" in error


# --- The LLM: engines, model version, weights ---------------------------------------------------------


def _actions_env(objects) -> dict:
    actions = by_name(objects, "Deployment", f"{RELEASE}-actions")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in actions["env"]}


def test_action_server_runs_the_hardened_server(env):
    actions = by_name(render(env), "Deployment", f"{RELEASE}-actions")["spec"]["template"]["spec"]["containers"][0]
    assert actions["command"] == ["python", "-m", "actions.server"]
    assert actions["args"] == ["--actions", "actions", "--port", "5055"]
    # the same as the image's own entrypoint and command
    dockerfile = (REPO / "docker" / "actions.Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "actions.server"]' in dockerfile
    assert 'CMD ["--actions", "actions", "--port", "5055"]' in dockerfile


def test_builtin_engine_serves_the_action_server():
    objects = render("staging")
    assert _actions_env(objects)["ACTIONS_LLM_URL"] == f"http://{RELEASE}-llm.ridgeline-staging.svc:8000/v1"
    llm = by_name(objects, "Deployment", f"{RELEASE}-llm")["spec"]["template"]["spec"]["containers"][0]
    assert llm["image"] == "ghcr.io/your-org/ridgeline/llm:0.1.0"
    assert llm["args"][:3] == ["serve", "--model", "/models/Qwen/Qwen2.5-1.5B-Instruct/main"]


def _llm_env(objects, name: str = f"{RELEASE}-llm") -> dict:
    return {e["name"]: e for e in by_name(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("version", VALIDATE_VERSIONS)
def test_builtin_llm_checks_the_api_key_the_action_server_sends(version):
    objects = render("staging", sets=("llm.apiKey=true",))
    for obj in objects:
        if obj["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(obj, version, strict=True)
    key = {"name": "ridgeline-secrets", "key": "llm-api-key"}
    llm_env = _llm_env(objects)
    assert llm_env["LLM_API_KEY"]["valueFrom"]["secretKeyRef"] == key
    assert "VLLM_API_KEY" not in llm_env
    assert _secret_refs(objects, f"{RELEASE}-actions")["ACTIONS_LLM_API_KEY"] == key
    assert not [name for name in _actions_env(objects) if name.startswith("LLM_")], "LLM_* is the LLM service's"
    # the probes stay on the open paths
    llm = by_name(objects, "Deployment", f"{RELEASE}-llm")["spec"]["template"]["spec"]["containers"][0]
    assert {llm[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")} <= {"/health", "/ready"}
    # off by default: neither side has a key
    default = render("staging")
    assert "LLM_API_KEY" not in _llm_env(default) and "ACTIONS_LLM_API_KEY" not in _actions_env(default)


def test_vllm_engine_replaces_the_builtin_service_behind_the_same_api():
    objects = render("prod", sets=("llm.engine=vllm", "llm.apiKey=true"))
    deployments = {d["metadata"]["name"] for d in of_kind(objects, "Deployment")}
    assert f"{RELEASE}-vllm" in deployments and f"{RELEASE}-llm" not in deployments
    vllm = by_name(objects, "Deployment", f"{RELEASE}-vllm")["spec"]["template"]["spec"]
    container = vllm["containers"][0]
    assert container["image"].startswith("docker.io/vllm/vllm-openai:v")
    args = container["args"]
    assert args[args.index("--served-model-name") + 1] == "ridgeline-llm"
    assert args[args.index("--model") + 1] == "/models/Qwen/Qwen2.5-1.5B-Instruct/main"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {e["name"]: e for e in container["env"]}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "llm-api-key"
    assert "LLM_API_KEY" not in env
    # the action server is unchanged but for where it points
    actions_env = _actions_env(objects)
    assert actions_env["ACTIONS_LLM_URL"] == f"http://{RELEASE}-vllm.ridgeline-prod.svc:8000/v1"
    assert actions_env["ACTIONS_LLM_MODEL"] == "ridgeline-llm"
    by_name(objects, "Service", f"{RELEASE}-vllm")
    assert ("actions", "llm", 8000) in edges(objects)[1]
    (rule,) = of_kind(objects, "PrometheusRule")
    exprs = " ".join(r["expr"] for g in rule["spec"]["groups"] for r in g["rules"])
    assert "vllm:num_requests_waiting" in exprs and "llm_requests_waiting" not in exprs
    assert "needs a GPU" in render_error("dev", sets=("llm.engine=vllm",))


def test_model_version_drives_the_download_job_and_the_rollout():
    base = render("staging")
    newer = render("staging", sets=("llm.model.revision=v2",))
    (job_a,), (job_b,) = of_kind(base, "Job"), of_kind(newer, "Job")
    assert job_a["metadata"]["name"] != job_b["metadata"]["name"], "a new version needs a new (immutable) Job"
    job_env = {e["name"]: e.get("value") for e in job_b["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert job_env["MODEL_REVISION"] == "v2" and job_env["MODEL_DIR"] == "/models/Qwen/Qwen2.5-1.5B-Instruct/v2"
    llm = by_name(newer, "Deployment", f"{RELEASE}-llm")["spec"]["template"]["spec"]
    assert llm["containers"][0]["args"][2] == "/models/Qwen/Qwen2.5-1.5B-Instruct/v2"
    wait = llm["initContainers"][0]
    assert wait["name"] == "wait-for-weights" and wait["command"][-1] == "/models/Qwen/Qwen2.5-1.5B-Instruct/v2"
    (claim,) = of_kind(newer, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert llm["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    script = by_name(newer, "ConfigMap", f"{RELEASE}-llm-download")["data"]["download-weights.py"]
    assert script.strip() == (CHART / "files" / "download-weights.py").read_text().strip()


# --- Ingress, monitoring, tests, NOTES ------------------------------------------------------------------


def test_ingress_routes_channels_with_websockets_and_tls():
    objects = render("staging")
    ingress = by_name(objects, "Ingress", f"{RELEASE}-rasa")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt-staging"
    assert ingress["spec"]["tls"] == [{"hosts": ["chat.staging.example.com"], "secretName": "ridgeline-staging-tls"}]
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert [p["path"] for p in paths] == ["/webhooks", "/socket.io"], "Rasa's HTTP API stays inside the cluster"
    assert {p["backend"]["service"]["name"] for p in paths} == {f"{RELEASE}-rasa"}


def test_grafana_dashboard_configmap():
    dashboard = by_name(render("prod"), "ConfigMap", f"{RELEASE}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["ridgeline.json"])
    assert board["uid"] == "ridgeline-assistant"
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
    for metric in ("llm_requests_total", "llm_request_duration_seconds_bucket", "llm_requests_waiting",
                   "llm_time_to_first_token_seconds_bucket",
                   "kube_pod_container_status_restarts_total"):
        assert metric in exprs


def test_helm_test_pod_sends_one_message_through_rasa():
    (pod,) = of_kind(render("dev"), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = pod["spec"]["containers"][0]["command"]
    assert command[-2] == f"http://{RELEASE}-rasa:5005/webhooks/rest/webhook"
    assert command[-1] == "hello"
    compile(command[2], "helm-test", "exec")  # the inline script is valid Python


def test_notes_render(tmp_path):
    """`helm template` skips NOTES.txt, so render it as a named template of a copy of the chart."""
    chart = tmp_path / "ridgeline"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text('{{- define "notes" -}}\n' + notes + "\n{{- end -}}\n")
    (chart / "templates" / "notes.yaml").write_text('notes: {{ include "notes" . | toJson }}\n')
    args = template_args("staging", chart=chart) + ["--show-only", "templates/notes.yaml"]
    text = yaml.safe_load(helm(*args).stdout)["notes"]
    assert "ridgeline-staging" in text and "helm test ridgeline" in text
    assert "https://chat.staging.example.com/webhooks/rest/webhook" in text
    assert 'key "action-server-token" of Secret "ridgeline-secrets"' in text
    assert "rollout restart deploy/ridgeline-actions deploy/ridgeline-rasa" in text
