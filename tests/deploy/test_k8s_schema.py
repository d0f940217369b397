"""Every manifest validates offline: core resources against the Kubernetes OpenAPI schema in
strict mode (kubernetes-validate), custom resources against crd_schemas.py (hand-written from
the published CRDs) with their pod templates against the core PodTemplateSpec schema, and, when
WEAM_CRD_DIR names a folder of published CRD YAML files, against those CRDs' full schemas."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.crd_schemas import SCHEMAS
from tests.deploy.manifests import K8S_VERSIONS, ROOT, all_documents, containers, pod_templates, resource_id

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate==1.37.0")
jsonschema = pytest.importorskip("jsonschema")

DOCS = all_documents()
CORE = [(p, d) for p, d in DOCS if (d["apiVersion"], d["kind"]) not in SCHEMAS]
CUSTOM = [(p, d) for p, d in DOCS if (d["apiVersion"], d["kind"]) in SCHEMAS]
GPU = "nvidia.com/gpu"


def ids(items):
    return [f"{p.parent.name}/{p.name}:{resource_id(d)}" for p, d in items]


def validate_core(doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def validate_custom(doc: dict[str, Any], version: str) -> None:
    jsonschema.validate(doc, SCHEMAS[(doc["apiVersion"], doc["kind"])])
    for template in pod_templates(doc):
        wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "check"}, "template": template}
        kubernetes_validate.validate(wrapper, version, strict=True)


def check_gpu_limits(doc: dict[str, Any]) -> None:
    """A GPU request needs an equal limit (Kubernetes requires it; the schema cannot say so)."""
    for template in pod_templates(doc):
        for container in containers(template):
            resources = container.get("resources", {})
            requested = resources.get("requests", {}).get(GPU)
            if requested is not None:
                limit = resources.get("limits", {}).get(GPU)
                assert limit == requested, f"{resource_id(doc)}:{container['name']}: {GPU} limit {limit} != request {requested}"


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("path", "doc"), CORE, ids=ids(CORE))
def test_core_resource_validates_strictly(path, doc, version):
    validate_core(doc, version)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("path", "doc"), CUSTOM, ids=ids(CUSTOM))
def test_custom_resource_validates(path, doc, version):
    validate_custom(doc, version)


def test_every_kind_is_checked():
    kinds = {d["kind"] for _, d in CUSTOM}
    assert kinds == {"RayCluster", "RayJob", "PyTorchJob", "TrainJob", "ClusterTrainingRuntime"}
    assert {d["kind"] for _, d in CORE} >= {"Job", "Service", "ConfigMap", "PersistentVolumeClaim", "NetworkPolicy"}


@pytest.mark.parametrize(("path", "doc"), DOCS, ids=ids(DOCS))
def test_gpu_requests_have_limits(path, doc):
    check_gpu_limits(doc)


def test_training_pods_request_gpus_and_shared_memory():
    for path, doc in DOCS:
        if doc["kind"] not in ("Job", "PyTorchJob"):
            continue
        for template in pod_templates(doc):
            (trainer,) = template["spec"]["containers"]
            assert GPU in trainer["resources"]["limits"], f"{path.name}: no GPU limit"
            shm = [m for m in trainer["volumeMounts"] if m["mountPath"] == "/dev/shm"]
            volumes = {v["name"]: v for v in template["spec"]["volumes"]}
            assert shm and volumes[shm[0]["name"]]["emptyDir"]["medium"] == "Memory", f"{path.name}: /dev/shm"


def check_indexed_job(docs: list[dict[str, Any]]) -> None:
    """NNODES = completions = parallelism, GPUS = the GPU limit, MASTER_ADDR = pod 0 via the headless Service."""
    (job,) = [d for d in docs if d["kind"] == "Job"]
    spec = job["spec"]
    (trainer,) = spec["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in trainer["env"]}
    assert spec["completionMode"] == "Indexed"
    assert int(env["NNODES"]) == spec["completions"] == spec["parallelism"]
    assert int(env["GPUS"]) == trainer["resources"]["limits"][GPU] == trainer["resources"]["requests"][GPU]
    service = spec["template"]["spec"]["subdomain"]
    assert env["MASTER_ADDR"] == f"{job['metadata']['name']}-0.{service}"
    assert any(d["kind"] == "Service" and d["metadata"]["name"] == service and d["spec"]["clusterIP"] == "None"
               for d in docs)


def test_indexed_job_matches_its_torchrun_arguments():
    check_indexed_job([d for p, d in DOCS if p.name == "pretrain.yaml"])


# The sizes deploy/README.md documents are kustomize overlays, checked in test_kustomize.py.


# --- each check can fail ----------------------------------------------------------------------

def _first(kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(d for _, d in DOCS if d["kind"] == kind))


def test_wrong_field_in_core_resource_is_rejected():
    job = _first("Job")
    job["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_core(job, K8S_VERSIONS[0])


def test_wrong_field_in_custom_resource_is_rejected():
    cluster = _first("RayCluster")
    cluster["spec"]["workerGroupSpecs"][0]["maxReplica"] = 4
    with pytest.raises(jsonschema.ValidationError, match="maxReplica"):
        validate_custom(cluster, K8S_VERSIONS[0])


def test_wrong_field_in_embedded_pod_template_is_rejected():
    job = _first("PyTorchJob")
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_custom(job, K8S_VERSIONS[0])


def test_missing_gpu_limit_is_rejected():
    job = _first("Job")
    del job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][GPU]
    with pytest.raises(AssertionError, match="limit None"):
        check_gpu_limits(job)


# --- the published CRDs themselves, when available --------------------------------------------

def _strict(schema: Any) -> Any:
    """A CRD schema as `kubectl apply` with strict field validation reads it: unknown fields fail."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: _strict(value) for key, value in schema.items()}
    if (schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        schema["additionalProperties"] = False
    return schema


@functools.cache
def published_crd_schemas(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            for version in doc["spec"]["versions"]:
                key = (f"{doc['spec']['group']}/{version['name']}", doc["spec"]["names"]["kind"])
                schemas[key] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


@pytest.mark.skipif(
    not os.environ.get("WEAM_CRD_DIR"),
    reason="set WEAM_CRD_DIR to a folder with ray.io_rayclusters.yaml, ray.io_rayjobs.yaml and "
    "kubeflow.org_pytorchjobs.yaml (from KubeRay / training-operator releases) for the full-CRD check; "
    "the hand-written schemas in crd_schemas.py are checked regardless",
)
@pytest.mark.parametrize(("path", "doc"), CUSTOM, ids=ids(CUSTOM))
def test_custom_resource_validates_against_published_crd(path, doc):
    schemas = published_crd_schemas(Path(os.environ["WEAM_CRD_DIR"]))
    key = (doc["apiVersion"], doc["kind"])
    assert key in schemas, f"no CRD for {key} in $WEAM_CRD_DIR"
    jsonschema.validate(doc, schemas[key])
