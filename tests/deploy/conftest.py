"""Helpers for the deployment tests: run Helm (scripts/helm.sh), render the chart, load manifests.

No cluster and no container engine: the chart is rendered with `helm template` and validated
offline against the Kubernetes OpenAPI schemas (kubernetes-validate).
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "ridgeline"
HELM = REPO / "scripts" / "helm.sh"
RELEASE = "ridgeline"
ENVIRONMENTS = ("dev", "staging", "prod")
# The cluster version the chart is rendered for, and the range it is validated against:
# the oldest version Chart.yaml's kubeVersion admits and a current one.
KUBE_VERSION = "1.31.0"
VALIDATE_VERSIONS = ("1.29.0", "1.33.0")
# The CRD APIs the monitoring and VPA templates look for (.Capabilities.APIVersions.Has).
CRD_APIS = (
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
    "autoscaling.k8s.io/v1/VerticalPodAutoscaler",
)


def namespace_of(env: str) -> str:
    return f"ridgeline-{env}"


def values_file(env: str) -> Path:
    return CHART / f"values-{env}.yaml"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(HELM), *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


def template_args(
    env: str | None = None,
    sets: tuple[str, ...] = (),
    namespace: str | None = None,
    crds: bool = True,
    chart: Path = CHART,
) -> list[str]:
    args = ["template", RELEASE, str(chart), "--kube-version", KUBE_VERSION]
    args += ["--namespace", namespace or (namespace_of(env) if env else "default")]
    if env:
        args += ["-f", str(values_file(env))]
    for item in sets:
        args += ["--set", item]
    if crds:
        for api in CRD_APIS:
            args += ["--api-versions", api]
    return args


@functools.lru_cache(maxsize=64)
def render(env: str | None = None, sets: tuple[str, ...] = (), namespace: str | None = None,
           crds: bool = True) -> tuple[dict, ...]:
    """The chart's objects for an environment (cached: several tests read the same render)."""
    out = helm(*template_args(env, sets, namespace, crds)).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def render_error(env: str | None = None, sets: tuple[str, ...] = (), namespace: str | None = None) -> str:
    """Render that must fail; returns Helm's error text."""
    result = helm(*template_args(env, sets, namespace), check=False)
    assert result.returncode != 0, f"rendering with {sets} should have failed"
    return result.stderr


def of_kind(objects, kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def by_name(objects, kind: str, name: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert matches, f"no {kind} {name}; have {[o['metadata']['name'] for o in of_kind(objects, kind)]}"
    return matches[0]


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "DaemonSet")


def pod_specs(objects) -> list[tuple[str, dict, dict]]:
    """(name, pod metadata, pod spec) of every workload and bare Pod."""
    specs = []
    for o in objects:
        if o["kind"] in WORKLOAD_KINDS:
            specs.append((f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["metadata"], o["spec"]["template"]["spec"]))
        elif o["kind"] == "Pod":
            specs.append((f"Pod/{o['metadata']['name']}", o["metadata"], o["spec"]))
    return specs


def containers(spec: dict) -> list[dict]:
    return list(spec.get("initContainers", [])) + list(spec["containers"])


@pytest.fixture(params=ENVIRONMENTS)
def env(request) -> str:
    return request.param
