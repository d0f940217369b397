"""The kustomize overlays (deploy/kustomize/): each renders offline with ``kubectl kustomize``, pins every
weam image by digest, and its output passes the same strict checks as k8s/ (core resources against the
Kubernetes schema, custom resources against crd_schemas.py/trainer_schemas.py and, with WEAM_CRD_DIR, the
published CRDs). The Kubeflow Trainer v2 variant is checked for what its controller relies on."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.crd_schemas import SCHEMAS
from tests.deploy.manifests import K8S_VERSIONS, ROOT, _walk, all_documents, containers, pod_templates, resource_id
from tests.deploy.trainer_schemas import JOB_TEMPLATE_PATHS

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate==1.37.0")
jsonschema = pytest.importorskip("jsonschema")

from tests.deploy.test_k8s_schema import (  # noqa: E402  (after the importorskips, as that module needs them)
    GPU, check_indexed_job, published_crd_schemas, validate_core, validate_custom)

OVERLAYS_DIR = ROOT / "deploy" / "kustomize"
OVERLAYS = sorted(p.parent.name for p in OVERLAYS_DIR.glob("*/kustomization.yaml") if p.parent.name != "components")
OUR_IMAGES = ("registry.example.org/weam/weam", "registry.example.org/weam/mlflow")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def kustomize_command() -> list[str]:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    pytest.skip("neither kubectl nor kustomize is installed (apt-get install kubectl, or the kustomize binary)")


def render(folder: Path) -> list[dict[str, Any]]:
    result = subprocess.run([*kustomize_command(), str(folder)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{folder}: {result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


RENDERED: dict[str, list[dict[str, Any]]] = {}


def rendered(overlay: str) -> list[dict[str, Any]]:
    if overlay not in RENDERED:
        RENDERED[overlay] = render(OVERLAYS_DIR / overlay)
    return copy.deepcopy(RENDERED[overlay])


def images(docs: list[dict[str, Any]]) -> list[str]:
    return [c["image"] for doc in docs for t in pod_templates(doc) for c in containers(t)]


def test_every_overlay_is_listed():
    assert OVERLAYS == ["mlflow", "pretrain", "pretrain-4x8", "pretrain-smoke", "ray", "study", "study-4x8", "study-smoke",
                        "trainjob", "trainjob-smoke"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_strictly(overlay):
    docs = rendered(overlay)
    assert docs, overlay
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        for version in K8S_VERSIONS:
            validate_custom(doc, version) if key in SCHEMAS else validate_core(doc, version)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_pins_our_images_by_digest(overlay):
    found = [image for image in images(rendered(overlay)) if image.startswith(OUR_IMAGES)]
    assert found, f"{overlay}: runs none of our images"
    assert all(DIGEST.search(image) for image in found), found


def test_overlays_keep_every_resource_of_their_base():
    """An overlay changes fields, never drops or adds resources (same ids as the base files)."""
    bases = {"pretrain": "pretrain.yaml", "trainjob": "trainer", "mlflow": "mlflow", "ray": "ray", "study": "study",
             "study-smoke": "study", "study-4x8": "study"}
    for overlay, base in bases.items():
        path = ROOT / "k8s" / base
        base_docs = [d for p, d in all_documents(path if path.is_dir() else ROOT / "k8s")
                     if path.is_dir() or p == path]
        assert sorted(map(resource_id, rendered(overlay))) == sorted(map(resource_id, base_docs)), overlay


@pytest.mark.parametrize(("overlay", "nodes", "gpus"),
                         [("pretrain", 2, 8), ("pretrain-smoke", 1, 1), ("pretrain-4x8", 4, 8)])
def test_indexed_job_overlays_are_consistent_sizes(overlay, nodes, gpus):
    docs = rendered(overlay)
    check_indexed_job(docs)
    (job,) = [d for d in docs if d["kind"] == "Job"]
    (trainer,) = job["spec"]["template"]["spec"]["containers"]
    assert job["spec"]["completions"] == nodes and trainer["resources"]["limits"][GPU] == gpus


# --- The study's RayJob ------------------------------------------------------------------------------------

def check_study_job(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The study's RayJob: the driver runs `weam study run … --ray-address auto` on a head that takes no
    task; the `gpu` group asks for as many GPUs as it limits (Ray reads the limit as the node's GPU count)
    and the `cpu` group for none."""
    (job,) = [d for d in docs if d["kind"] == "RayJob"]
    spec = job["spec"]
    assert spec["entrypoint"].startswith("weam study run ") and "--ray-address auto" in spec["entrypoint"]
    cluster = spec["rayClusterSpec"]
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    assert list(groups) == ["cpu", "gpu"]  # the overlays patch them by index
    sizes = {}
    for name, group in groups.items():
        (worker,) = group["template"]["spec"]["containers"]
        resources = worker["resources"]
        assert resources["requests"].get(GPU) == resources["limits"].get(GPU), name
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], name
        sizes[name] = (group["replicas"], resources["limits"].get(GPU, 0))
    assert sizes["cpu"][1] == 0 and sizes["gpu"][1] >= 1
    return {"nodes": sizes["gpu"][0], "gpus": sizes["gpu"][1], "cpu_workers": sizes["cpu"][0]}


@pytest.mark.parametrize(("overlay", "nodes", "gpus", "cpu_workers"),
                         [("study", 2, 8, 2), ("study-smoke", 1, 1, 1), ("study-4x8", 4, 8, 4)])
def test_study_overlays_size_the_gpu_group(overlay, nodes, gpus, cpu_workers):
    found = check_study_job(rendered(overlay))
    assert (found["nodes"], found["gpus"], found["cpu_workers"]) == (nodes, gpus, cpu_workers)


@pytest.mark.skipif(not os.environ.get("WEAM_CRD_DIR"),
                    reason="set WEAM_CRD_DIR to a folder with KubeRay's published ray.io_rayjobs.yaml "
                           "(ray-operator/config/crd/bases) for the full-CRD check of the rendered study overlays")
@pytest.mark.parametrize("overlay", ["study", "study-smoke", "study-4x8"])
def test_rendered_study_job_validates_against_the_published_crd(overlay):
    schemas = published_crd_schemas(Path(os.environ["WEAM_CRD_DIR"]))
    (job,) = [d for d in rendered(overlay) if d["kind"] == "RayJob"]
    assert ("ray.io/v1", "RayJob") in schemas, "no RayJob CRD in $WEAM_CRD_DIR"
    jsonschema.validate(job, schemas[("ray.io/v1", "RayJob")])


def test_study_checks_catch_a_gpu_request_without_its_limit():
    docs = rendered("study-smoke")
    (job,) = [d for d in docs if d["kind"] == "RayJob"]
    job["spec"]["rayClusterSpec"]["workerGroupSpecs"][1]["template"]["spec"]["containers"][0]["resources"][
        "requests"][GPU] = 2
    with pytest.raises(AssertionError):
        check_study_job(docs)


# --- Kubeflow Trainer v2 ----------------------------------------------------------------------------------

def check_train_job(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the Trainer controller relies on: the runtime exists, its trainer is the container `node` of
    the replicated Job `node` marked as the trainer step, and the sizes agree with the GPUs asked for."""
    (job,) = [d for d in docs if d["kind"] == "TrainJob"]
    ref = job["spec"]["runtimeRef"]
    (runtime,) = [d for d in docs if d["kind"] == ref.get("kind", "ClusterTrainingRuntime")
                  and d["metadata"]["name"] == ref["name"]]
    replicated = {r["name"]: r for r in runtime["spec"]["template"]["spec"]["replicatedJobs"]}
    node = replicated["node"]
    assert node["template"]["metadata"]["labels"]["trainer.kubeflow.org/trainjob-ancestor-step"] == "trainer"
    (trainer,) = [c for c in node["template"]["spec"]["template"]["spec"]["containers"] if c["name"] == "node"]
    assert "torch" in runtime["spec"]["mlPolicy"]
    # torchrun takes its sizes from the PET_* variables the torch policy sets; flags would override them
    assert trainer["command"] == ["torchrun"] and not any(a.startswith(("--nnodes", "--nproc", "--node_rank",
                                                                        "--master")) for a in trainer["args"])
    spec = job["spec"]["trainer"]
    resources = spec["resourcesPerNode"]
    assert spec["numProcPerNode"] == resources["limits"][GPU] == resources["requests"][GPU]
    assert spec["numNodes"] >= 1
    return {"nodes": spec["numNodes"], "gpus": spec["numProcPerNode"], "runtime": runtime}


@pytest.mark.parametrize(("overlay", "nodes", "gpus"), [("trainjob", 2, 8), ("trainjob-smoke", 1, 1)])
def test_train_job_overlays_are_consistent(overlay, nodes, gpus):
    found = check_train_job(rendered(overlay))
    assert (found["nodes"], found["gpus"]) == (nodes, gpus)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_runtime_replicated_jobs_are_valid_batch_jobs(version):
    (runtime,) = [d for d in rendered("trainjob") if d["kind"] == "ClusterTrainingRuntime"]
    templates = [t for path in JOB_TEMPLATE_PATHS["ClusterTrainingRuntime"] for t in _walk(runtime, path)]
    assert templates
    for template in templates:
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "check"}, "spec": template["spec"]}
        kubernetes_validate.validate(job, version, strict=True)


def _first(kind: str) -> dict[str, Any]:
    return next(d for d in rendered("trainjob") if d["kind"] == kind)


@pytest.mark.parametrize(("kind", "breaks"), [
    ("TrainJob", lambda d: d["spec"]["trainer"].update(numNode=2)),                 # misspelt field
    ("TrainJob", lambda d: d["spec"]["trainer"].update(numProcPerNode=0)),          # CEL: >= 1
    ("TrainJob", lambda d: d["metadata"].update(name="Weam_Pretrain")),             # CEL: RFC 1035 label
    ("TrainJob", lambda d: d["spec"].pop("runtimeRef")),                            # required
    ("ClusterTrainingRuntime", lambda d: d["spec"]["mlPolicy"].update(mpi={})),     # CEL: one policy only
    ("ClusterTrainingRuntime", lambda d: d["metadata"].update(namespace="weam")),   # cluster-scoped
    ("ClusterTrainingRuntime", lambda d: d["spec"]["template"]["spec"]["replicatedJobs"][0].update(replica=2)),
])
def test_schema_rejects_broken_trainer_resources(kind, breaks):
    doc = _first(kind)
    breaks(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMAS[(doc["apiVersion"], doc["kind"])])


def test_wrong_field_in_runtime_pod_template_is_rejected():
    doc = _first("ClusterTrainingRuntime")
    (template,) = pod_templates(doc)
    template["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_custom(doc, K8S_VERSIONS[0])


def test_train_job_checks_catch_a_size_mismatch():
    docs = rendered("trainjob")
    next(d for d in docs if d["kind"] == "TrainJob")["spec"]["trainer"]["numProcPerNode"] = 4
    with pytest.raises(AssertionError):
        check_train_job(docs)


@pytest.mark.skipif(not os.environ.get("WEAM_CRD_DIR"),
                    reason="set WEAM_CRD_DIR to a folder with the published CRD YAML files (kubeflow/trainer "
                           "manifests/base/crds) for the full-CRD check of the rendered TrainJob overlays")
@pytest.mark.parametrize("overlay", ["trainjob", "trainjob-smoke"])
def test_rendered_trainer_resources_validate_against_published_crds(overlay):
    schemas = published_crd_schemas(Path(os.environ["WEAM_CRD_DIR"]))
    checked = 0
    for doc in rendered(overlay):
        key = (doc["apiVersion"], doc["kind"])
        if key[0].startswith("trainer.kubeflow.org/"):
            assert key in schemas, f"no CRD for {key} in $WEAM_CRD_DIR"
            jsonschema.validate(doc, schemas[key])
            checked += 1
    assert checked == 2


def test_readme_applies_existing_overlays_and_pins_without_sed():
    text = (ROOT / "deploy" / "README.md").read_text()
    named = set(re.findall(r"kubectl apply -k deploy/kustomize/([\w/-]+)", text))
    assert named == {*OVERLAYS, "local/pytorchjob"}, named  # the PyTorchJob's overlay is made by the user
    assert "pin()" not in text and "| pin" not in text


def test_readme_local_pytorchjob_overlay_renders(tmp_path):
    """The README's recipe for pinning the (deprecated) PyTorchJob, run in a copy of the folders."""
    text = (ROOT / "deploy" / "README.md").read_text()
    recipe = re.search(r"^(mkdir -p deploy/kustomize/local/pytorchjob.*?kustomization\.yaml)$", text, re.M | re.S)
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "k8s", work / "k8s")
    shutil.copytree(OVERLAYS_DIR / "components", work / "deploy" / "kustomize" / "components")
    subprocess.run(["bash", "-c", recipe.group(1)], cwd=work, check=True)
    docs = render(work / "deploy" / "kustomize" / "local" / "pytorchjob")
    found = [image for image in images(docs) if image.startswith(OUR_IMAGES)]
    assert found and all(DIGEST.search(image) for image in found)
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        validate_custom(doc, K8S_VERSIONS[0]) if key in SCHEMAS else validate_core(doc, K8S_VERSIONS[0])
