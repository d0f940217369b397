"""Hand-written JSON schemas for Kubeflow Trainer v2's ``TrainJob`` and ``ClusterTrainingRuntime``
(``trainer.kubeflow.org/v1alpha1``), in the manner of crd_schemas.py.

WRITTEN FOR THIS PROJECT, NOT COPIED: they restate, field by field, the ``spec`` structure (names,
types, required fields, enums, bounds and the CEL rules that can be said in JSON schema) of the
published CRDs in kubeflow/trainer at v2.3.0 (commit 8c0f505, 2026-08-21),
``manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml`` and
``trainer.kubeflow.org_clustertrainingruntimes.yaml``. Unknown keys are errors at every level
written out, as under ``kubectl apply`` with strict field validation. The JobSet template's
replicated Jobs are typed ``object`` here and validated as ``batch/v1`` Jobs against the Kubernetes
schema (test_trainer.py), their pod templates as PodTemplateSpecs (test_k8s_schema.py). With
WEAM_CRD_DIR pointing to the published CRD files, test_k8s_schema.py also checks their full schemas.
"""

from __future__ import annotations

from typing import Any

from tests.deploy.schema_parts import INT32, OBJECT, STRING_MAP, _closed  # noqa: F401 (re-exported)


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    metadata = _closed({"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": STRING_MAP,
                        "annotations": STRING_MAP}, required=("name",))
    return _closed({"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": metadata,
                    "spec": spec}, required=("apiVersion", "kind", "metadata", "spec"))

GROUP_VERSION = "trainer.kubeflow.org/v1alpha1"
DNS_LABEL = {"type": "string", "pattern": r"^[a-z]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
"""TrainJob's CEL rules: metadata.name is an RFC 1035 label of at most 63 characters."""
QUANTITY = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
QUANTITY_MAP = {"type": "object", "additionalProperties": QUANTITY}
STRINGS = {"type": "array", "items": {"type": "string"}, "maxItems": 128}

_RESOURCES = _closed({
    "claims": {"type": "array", "items": _closed({"name": {"type": "string"}, "request": {"type": "string"}},
                                                 required=("name",))},
    "limits": QUANTITY_MAP,
    "requests": QUANTITY_MAP,
})

TRAIN_JOB_SPEC = _closed(
    {
        "activeDeadlineSeconds": {"type": "integer", "minimum": 1},
        "initializer": _closed({"dataset": OBJECT, "model": OBJECT}),
        "managedBy": {"enum": ["trainer.kubeflow.org/trainjob-controller", "kueue.x-k8s.io/multikueue"]},
        "runtimePatches": {"type": "array", "items": _closed(
            {"manager": {"type": "string"}, "time": {"type": "string"}, "trainingRuntimeSpec": OBJECT})},
        "runtimeRef": _closed(
            {
                "apiGroup": {"type": "string", "maxLength": 253},
                # The controller resolves these two kinds (pkg/runtime); the CRD leaves it a string.
                "kind": {"enum": ["ClusterTrainingRuntime", "TrainingRuntime"]},
                "name": {"type": "string", "minLength": 1, "maxLength": 253},
            },
            required=("name",),
        ),
        "suspend": {"type": "boolean"},
        "trainer": _closed(
            {
                "args": STRINGS,
                "command": STRINGS,
                "env": {"type": "array", "items": _closed(
                    {"name": {"type": "string"}, "value": {"type": "string"}, "valueFrom": OBJECT},
                    required=("name",))},
                "image": {"type": "string", "maxLength": 500},
                "numNodes": {**INT32, "minimum": 0},
                "numProcPerNode": {**INT32, "minimum": 1},
                "resourcesPerNode": _RESOURCES,
            }
        ),
    },
    required=("runtimeRef",),
)

_TEMPLATE_METADATA = _closed({
    "annotations": STRING_MAP, "finalizers": STRINGS, "labels": STRING_MAP,
    "name": {"type": "string"}, "namespace": {"type": "string"},
})

_REPLICATED_JOB = _closed(
    {
        "dependsOn": {"type": "array", "items": _closed(
            {"name": {"type": "string"}, "status": {"enum": ["Ready", "Complete"]}}, required=("name", "status"))},
        "groupName": {"type": "string"},
        "name": {"type": "string"},
        "replicas": INT32,
        "template": _closed({"metadata": _TEMPLATE_METADATA, "spec": OBJECT}),
    },
    required=("name", "template"),
)

_JOB_SET_SPEC = _closed({
    "coordinator": OBJECT,
    "failurePolicy": _closed({
        "maxRestarts": INT32,
        "restartStrategy": {"enum": ["Recreate", "BlockingRecreate", "InPlaceRestart"]},
        "rules": {"type": "array", "items": OBJECT},
    }),
    "managedBy": {"type": "string"},
    "network": _closed({"enableDNSHostnames": {"type": "boolean"}, "publishNotReadyAddresses": {"type": "boolean"},
                        "subdomain": {"type": "string"}}),
    "replicatedJobs": {"type": "array", "items": _REPLICATED_JOB},
    "startupPolicy": OBJECT,
    "successPolicy": _closed({"operator": {"enum": ["All", "Any"]},
                              "targetReplicatedJobs": {"type": "array", "items": {"type": "string"}}}),
    "suspend": {"type": "boolean"},
    "ttlSecondsAfterFinished": INT32,
    "volumeClaimPolicies": {"type": "array", "items": OBJECT},
})

_ML_POLICY = {
    **_closed({
        "flux": OBJECT,
        "jax": OBJECT,
        "mpi": _closed({"mpiImplementation": {"enum": ["OpenMPI", ""]}, "numProcPerNode": INT32,
                        "runLauncherAsNode": {"type": "boolean"}, "sshAuthMountPath": {"type": "string"}}),
        "numNodes": INT32,
        "torch": _closed({"envInjection": OBJECT}),
        "xgboost": OBJECT,
    }),
    # CEL: "Only one of the policy can be configured"
    "not": {"anyOf": [{"required": [a, b]} for i, a in enumerate(("torch", "mpi", "jax", "xgboost", "flux"))
                      for b in ("torch", "mpi", "jax", "xgboost", "flux")[i + 1:]]},
}

CLUSTER_TRAINING_RUNTIME_SPEC = _closed({
    "mlPolicy": _ML_POLICY,
    "podGroupPolicy": _closed({"coscheduling": OBJECT, "volcano": OBJECT}),
    "template": _closed({"metadata": _TEMPLATE_METADATA, "spec": _JOB_SET_SPEC}),
})


def _train_job() -> dict[str, Any]:
    schema = _resource(GROUP_VERSION, "TrainJob", TRAIN_JOB_SPEC)
    schema["properties"]["metadata"]["properties"]["name"] = DNS_LABEL
    return schema


def _cluster_runtime() -> dict[str, Any]:
    schema = _resource(GROUP_VERSION, "ClusterTrainingRuntime", CLUSTER_TRAINING_RUNTIME_SPEC)
    del schema["properties"]["metadata"]["properties"]["namespace"]  # cluster-scoped
    return schema


SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    (GROUP_VERSION, "TrainJob"): _train_job(),
    (GROUP_VERSION, "ClusterTrainingRuntime"): _cluster_runtime(),
}

JOB_TEMPLATE_PATHS: dict[str, list[tuple[str, ...]]] = {
    "ClusterTrainingRuntime": [("spec", "template", "spec", "replicatedJobs", "*", "template")],
}
"""Where a runtime keeps its batch/v1 JobTemplateSpecs."""

POD_TEMPLATE_PATHS: dict[str, list[tuple[str, ...]]] = {
    "ClusterTrainingRuntime": [("spec", "template", "spec", "replicatedJobs", "*", "template", "spec", "template")],
}
