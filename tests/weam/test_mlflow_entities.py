"""MLflow as its users read it: the corpora a run reads are its Datasets, the model it exports is a
LoggedModel it made (its Models column), online and through the offline buffer alike."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.tracking import MlflowClient

from weam.core import tracking
from weam.core.manifest import file_sha256, recorded_digest, write_manifest
from weam.core.mlflow_local import closed_port_uri
from weam.core.tracking import RunLogger, model_name, replay, resolve_tracking_uri


def _log(run: RunLogger, model_dir: Path) -> None:
    run.log_datasets([{"name": "en-de", "digest": "0123abcd4567ef89", "source": json.dumps({"uri": "file:///data"}),
                       "profile": json.dumps({"num_rows": 12})}])
    run.log_model(model_dir, params={"objective": "weam", "steps": 3}, model_type="encoder")


def _check(uri: str, experiment: str, run_name: str, model_dir: Path) -> None:
    client = MlflowClient(uri)
    eid = client.get_experiment_by_name(experiment).experiment_id
    (run,) = client.search_runs([eid], f"attributes.run_name = '{run_name}'")
    (dataset,) = run.inputs.dataset_inputs
    assert (dataset.dataset.name, dataset.dataset.digest) == ("en-de", "0123abcd4567ef89")
    assert json.loads(dataset.dataset.profile) == {"num_rows": 12}
    assert [(t.key, t.value) for t in dataset.tags] == [("mlflow.data.context", "train")]
    (model,) = client.search_logged_models(experiment_ids=[eid])
    assert model.name == "pretrain-weam-diverse-s1-seed0" and model.source_run_id == run.info.run_id
    assert str(model.status) in ("READY", "LoggedModelStatus.READY") and model.model_type == "encoder"
    assert model.tags["weam.model_dir"] == str(model_dir.resolve()) and model.tags["mlflow.model.isExternal"] == "true"
    assert model.params == {"objective": "weam", "steps": "3"}
    assert [o.model_id for o in run.outputs.model_outputs] == [model.model_id]
    # External: the store holds the MLmodel file only, never a copy of the weights.
    assert [a.path for a in client.list_logged_model_artifacts(model.model_id)] == ["MLmodel"]


def test_a_run_logs_its_corpora_as_datasets_and_its_model_as_a_logged_model(tmp_path):
    uri, model_dir = resolve_tracking_uri(None, tmp_path), tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.safetensors").write_bytes(b"weights")
    with RunLogger(uri, "entities", "pretrain/weam/diverse.s1/seed0", system_metrics=False) as run:
        _log(run, model_dir)
    _check(uri, "entities", "pretrain/weam/diverse.s1/seed0", model_dir)


def test_datasets_and_models_wait_in_the_buffer_and_replay_once(tmp_path):
    tracking._Server.forget()
    buffer, model_dir = tmp_path / "buffer", tmp_path / "model"
    model_dir.mkdir()
    with RunLogger(closed_port_uri(), "entities", "pretrain/weam/diverse.s1/seed0", buffer_dir=buffer,
                   system_metrics=False) as run:
        _log(run, model_dir)
    tracking._Server.forget()
    store = resolve_tracking_uri(None, tmp_path / "store")
    replay(buffer, store)
    assert replay(buffer, store) == {"records": 0, "runs": 0}
    _check(store, "entities", "pretrain/weam/diverse.s1/seed0", model_dir)


def test_a_digest_is_the_one_the_writing_stage_recorded(tmp_path):
    folder = tmp_path / "en-de"
    folder.mkdir()
    (folder / "train.en").write_text("a house\n", encoding="utf-8")
    write_manifest(folder, "data", {}, {}, {"src": "train.en"})
    recorded = json.loads((folder / "manifest.json").read_text())["outputs"]["src"]["sha256"]
    assert recorded_digest(folder / "train.en") == recorded == file_sha256(folder / "train.en")
    (folder / "train.en").write_text("a changed house\n", encoding="utf-8")  # changed since: hashed anew
    assert recorded_digest(folder / "train.en") == file_sha256(folder / "train.en") != recorded
    (tmp_path / "unrecorded.txt").write_text("x", encoding="utf-8")  # no manifest beside it
    assert recorded_digest(tmp_path / "unrecorded.txt") == file_sha256(tmp_path / "unrecorded.txt")


def test_model_names_are_run_names_mlflow_accepts():
    assert model_name("pretrain/weam/diverse.s1/seed0") == "pretrain-weam-diverse-s1-seed0"
    assert model_name("base/mlm/seed0") == "base-mlm-seed0"
