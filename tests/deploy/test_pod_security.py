"""Pod Security Standards: the namespace enforces "restricted", and every pod template we ship
(workloads and custom resources: RayCluster, RayJob, PyTorchJob) meets every rule of that profile
(https://kubernetes.io/docs/concepts/security/pod-security-standards/, baseline + restricted), so
the API server admits all of them. Mutated templates show that each rule can fail."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.deploy.manifests import all_documents, pod_templates, resource_id

DOCS = all_documents()
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", []), *spec.get("ephemeralContainers", [])]


def restricted_violations(template: dict[str, Any]) -> list[str]:
    """Every rule of the baseline and restricted profiles that this pod template breaks."""
    spec = template.get("spec", {})
    pod = spec.get("securityContext", {})
    problems = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(f"{key} is true")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: type {sorted(kinds - RESTRICTED_VOLUMES)} not allowed")
    for sysctl in pod.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl['name']} not allowed")
    if pod.get("windowsOptions", {}).get("hostProcess"):
        problems.append("pod: hostProcess")
    annotations = template.get("metadata", {}).get("annotations", {}) or {}
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
                value == "runtime/default" or value.startswith("localhost/")):
            problems.append(f"AppArmor annotation {key}={value}")
    problems += _context_problems("pod", pod)
    for container in all_containers(spec):
        name, own = container["name"], container.get("securityContext", {})
        merged = {**pod, **own}
        problems += [f"{name}: {p}" for p in _context_problems("container", own)]
        if own.get("privileged"):
            problems.append(f"{name}: privileged")
        if own.get("windowsOptions", {}).get("hostProcess"):
            problems.append(f"{name}: hostProcess")
        if own.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount {own['procMount']}")
        if own.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if merged.get("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if merged.get("runAsUser") == 0:
            problems.append(f"{name}: runAsUser 0")
        if merged.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: no RuntimeDefault/Localhost seccomp profile")
        capabilities = own.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {capabilities['add']}")
        for port in container.get("ports", []):
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort {port['hostPort']}")
    return problems


def _context_problems(level: str, context: dict[str, Any]) -> list[str]:
    problems = []
    selinux = context.get("seLinuxOptions", {})
    if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
        problems.append(f"{level}: seLinuxOptions {selinux}")
    apparmor = context.get("appArmorProfile", {}).get("type", "RuntimeDefault")
    if apparmor not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{level}: appArmorProfile {apparmor}")
    if context.get("runAsUser") == 0:
        problems.append(f"{level}: runAsUser 0")
    if context.get("runAsNonRoot") is False:
        problems.append(f"{level}: runAsNonRoot false")
    return problems


TEMPLATES = [(f"{path.name}:{resource_id(doc)}#{i}", template)
             for path, doc in DOCS for i, template in enumerate(pod_templates(doc))]
NAMESPACES = [(path.name, doc) for path, doc in DOCS if doc["kind"] == "Namespace"]


def test_there_are_templates_and_namespaces_to_check():
    kinds = {where.split(":")[1].split("/")[0] for where, _ in TEMPLATES}
    assert {"Job", "Deployment", "StatefulSet", "RayCluster", "RayJob", "PyTorchJob"} <= kinds
    assert NAMESPACES


@pytest.mark.parametrize(("where", "namespace"), NAMESPACES, ids=[w for w, _ in NAMESPACES])
def test_namespace_enforces_restricted(where, namespace):
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels.get(f"pod-security.kubernetes.io/{mode}") == "restricted", (where, mode)


@pytest.mark.parametrize(("where", "template"), TEMPLATES, ids=[w for w, _ in TEMPLATES])
def test_pod_template_meets_restricted(where, template):
    assert restricted_violations(template) == []


MUTATIONS = {
    "hostPath volume": lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
    "hostNetwork": lambda s: s.update(hostNetwork=True),
    "privilege escalation": lambda s: s["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
    "root user": lambda s: s["containers"][0]["securityContext"].update(runAsUser=0),
    "no seccomp": lambda s: s["securityContext"].pop("seccompProfile"),
    "added capability": lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
    "hostPort": lambda s: s["containers"][0].setdefault("ports", []).append({"containerPort": 80, "hostPort": 80}),
    "unsafe sysctl": lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
    "privileged": lambda s: s["containers"][0]["securityContext"].update(privileged=True),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_each_rule_can_fail(mutation):
    _, template = next((w, t) for w, t in TEMPLATES if "RayCluster" in w)
    broken = copy.deepcopy(template)
    MUTATIONS[mutation](broken["spec"])
    assert restricted_violations(broken), mutation
