"""The PyTorchJob checked against the Kubeflow Training Operator's own published types: the
kubeflow-training SDK (PyPI, v1.9.4) is generated from the operator's OpenAPI spec, and its
models name every field (``attribute_map``), its type (``openapi_types``, down to the Kubernetes
client's V1PodTemplateSpec) and its required fields (their setters reject None). A field the
operator does not know, a value of the wrong type or a missing required field fails."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.deploy.manifests import all_documents

training_models = pytest.importorskip("kubeflow.training.models", reason="pip install kubeflow-training==1.9.4")
k8s_models = pytest.importorskip("kubernetes.client.models")

# Kubernetes quantities and similar fields are typed str in the generated client but accept YAML
# numbers (the API server reads them as int-or-string).
PRIMITIVES = {"str": (str, int, float), "int": (int,), "bool": (bool,), "float": (int, float),
              "object": (object,), "datetime": (str,), "date": (str,)}


def model_class(type_name: str):
    for module in (training_models, k8s_models):
        if hasattr(module, type_name):
            return getattr(module, type_name)
    return None


def type_errors(value: Any, type_name: str, path: str) -> list[str]:
    if type_name.startswith("list["):
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [e for i, item in enumerate(value) for e in type_errors(item, type_name[5:-1], f"{path}[{i}]")]
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping"]
        inner = type_name[type_name.index(",") + 1 : -1].strip()
        return [e for key, item in value.items() for e in type_errors(item, inner, f"{path}.{key}")]
    cls = model_class(type_name)
    if cls is None:
        allowed = PRIMITIVES[type_name]
        ok = isinstance(value, allowed) and not (type_name == "int" and isinstance(value, bool))
        return [] if ok else [f"{path}: expected {type_name}, got {value!r}"]
    if not isinstance(value, dict):
        return [f"{path}: expected {type_name} (a mapping)"]
    attribute = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    errors = [f"{path}.{key}: unknown field of {type_name}" for key in value if key not in attribute]
    for key, item in value.items():
        if key in attribute:
            errors.extend(type_errors(item, cls.openapi_types[attribute[key]], f"{path}.{key}"))
    try:
        cls(**{attribute[key]: item for key, item in value.items() if key in attribute})
    except ValueError as exc:  # a required field is missing (or an enum value is not allowed)
        errors.append(f"{path}: {exc}")
    return errors


JOBS = [doc for _, doc in all_documents() if doc["kind"] == "PyTorchJob"]


def test_there_is_a_pytorchjob():
    assert len(JOBS) == 1


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j["metadata"]["name"])
def test_pytorchjob_matches_the_operator_types(job):
    assert type_errors(job, "KubeflowOrgV1PyTorchJob", "PyTorchJob") == []


def test_sdk_check_rejects_a_broken_pytorchjob():
    job = copy.deepcopy(JOBS[0])
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["replica"] = 2  # misspelled field
    job["spec"]["runPolicy"]["backoffLimit"] = "three"  # wrong type
    del job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["name"]  # required
    errors = "\n".join(type_errors(job, "KubeflowOrgV1PyTorchJob", "PyTorchJob"))
    assert "Worker.replica: unknown field" in errors
    assert "backoffLimit: expected int" in errors
    assert "containers[0]: Invalid value for `name`" in errors
