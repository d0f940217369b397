"""Sending records to MLflow: one record (params, metrics, tags, artifacts, datasets, a model, an
end) to a run, and the replay of a buffer journal, idempotently: a run replayed twice is created once
(its buffer id is a tag), every record is sent once, parents are re-linked to their replayed ids."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from weam.core.tracking.journal import OFFLINE_PREFIX, Journal, find_buffer
from weam.core.tracking.store import _notify, _refused, _short, artifact_location_for, make_client
from weam.core.tracking.tags import PARENT_TAG, TAG_BUFFER_ID


def _experiment_id(client, uri: str, name: str, cache: dict[str, str]) -> str:
    if name not in cache:
        experiment = client.get_experiment_by_name(name)
        cache[name] = experiment.experiment_id if experiment is not None else client.create_experiment(
            name, artifact_location=artifact_location_for(uri, name),
            # Opens on the runs table in the MLflow 3 UI rather than its GenAI overview.
            tags={"mlflow.experimentKind": "custom_model_development"},
        )
    return cache[name]


def replay(journal: Journal | str | Path, uri: str, client=None, only_this_uri: bool = False) -> dict[str, int]:
    """Send the journal's pending records in order; returns counts. Idempotent: records already sent
    are skipped (``replayed.txt``), and an offline run already created on the server (tag
    ``weam.buffer_id``) is reused, so a replay cut short and repeated creates nothing twice."""
    journal = journal if isinstance(journal, Journal) else Journal(find_buffer(journal))
    client = client or make_client(uri)
    experiments: dict[str, str] = {}
    ids = journal.ids()
    counts = {"records": 0, "runs": 0}
    for record in journal.pending(uri if only_this_uri else None):
        op, run = record["op"], record["run"]
        if op == "create":
            eid = _experiment_id(client, uri, record["experiment"], experiments)
            existing = client.search_runs([eid], f"tags.`{TAG_BUFFER_ID}` = '{run}'", max_results=1)
            if existing:
                server_id = existing[0].info.run_id
            else:
                tags = dict(record["tags"])
                if tags.get(PARENT_TAG):
                    tags[PARENT_TAG] = ids.get(tags[PARENT_TAG], tags[PARENT_TAG])
                tags[TAG_BUFFER_ID] = run
                server_id = client.create_run(eid, run_name=record["name"], tags=tags,
                                              start_time=record.get("start_ms")).info.run_id
                counts["runs"] += 1
            journal.map_id(run, server_id)
            ids[run] = server_id
        else:
            target = ids.get(run, run)
            if target.startswith(OFFLINE_PREFIX):
                if only_this_uri:
                    continue  # its run was meant for another server: left for `weam tracking sync --uri`
                raise RuntimeError(f"{journal.path}: record {record['rec']} names run {run}, never created")
            try:
                _send(client, target, op, record, journal)
            except Exception as exc:
                if not _refused(exc):
                    raise
                _notify(f"MLflow refused a buffered {op} record for run {target}: {_short(exc)}")
        journal.mark_done(record["rec"])
        counts["records"] += 1
    return counts


def _send(client, run_id: str, op: str, record: dict[str, Any], journal: Journal) -> None:
    from mlflow.entities import Metric, Param, RunTag

    if op == "params":
        items = [Param(k, v) for k, v in record["params"].items()]
        for start in range(0, len(items), 100):
            client.log_batch(run_id, params=items[start : start + 100])
    elif op == "metrics":
        step = record.get("step") or 0
        items = [Metric(k, v, record["timestamp"], step) for k, v in record["metrics"].items()]
        for start in range(0, len(items), 500):
            client.log_batch(run_id, metrics=items[start : start + 500])
    elif op == "tags":
        tags = {k: (journal.resolve(v) if k == PARENT_TAG else v) for k, v in record["tags"].items()}
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    elif op == "artifact":
        path = journal.folder / record["copy"] if record.get("copy") else Path(record["path"])
        if path.is_dir():
            client.log_artifacts(run_id, str(path), record.get("artifact_path"))
        elif path.is_file():
            client.log_artifact(run_id, str(path), record.get("artifact_path"))
        if record.get("copy"):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    elif op == "inputs":
        from mlflow.entities import Dataset, DatasetInput, InputTag

        client.log_inputs(run_id, datasets=[
            DatasetInput(Dataset(d["name"], d["digest"], d.get("source_type", "local"), d["source"], None,
                                 d.get("profile")), [InputTag("mlflow.data.context", d.get("context", "train"))])
            for d in record["datasets"]])
    elif op == "model":
        _log_external_model(client, run_id, record)
    elif op == "status":
        client.update_run(run_id, status=record["status"])
    elif op == "end":
        client.set_terminated(run_id, record["status"], end_time=record.get("end_ms"))


def _log_external_model(client, run_id: str, record: dict[str, Any]) -> None:
    """A LoggedModel whose files stay where the stage wrote them (MLflow's external model: only a
    small MLmodel file goes to the store, the weights are not copied), made by and output of ``run_id``."""
    import tempfile

    from mlflow.entities import LoggedModelOutput
    from mlflow.models.model import MLMODEL_FILE_NAME
    from mlflow.models.utils import get_external_mlflow_model_spec
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_IS_EXTERNAL

    experiment_id = client.get_run(run_id).info.experiment_id
    model = client.create_logged_model(experiment_id, name=record["name"], source_run_id=run_id,
                                       tags={**record.get("tags", {}), MLFLOW_MODEL_IS_EXTERNAL: "true"},
                                       params=record.get("params") or None, model_type=record.get("model_type"))
    with tempfile.TemporaryDirectory() as tmp:
        get_external_mlflow_model_spec(model).save(str(Path(tmp) / MLMODEL_FILE_NAME))
        client.log_model_artifacts(model.model_id, tmp)
    client.finalize_logged_model(model.model_id, "READY")
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, record.get("step") or 0)])
