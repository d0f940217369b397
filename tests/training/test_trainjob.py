"""A multi-node pre-training step launched by the study's Ray driver as a Kubeflow Trainer TrainJob
(weam/training/trainjob.py), against a fake Kubernetes API (no cluster here): the exact body
created, the wait on its status conditions with progress lines, failures, an earlier submission's
TrainJob adopted or replaced, and the driver failing that step only."""

from __future__ import annotations

import os
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

from tests.weam.test_study_ray import STUDY, CONFIGS
from weam.core.errors import WeamError
from weam.core.manifest import Verdict
from weam.stages import Tracking
from weam.study.plan import load_study
from weam.training import trainjob
from weam.training.config import PretrainConfig
from weam.training.trainjob import TrainJobLauncher, job_name, render, template

PRETRAIN = "checkpoint: {every: 2}, data: {max_seq_len: 32}}"
MULTI_NODE = "checkpoint: {every: 2}, data: {max_seq_len: 32}, parallel: {nodes: 2, gpus_per_node: 4}}"


class ApiException(Exception):
    def __init__(self, status: int, reason: str = ""):
        super().__init__(f"({status}) {reason}")
        self.status, self.reason = status, reason


class FakeCustomObjects:
    """kubernetes.client.CustomObjectsApi's four calls the launcher makes, over a dict of objects;
    ``script[name]`` is the list of statuses successive reads return (the last one repeats)."""

    def __init__(self, script=None, existing=None, after_create=None):
        self.script = {name: list(states) for name, states in (script or {}).items()}
        self.after_create = dict(after_create or {})
        """name → the statuses a TrainJob created anew (an ended one replaced) goes through."""
        self.objects = dict(existing or {})
        self.calls: list[tuple] = []

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.calls.append(("create", group, version, namespace, plural, body["metadata"]["name"]))
        if body["metadata"]["name"] in self.objects:
            raise ApiException(409, "AlreadyExists")
        self.objects[body["metadata"]["name"]] = {**body, "status": {}}
        if body["metadata"]["name"] in self.after_create:
            self.script[body["metadata"]["name"]] = self.after_create.pop(body["metadata"]["name"])
        return body

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.calls.append(("get", group, version, namespace, plural, name))
        if name not in self.objects:
            raise ApiException(404, "NotFound")
        states = self.script.get(name)
        if states:
            self.objects[name]["status"] = states.pop(0) if len(states) > 1 else states[0]
        return self.objects[name]

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name, body=None):
        self.calls.append(("delete", group, version, namespace, plural, name))
        self.objects.pop(name)


def held(*types_, jobs=None):
    status = {"conditions": [{"type": t, "status": "True", "reason": r, "message": m} for t, r, m in types_]}
    if jobs:
        status["jobsStatus"] = jobs
    return status


CREATED = ("Created", "JobsCreationSucceeded", "Succeeded to create Jobs")
COMPLETE = ("Complete", "JobsCompleted", "done")


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    text = STUDY.format(work=folder / "work", configs=CONFIGS)
    assert text.count(PRETRAIN) == 1
    text = text.replace(PRETRAIN, MULTI_NODE) + "tracking: {enabled: false}\n"
    (folder / "study.yaml").write_text(text, encoding="utf-8")
    return {step.key: step for step in load_study(folder / "study.yaml")[1]}


def launcher_for(step, api, **kwargs):
    sleeps: list[float] = []  # the fake clock: 15 s a sleep
    launcher = TrainJobLauncher(step, api=api, namespace="weam", poll_seconds=15, report_every=60,
                                sleep=sleeps.append, clock=lambda: 15 * len(sleeps), **kwargs)
    return launcher, sleeps


def test_the_stage_objects_launch_only_multi_process_runs(planned):
    from weam.study.ray_run import step_launcher

    launchers = {key: step_launcher(step) for key, step in planned.items()}
    assert {key for key, launcher in launchers.items() if launcher} == {
        "pretrain/diverse/s1/seed0", "pretrain/single/s1/seed0"}  # the base keeps its 1 x 1 settings
    assert launchers["pretrain/diverse/s1/seed0"].describe() == (
        f"TrainJob weam/{job_name(planned['pretrain/diverse/s1/seed0'])} (2 node(s) x 4 GPU)")


def test_the_trainjob_created_is_the_template_filled_from_the_step(planned, tmp_path):
    step = planned["pretrain/diverse/s1/seed0"]
    name = job_name(step)
    assert re.fullmatch(r"weam-pretrain-diverse-s1-seed0-[0-9a-f]{10}", name)
    api = FakeCustomObjects({name: [held(CREATED), held(CREATED, COMPLETE)]})
    launcher, _ = launcher_for(step, api)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("weam.stages.verdict", lambda s: Verdict("done", ""))
        launcher.run(Tracking(None, "tiny-ray", True, "parent-run-123", {"weam.study": "tiny-ray"}), echo=lambda _: None)
    config_file = step.work_dir / ".trainjobs" / f"{name}.yaml"
    created = api.objects[name]
    created.pop("status")
    assert created == {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {
            "name": name, "namespace": "weam",
            "labels": {"app.kubernetes.io/name": "weam-pretrain-trainjob", "app.kubernetes.io/part-of": "weam",
                       "weam.dev/step": "pretrain.diverse.s1.seed0"},
            "annotations": {"weam.dev/step-key": "pretrain/diverse/s1/seed0"},
        },
        "spec": {
            "runtimeRef": {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime", "name": "weam-deepspeed"},
            "trainer": {
                "numNodes": 2, "numProcPerNode": 4,
                "resourcesPerNode": {"requests": {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": 4},
                                     "limits": {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": 4}},
                "args": ["-m", "weam.cli", "pretrain", "run", "--config", str(config_file)],
                "env": [{"name": "WEAM_PARENT_RUN_ID", "value": "parent-run-123"}],
            },
        },
    }
    assert [c[0] for c in api.calls] == ["create", "get", "get"]
    assert api.calls[0][1:5] == ("trainer.kubeflow.org", "v1alpha1", "weam", "trainjobs")
    # The ranks read the step's own config, with the study's MLflow run name, tags and experiment.
    written = PretrainConfig.model_validate(yaml.safe_load(config_file.read_text(encoding="utf-8")))
    assert written.fingerprint_config() == step.config.fingerprint_config()
    assert written.out_dir == step.config.out_dir
    assert written.logging.run_name == "pretrain/weam/diverse.s1/seed0"
    assert written.logging.tracking.experiment == "tiny-ray"
    assert {"weam.study": "tiny-ray", "weam.condition": "diverse", "weam.seed": "0"}.items() <= written.logging.tags.items()


def test_the_rendered_trainjob_passes_the_trainjob_schema(planned, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from tests.deploy.trainer_schemas import SCHEMAS

    body = render(planned["pretrain/single/s1/seed0"], tmp_path / "c.yaml", "p", template(), "weam")
    jsonschema.validate(body, SCHEMAS[("trainer.kubeflow.org/v1alpha1", "TrainJob")])
    body["metadata"]["name"] = "Weam_bad"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, SCHEMAS[("trainer.kubeflow.org/v1alpha1", "TrainJob")])


@pytest.mark.skipif(not os.environ.get("WEAM_CRD_DIR"),
                    reason="set WEAM_CRD_DIR to a folder with kubeflow/trainer's published trainer.kubeflow.org_trainjobs.yaml")
def test_the_rendered_trainjob_passes_the_published_crd(planned, tmp_path):
    import jsonschema

    from tests.deploy.test_k8s_schema import published_crd_schemas

    schemas = published_crd_schemas(Path(os.environ["WEAM_CRD_DIR"]))
    key = ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    assert key in schemas, "no TrainJob CRD in $WEAM_CRD_DIR"
    body = render(planned["pretrain/single/s1/seed0"], tmp_path / "c.yaml", "p", template(), "weam")
    jsonschema.validate(body, schemas[key])
    body["spec"]["trainer"]["numNode"] = 2  # a misspelt field is refused
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, schemas[key])


def test_the_driver_polls_with_progress_lines_until_complete_then_reads_the_manifest(planned):
    step = planned["pretrain/single/s1/seed0"]
    name = job_name(step)
    running = held(CREATED, jobs=[{"name": "node", "active": 2, "succeeded": 0, "failed": 0}])
    api = FakeCustomObjects({name: [{}, held(CREATED), running, running, running, running, running, running,
                                    held(CREATED, COMPLETE)]})
    launcher, sleeps = launcher_for(step, api)
    lines: list[str] = []
    # Complete, but no manifest in the step's folder: the step is not taken as done.
    with pytest.raises(WeamError, match="completed, but the step's manifest .* is not done"):
        launcher.run(Tracking(enabled=False), echo=lines.append)
    assert [c[0] for c in api.calls] == ["create"] + ["get"] * 9
    assert sleeps == [15] * 8
    assert lines == [
        f"pretrain/single/s1/seed0: created TrainJob weam/{name}",
        f"pretrain/single/s1/seed0: TrainJob weam/{name}: pending (0 s)",
        f"pretrain/single/s1/seed0: TrainJob weam/{name}: Created (15 s)",
        f"pretrain/single/s1/seed0: TrainJob weam/{name}: Created; node: 2 active, 0 succeeded, 0 failed (30 s)",
        # unchanged: again after report_every (60 s)
        f"pretrain/single/s1/seed0: TrainJob weam/{name}: Created; node: 2 active, 0 succeeded, 0 failed (90 s)",
        f"pretrain/single/s1/seed0: TrainJob weam/{name} complete after 120 s",
    ]


def test_a_failed_trainjob_fails_the_step_with_its_reason(planned):
    step = planned["pretrain/single/s1/seed0"]
    name = job_name(step)
    api = FakeCustomObjects({name: [held(CREATED), held(CREATED, ("Failed", "JobsFailed", "node-0 exited 1"))]})
    launcher, _ = launcher_for(step, api)
    with pytest.raises(WeamError, match=f"TrainJob weam/{name} failed: JobsFailed: node-0 exited 1"):
        launcher.run(Tracking(enabled=False), echo=lambda _: None)
    api = FakeCustomObjects()
    api.create_namespaced_custom_object = lambda *a: (_ for _ in ()).throw(ApiException(403, "Forbidden"))
    launcher, _ = launcher_for(step, api)
    with pytest.raises(WeamError, match="could not create TrainJob .*: HTTP 403 Forbidden"):
        launcher.run(Tracking(enabled=False), echo=lambda _: None)


def test_an_earlier_submissions_trainjob_is_waited_for_or_replaced(planned):
    step = planned["pretrain/single/s1/seed0"]
    name = job_name(step)
    lines: list[str] = []
    # still running: adopted, not created twice
    api = FakeCustomObjects({name: [held(CREATED), held(CREATED, COMPLETE)]}, existing={name: {"metadata": {}}})
    launcher, _ = launcher_for(step, api)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("weam.stages.verdict", lambda s: Verdict("done", ""))
        launcher.run(Tracking(enabled=False), echo=lines.append)
    assert [c[0] for c in api.calls] == ["create", "get", "get"]
    assert "is already running (an earlier submission); waiting for it" in lines[0]
    # ended (the step is not done, or the driver would have skipped it): deleted, then created again
    api = FakeCustomObjects({name: [held(("Failed", "JobsFailed", "x"))]}, existing={name: {"metadata": {}}},
                            after_create={name: [held(CREATED, COMPLETE)]})
    launcher, _ = launcher_for(step, api)
    lines.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("weam.stages.verdict", lambda s: Verdict("done", ""))
        launcher.run(Tracking(enabled=False), echo=lines.append)
    assert [c[0] for c in api.calls] == ["create", "get", "delete", "get", "create", "get"]
    assert "of an earlier submission has ended (Failed); replacing it" in lines[0]
    assert lines[1] == f"pretrain/single/s1/seed0: created TrainJob weam/{name}"


def test_the_ray_driver_fails_only_the_step_whose_trainjob_failed(planned, monkeypatch):
    """Both pre-training runs are TrainJobs (everything else done): diverse completes, single
    fails; the study ends with single's error, its evaluation and the report are not started and
    nothing is submitted to Ray."""
    from weam.study import ray_run
    from weam.study.ray_run import RayStudyRunner

    steps = list(planned.values())
    names = {job_name(planned[k]): k for k in ("pretrain/diverse/s1/seed0", "pretrain/single/s1/seed0")}
    failing = job_name(planned["pretrain/single/s1/seed0"])
    api = FakeCustomObjects({name: [held(CREATED), held(CREATED, ("Failed", "JobsFailed", "OOM")) if name == failing
                                    else held(CREATED, COMPLETE)] for name in names})
    diverse = job_name(planned["pretrain/diverse/s1/seed0"])

    def fake_verdict(step):  # a pre-training step is done once its TrainJob has completed
        if step.key.startswith("pretrain/"):
            done = trainjob.condition(api.objects.get(job_name(step), {}), "Complete") is not None
        else:
            done = step.key not in ("eval/single/s1/seed0", "report")
        return Verdict("done" if done else "missing", "")

    fake_ray = types.ModuleType("ray")
    fake_ray.nodes = lambda: [{"Alive": True, "Resources": {"CPU": 2.0, "GPU": 1.0}}]

    class NoTask:
        def options(self, **_):
            pytest.fail("no step should become a Ray task")

    fake_ray.remote = lambda **_: (lambda fn: NoTask())
    monkeypatch.setitem(sys.modules, "ray", fake_ray)
    monkeypatch.setattr(ray_run, "verdict", fake_verdict)
    monkeypatch.setattr("weam.stages.verdict", fake_verdict)
    monkeypatch.setattr(trainjob, "kubernetes_api", lambda: api)
    monkeypatch.setattr(trainjob, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(ray_run, "POLL_SECONDS", 0.01)
    study = load_study(steps[0].work_dir.parent / "study.yaml")[0]
    lines: list[str] = []
    runner = RayStudyRunner(study, steps, echo=lines.append)
    with pytest.raises(WeamError, match=r"1 step\(s\) failed on the Ray cluster: pretrain/single/s1/seed0: TrainJob weam/\S+ failed: JobsFailed: OOM .*; "
                                        r"not started, downstream of them: eval/single/s1/seed0, report"):
        runner.run()
    states = {key: record["state"] for key, record in runner.records.items()}
    assert states["pretrain/diverse/s1/seed0"] == "done" and states["pretrain/single/s1/seed0"] == "failed"
    assert states["eval/single/s1/seed0"] == states["report"] == "blocked"
    assert states["eval/diverse/s1/seed0"] == "skipped"
    assert sum(c[0] == "create" for c in api.calls) == 2
    assert [line.split("] ", 1)[1].split("  · ")[0] for line in lines if "] pretrain/diverse" in line] == [
        f"pretrain/diverse/s1/seed0: launched as TrainJob weam/{diverse} (2 node(s) x 4 GPU)",
        f"pretrain/diverse/s1/seed0: done in " + next(
            line.split("done in ")[1].split(" s ")[0] for line in lines if "diverse/s1/seed0: done" in line)
        + f" s (TrainJob weam/{diverse} (2 node(s) x 4 GPU))"]
    assert f"pretrain/diverse/s1/seed0: created TrainJob weam/{diverse}" in lines
