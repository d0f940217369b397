"""The study driver's access to the Kubernetes API (k8s/study/rbac.yaml): the head pod alone runs
as weam-study-driver, whose Role can create, get, list, watch and delete TrainJobs in its
namespace and nothing else; its token is projected into the ray-head container only. Checked on
every study overlay as `kubectl apply -k` applies it; broken copies prove the check can fail."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.deploy.manifests import containers, pod_templates
from tests.deploy.test_kustomize import rendered
from weam.training.trainjob import GROUP, PLURAL

DRIVER = "weam-study-driver"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where the kubernetes client's load_incluster_config reads token, ca.crt and namespace."""
ALLOWED = [{"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["create", "get", "list", "watch", "delete"]}]


def check_driver_access(docs: list[dict[str, Any]]) -> None:
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")], "no cluster-wide rights"
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Role"}
    granted: dict[str, list[dict[str, Any]]] = {}
    for binding in (d for d in docs if d["kind"] == "RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role"
        role = roles[binding["roleRef"]["name"]]
        assert role["metadata"]["namespace"] == binding["metadata"]["namespace"]
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount"
            granted.setdefault(subject["name"], []).extend(role["rules"])
    assert granted == {DRIVER: ALLOWED}, granted
    (job,) = [d for d in docs if d["kind"] == "RayJob"]
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]
    others = [t for t in pod_templates(job) if t is not head]
    assert head["spec"]["serviceAccountName"] == DRIVER and head["spec"]["automountServiceAccountToken"] is False
    assert others and all(t["spec"].get("serviceAccountName") != DRIVER for t in others), "only the head drives"
    volumes = {v["name"]: v for v in head["spec"]["volumes"]}
    mounting = [c["name"] for c in containers(head)
                for m in c.get("volumeMounts", []) if m["mountPath"] == TOKEN_PATH]
    assert mounting == ["ray-head"], mounting
    (mount,) = [m for c in containers(head) for m in c["volumeMounts"] if m["mountPath"] == TOKEN_PATH]
    assert mount["readOnly"] is True
    sources = volumes[mount["name"]]["projected"]["sources"]
    (token,) = [s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s]
    assert token["path"] == "token" and 600 <= token["expirationSeconds"] <= 3600
    paths = {item["path"] for s in sources for item in next(iter(s.values())).get("items", [])}
    assert paths == {"ca.crt", "namespace"}
    for template in others:  # no other pod gets any token
        assert template["spec"]["automountServiceAccountToken"] is False
        assert all(m["mountPath"] != TOKEN_PATH for c in containers(template) for m in c.get("volumeMounts", []))


@pytest.mark.parametrize("overlay", ["study", "study-smoke", "study-4x8"])
def test_only_the_driver_can_manage_trainjobs_and_nothing_else(overlay):
    check_driver_access(rendered(overlay))


def _role(docs):
    return next(d for d in docs if d["kind"] == "Role")


@pytest.mark.parametrize("breaks", [
    lambda docs: _role(docs)["rules"][0]["resources"].append("pods"),
    lambda docs: _role(docs)["rules"][0].update(verbs=["*"]),
    lambda docs: _role(docs)["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
    lambda docs: next(d for d in docs if d["kind"] == "RoleBinding")["subjects"].append(
        {"kind": "ServiceAccount", "name": "weam-train", "namespace": "weam"}),
    lambda docs: next(d for d in docs if d["kind"] == "RayJob")["spec"]["rayClusterSpec"]["workerGroupSpecs"][1][
        "template"]["spec"].update(serviceAccountName=DRIVER),
    lambda docs: next(d for d in docs if d["kind"] == "RayJob")["spec"]["rayClusterSpec"]["headGroupSpec"][
        "template"]["spec"].update(automountServiceAccountToken=True),
], ids=["pods", "any-verb", "secrets", "workers-bound", "worker-as-driver", "automount"])
def test_the_check_catches_wider_access(breaks):
    docs = copy.deepcopy(rendered("study"))
    breaks(docs)
    with pytest.raises((AssertionError, KeyError)):
        check_driver_access(docs)
