"""The retention CronJob in the Helm chart (tests/deploy's helpers: helm template + kubernetes-validate)."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from review.settings import DEFAULT_RETENTION_DAYS
from tests.deploy.conftest import (CHART, ENVIRONMENTS, RELEASE, VALIDATE_VERSIONS, by_name, of_kind, render,
                                   render_error)

ON = ("retention.prune.enabled=true",)
CRONJOB = f"{RELEASE}-review-prune"


def cronjob_pod(objects) -> dict:
    return by_name(objects, "CronJob", CRONJOB)["spec"]["jobTemplate"]["spec"]["template"]


def test_the_chart_default_retention_is_the_tools_and_the_prune_job_is_opt_in():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["retention"]["days"] == DEFAULT_RETENTION_DAYS
    for env in ENVIRONMENTS:
        assert not of_kind(render(env), "CronJob")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_prune_cronjob_is_valid_and_hardened(env):
    objects = render(env, sets=ON)
    for version in VALIDATE_VERSIONS:
        for obj in objects:
            if obj["kind"] in {"CronJob", "NetworkPolicy"}:
                kubernetes_validate.validate(obj, version, strict=True)
    cronjob = by_name(objects, "CronJob", CRONJOB)
    assert cronjob["spec"]["schedule"] == "17 3 * * *" and cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob_pod(objects)
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False and spec["restartPolicy"] == "Never"
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    assert container["command"] == ["python", "-m", "review", "prune"]
    assert container["args"] == ["--batch-size", "100"]
    actions = by_name(objects, "Deployment", f"{RELEASE}-actions")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == actions["image"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["limits"]) and container["resources"]["requests"]
    env_vars = {e["name"]: e for e in container["env"]}
    assert env_vars["REVIEW_RETENTION_DAYS"]["value"] == "90"
    assert "value" not in env_vars["DB_PASSWORD"] and env_vars["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]
    rasa = {e["name"]: e for e in by_name(objects, "Deployment", f"{RELEASE}-rasa")["spec"]["template"]["spec"]
            ["containers"][0]["env"]}
    for name in ("DB_HOST", "DB_PORT", "DB_USER", "DB_NAME", "DB_PASSWORD"):
        assert env_vars[name] == rasa[name], f"the prune job and Rasa disagree on {name}"
    assert ("PGSSLMODE" in env_vars) is (env == "prod")


def test_only_the_prune_pods_get_the_new_flow_to_postgresql():
    objects = render("dev", sets=ON)
    labels = cronjob_pod(objects)["metadata"]["labels"]
    own = by_name(objects, "NetworkPolicy", CRONJOB)
    assert own["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert own["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in own["spec"]
    (egress,) = own["spec"]["egress"]
    assert egress["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert egress["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "postgresql"
    inbound = by_name(objects, "NetworkPolicy", f"{RELEASE}-postgresql-from-review-prune")
    assert inbound["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"].items() <= labels.items()
    dns = by_name(objects, "NetworkPolicy", f"{RELEASE}-dns")
    assert dns["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    # production: the managed database by CIDR, nothing in-release
    prod = render("prod", sets=ON)
    (egress,) = by_name(prod, "NetworkPolicy", CRONJOB)["spec"]["egress"]
    assert "ipBlock" in egress["to"][0]
    assert not [p for p in of_kind(prod, "NetworkPolicy") if p["metadata"]["name"].endswith("from-review-prune")]


def test_values_are_checked():
    objects = render("dev", sets=(*ON, "retention.days=30", "retention.prune.batchSize=20",
                                  "retention.prune.timeZone=Europe/London"))
    container = cronjob_pod(objects)["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in container["env"]}["REVIEW_RETENTION_DAYS"] == "30"
    assert container["args"] == ["--batch-size", "20"]
    assert by_name(objects, "CronJob", CRONJOB)["spec"]["timeZone"] == "Europe/London"
    assert "/retention/days" in render_error(sets=("retention.days=0",))
    assert "/retention/prune/schedule" in render_error(sets=("retention.prune.schedule=daily",))
    error = render_error(sets=(*ON, "postgresql.enabled=false"))
    assert "needs a PostgreSQL tracker store" in error
