"""gitops/argocd: one Argo CD Application per environment, pointing at the chart and its values."""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.conftest import CHART, ENVIRONMENTS, REPO, namespace_of

ARGOCD = REPO / "gitops" / "argocd"


def application(env: str) -> dict:
    return yaml.safe_load((ARGOCD / f"ridgeline-{env}.yaml").read_text())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_application_points_at_the_chart_and_its_values(env):
    app = application(env)
    assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
    assert app["metadata"] == {"name": f"ridgeline-{env}", "namespace": "argocd",
                               "finalizers": ["resources-finalizer.argocd.argoproj.io"]}
    spec = app["spec"]
    assert spec["project"] == "ridgeline"
    source = spec["source"]
    assert (REPO / source["path"]).resolve() == CHART
    (values,) = source["helm"]["valueFiles"]
    assert (CHART / values).is_file()
    # the values file names the namespace it belongs to (and the chart refuses any other)
    assert yaml.safe_load((CHART / values).read_text())["environment"]["namespace"] == namespace_of(env)
    assert spec["destination"]["namespace"] == namespace_of(env)
    # prod's topology spread constraints select pods by this release name
    assert source["helm"]["releaseName"] == "ridgeline"
    sync = spec["syncPolicy"]
    assert "CreateNamespace=true" in sync["syncOptions"]
    assert sync["managedNamespaceMetadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    if env == "prod":
        assert "automated" not in sync, "prod is synced by hand after staging"
        assert source["targetRevision"].startswith("v"), "prod deploys a release tag"
    else:
        assert sync["automated"] == {"prune": True, "selfHeal": True}


def test_project_admits_exactly_the_three_namespaces():
    project = yaml.safe_load((ARGOCD / "project.yaml").read_text())
    assert project["kind"] == "AppProject" and project["metadata"]["name"] == "ridgeline"
    assert {d["namespace"] for d in project["spec"]["destinations"]} == {namespace_of(e) for e in ENVIRONMENTS}
    assert {application(e)["spec"]["source"]["repoURL"] for e in ENVIRONMENTS} == set(project["spec"]["sourceRepos"])
