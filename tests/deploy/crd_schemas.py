"""Hand-written JSON schemas for the custom resources the manifests use.

WRITTEN FOR THIS PROJECT, NOT COPIED: no PyPI package ships the KubeRay CRDs, and the project
keeps no copies of third-party files, so these schemas restate, field by field, the published
CRDs' ``spec`` structure (names, types, required fields) for

- RayCluster / RayJob ``ray.io/v1``: ray-project/kuberay ray-operator/config/crd/bases
  (ray.io_rayclusters.yaml, ray.io_rayjobs.yaml; checked against master of 2026-08-19),
- PyTorchJob ``kubeflow.org/v1``: kubeflow/training-operator release-1.9
  manifests/base/crds/kubeflow.org_pytorchjobs.yaml,

plus the enums the operators' Go types accept (the CRDs leave them as plain strings). Unknown
keys are errors at every level written out here, as under ``kubectl apply`` with strict field
validation. Embedded pod templates are typed ``object`` here and validated separately against
the Kubernetes PodTemplateSpec schema (test_k8s_schema.py). With WEAM_CRD_DIR pointing to the
published CRD YAML files, test_k8s_schema.py also validates against their full openAPIV3Schema;
the PyTorchJob is also checked against the operator's generated SDK types (test_pytorchjob_sdk.py).
"""

from __future__ import annotations

from typing import Any

from tests.deploy.schema_parts import INT32, OBJECT, STRING_MAP, _closed  # noqa: F401 (re-exported)


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _closed(
        {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _closed(
                {
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "labels": STRING_MAP,
                    "annotations": STRING_MAP,
                },
                required=("name",),
            ),
            "spec": spec,
        },
        required=("apiVersion", "kind", "metadata", "spec"),
    )


_HEAD_GROUP = _closed(
    {
        "enableIngress": {"type": "boolean"},
        "headService": OBJECT,
        "ingressOptions": OBJECT,
        "labels": STRING_MAP,
        "rayStartParams": STRING_MAP,
        "resources": STRING_MAP,
        "serviceType": {"type": "string"},
        "template": OBJECT,
    },
    required=("template",),
)

_WORKER_GROUP = _closed(
    {
        "groupName": {"type": "string"},
        "idleTimeoutSeconds": INT32,
        "labels": STRING_MAP,
        "maxReplicas": INT32,
        "minReplicas": INT32,
        "numOfHosts": INT32,
        "priority": INT32,
        "rayStartParams": STRING_MAP,
        "replicas": INT32,
        "resources": STRING_MAP,
        "scaleStrategy": OBJECT,
        "suspend": {"type": "boolean"},
        "template": OBJECT,
    },
    required=("groupName", "maxReplicas", "minReplicas", "template"),
)

RAY_CLUSTER_SPEC = _closed(
    {
        "authOptions": OBJECT,
        "autoscalerOptions": OBJECT,
        "enableInTreeAutoscaling": {"type": "boolean"},
        "gcsFaultToleranceOptions": OBJECT,
        "headGroupSpec": _HEAD_GROUP,
        "headServiceAnnotations": STRING_MAP,
        "historyServerOptions": OBJECT,
        "managedBy": {"type": "string"},
        "networkPolicy": OBJECT,
        "rayVersion": {"type": "string"},
        "suspend": {"type": "boolean"},
        "tlsOptions": OBJECT,
        "upgradeStrategy": OBJECT,
        "workerGroupSpecs": {"type": "array", "items": _WORKER_GROUP},
    },
    required=("headGroupSpec",),
)

RAY_JOB_SPEC = _closed(
    {
        "activeDeadlineSeconds": INT32,
        "backoffLimit": INT32,
        "clusterSelector": STRING_MAP,
        "deletionStrategy": OBJECT,
        "entrypoint": {"type": "string"},
        "entrypointNumCpus": {"type": "number"},
        "entrypointNumGpus": {"type": "number"},
        "entrypointResources": {"type": "string"},
        "jobId": {"type": "string"},
        "managedBy": {"type": "string"},
        "metadata": STRING_MAP,
        "preRunningDeadlineSeconds": INT32,
        "rayClusterSpec": RAY_CLUSTER_SPEC,
        "runtimeEnvYAML": {"type": "string"},
        "shutdownAfterJobFinishes": {"type": "boolean"},
        "submissionMode": {"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"]},
        "submitterConfig": OBJECT,
        "submitterPodTemplate": OBJECT,
        "suspend": {"type": "boolean"},
        "ttlSecondsAfterFinished": INT32,
    },
    # The operator rejects a RayJob with neither a cluster to create nor one to select.
    required=("entrypoint",),
)

_REPLICA_SPEC = _closed(
    {
        "replicas": INT32,
        "restartPolicy": {"enum": ["Always", "OnFailure", "Never", "ExitCode"]},
        "template": OBJECT,
    },
    required=("template",),
)

PYTORCH_JOB_SPEC = _closed(
    {
        "elasticPolicy": OBJECT,
        "nprocPerNode": {"type": "string", "pattern": r"^(auto|cpu|gpu|[1-9][0-9]*)$"},
        "pytorchReplicaSpecs": {
            "type": "object",
            "propertyNames": {"enum": ["Master", "Worker"]},
            "additionalProperties": _REPLICA_SPEC,
            "required": ["Master"],
        },
        "runPolicy": _closed(
            {
                "activeDeadlineSeconds": {"type": "integer"},
                "backoffLimit": INT32,
                "cleanPodPolicy": {"enum": ["All", "Running", "None"]},
                "managedBy": {"type": "string"},
                "schedulingPolicy": OBJECT,
                "suspend": {"type": "boolean"},
                "ttlSecondsAfterFinished": INT32,
            }
        ),
    },
    required=("pytorchReplicaSpecs",),
)

SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("ray.io/v1", "RayCluster"): _resource("ray.io/v1", "RayCluster", RAY_CLUSTER_SPEC),
    ("ray.io/v1", "RayJob"): _resource(
        "ray.io/v1",
        "RayJob",
        {**RAY_JOB_SPEC, "anyOf": [{"required": ["clusterSelector"]}, {"required": ["rayClusterSpec"]}]},
    ),
    ("kubeflow.org/v1", "PyTorchJob"): _resource("kubeflow.org/v1", "PyTorchJob", PYTORCH_JOB_SPEC),
}

# Where each kind keeps its pod templates (paths through the resource; "*" = every item/value).
POD_TEMPLATE_PATHS: dict[str, list[tuple[str, ...]]] = {
    "RayCluster": [
        ("spec", "headGroupSpec", "template"),
        ("spec", "workerGroupSpecs", "*", "template"),
    ],
    "RayJob": [
        ("spec", "submitterPodTemplate"),
        ("spec", "rayClusterSpec", "headGroupSpec", "template"),
        ("spec", "rayClusterSpec", "workerGroupSpecs", "*", "template"),
    ],
    "PyTorchJob": [("spec", "pytorchReplicaSpecs", "*", "template")],
    "Job": [("spec", "template")],
    "Deployment": [("spec", "template")],
    "StatefulSet": [("spec", "template")],
}

# Kubeflow Trainer v2 (TrainJob, ClusterTrainingRuntime) joins the registry: tests/deploy/trainer_schemas.py.
from tests.deploy import trainer_schemas as _trainer  # noqa: E402

SCHEMAS.update(_trainer.SCHEMAS)
POD_TEMPLATE_PATHS.update(_trainer.POD_TEMPLATE_PATHS)
