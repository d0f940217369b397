"""Reading the deployment manifests: documents, pod templates, containers, mounted ConfigMaps and
the ``weam`` commands they run. Shared by the tests in this folder."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.crd_schemas import POD_TEMPLATE_PATHS

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "k8s"
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "deploy" / "mlflow" / "Dockerfile"]
# deploy/ray/ belongs to the alignment stage and is linted there.
YAML_PATHS = [ROOT / "k8s", ROOT / "deploy" / "mlflow", ROOT / ".yamllint", ROOT / ".hadolint.yaml", ROOT / ".checkov.yaml"]
# Kubernetes releases the manifests must validate against: oldest supported (Indexed Jobs with
# backoffLimitPerIndex and podReplacementPolicy are GA from 1.34 on) and the newest schema known.
K8S_VERSIONS = ("1.34.0", "1.37.0")
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def manifest_files(folder: Path = K8S_DIR) -> list[Path]:
    # kustomization.yaml files are kustomize's inputs, not resources (test_kustomize.py renders them)
    return sorted(p for p in folder.rglob("*.yaml") if p.name != "kustomization.yaml")


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def all_documents(folder: Path = K8S_DIR) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in manifest_files(folder) for doc in load_documents(path)]


def resource_id(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def _walk(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if not path:
        yield node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
        for child in children:
            yield from _walk(child, rest)
    elif isinstance(node, dict) and head in node:
        yield from _walk(node[head], rest)


def pod_templates(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pod template (metadata + spec) a workload or custom resource carries."""
    found = []
    for path in POD_TEMPLATE_PATHS.get(doc.get("kind", ""), []):
        found.extend(t for t in _walk(doc, path) if isinstance(t, dict))
    return found


def containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    spec = template.get("spec", {})
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def config_map_data(folder: Path = K8S_DIR) -> dict[str, dict[str, str]]:
    """ConfigMap name → data, over every manifest."""
    return {
        doc["metadata"]["name"]: doc.get("data", {})
        for _, doc in all_documents(folder)
        if doc.get("kind") == "ConfigMap"
    }


def mounted_files(template: dict[str, Any], maps: dict[str, dict[str, str]]) -> dict[str, str]:
    """In-container path → text of every ConfigMap key a pod template mounts."""
    volumes = {v["name"]: v for v in template.get("spec", {}).get("volumes", [])}
    files = {}
    for container in containers(template):
        for mount in container.get("volumeMounts", []):
            source = volumes.get(mount["name"], {}).get("configMap")
            if source is None:
                continue
            for key, text in maps.get(source["name"], {}).items():
                files[f"{mount['mountPath'].rstrip('/')}/{key}"] = text
    return files


def expand_vars(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command/args (unknown references stay as written)."""
    return VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def literal_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def declared_env(container: dict[str, Any]) -> set[str]:
    return {e["name"] for e in container.get("env", [])}


@dataclass
class WeamCommand:
    """One ``weam …`` invocation found in a manifest: its argv after ``weam``, and the files the
    pods that run it see (ConfigMap mounts)."""

    source: str
    argv: list[str]
    files: dict[str, str] = field(default_factory=dict)


def weam_argv(tokens: list[str]) -> list[str] | None:
    """The weam argv inside a command line: ``weam …``, ``python -m weam.cli …``, ``torchrun … -m weam.cli …``."""
    for i, token in enumerate(tokens):
        if Path(token).name == "weam":
            return tokens[i + 1 :]
        if token == "-m" and i + 1 < len(tokens) and tokens[i + 1] in ("weam", "weam.cli"):
            return tokens[i + 2 :]
    return None


def weam_commands(folder: Path = K8S_DIR) -> list[WeamCommand]:
    maps = config_map_data(folder)
    docs = all_documents(folder)
    # A RayJob's entrypoint runs on the head of the cluster it selects (or creates).
    ray_heads = {
        doc["metadata"]["name"]: doc["spec"]["headGroupSpec"]["template"]
        for _, doc in docs
        if doc.get("kind") == "RayCluster"
    }
    found = []
    for path, doc in docs:
        where = f"{path.relative_to(ROOT)}:{resource_id(doc)}"
        for template in pod_templates(doc):
            for container in containers(template):
                tokens = [*container.get("command", []), *container.get("args", [])]
                tokens = [expand_vars(t, literal_env(container)) for t in tokens]
                argv = weam_argv(tokens)
                if argv is not None:
                    found.append(WeamCommand(f"{where}:{container['name']}", argv, mounted_files(template, maps)))
        if doc.get("kind") == "RayJob":
            spec = doc["spec"]
            head = spec.get("rayClusterSpec", {}).get("headGroupSpec", {}).get("template")
            if head is None:
                name = spec.get("clusterSelector", {}).get("ray.io/cluster")
                head = ray_heads.get(name, {})
            argv = weam_argv(shlex.split(spec["entrypoint"]))
            if argv is not None:
                found.append(WeamCommand(f"{where}:entrypoint", argv, mounted_files(head, maps)))
    return found
