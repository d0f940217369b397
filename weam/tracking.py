"""MLflow tracking shared by every stage.

One experiment per study; a parent run per condition; nested runs per stage (``mlflow.parentRunId``
tag). :class:`RunLogger` talks to MLflow through an explicit ``MlflowClient`` and run id (no global
active-run state, so stages in other processes can nest under a parent by id). If the tracking
server cannot be reached, logging never stops the work: each call is appended to a local JSONL
buffer and :meth:`RunLogger.replay` sends it later.

Tag names every stage sets (the report and the MLflow compare view read these):
``weam.study``, ``weam.condition``, ``weam.seed``, ``weam.stage`` (data|align|pretrain|eval|report),
``weam.objective``, ``weam.task``, ``weam.model``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from weam.config import StrictModel

TAG_STUDY = "weam.study"
TAG_CONDITION = "weam.condition"
TAG_SEED = "weam.seed"
TAG_STAGE = "weam.stage"
TAG_OBJECTIVE = "weam.objective"
TAG_TASK = "weam.task"
TAG_MODEL = "weam.model"
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_STORE_NAME = "mlflow.db"


class TrackingConfig(StrictModel):
    uri: str | None = None
    """MLflow tracking URI. None: a SQLite store ``mlflow.db`` in the work directory (no server
    needed). The CLI fills this from MLFLOW_TRACKING_URI when the config leaves it unset."""
    experiment: str = "weam"
    """MLflow experiment name (a study uses its own name)."""
    enabled: bool = True
    """Turn tracking off entirely (logging becomes a no-op)."""


def resolve_tracking_uri(uri: str | None, work_dir: str | Path) -> str:
    if uri:
        return uri
    store = Path(work_dir).resolve() / DEFAULT_STORE_NAME
    store.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store}"


def artifact_location_for(uri: str, experiment: str) -> str | None:
    """Artifacts of a SQLite store live beside it (MLflow would use ./mlruns of the current directory)."""
    if not uri.startswith("sqlite:///"):
        return None
    store = Path(uri.removeprefix("sqlite:///"))
    return (store.parent / "mlartifacts" / experiment).resolve().as_uri()


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping → ``a.b.c`` keys, the way MLflow params want them."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def sanitize_metric_name(name: str) -> str:
    """MLflow allows alphanumerics, ``_ - . / space``; other characters become ``_``."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in name)


class RunLogger:
    """One MLflow run; every call survives an unreachable server by buffering to ``buffer_path``."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        run_name: str,
        *,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        buffer_path: str | Path | None = None,
        run_id: str | None = None,
        enabled: bool = True,
    ):
        # Bounded retries: the mlflow default retries a dead server for minutes per call.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        self.uri = uri
        self.experiment = experiment
        self.run_name = run_name
        self.enabled = enabled
        self.buffer_path = Path(buffer_path) if buffer_path else None
        self.run_id = run_id
        self._client = None
        all_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        if enabled and run_id is None:
            self.run_id = self._call(self._create_run, all_tags)

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def _create_run(self, tags: dict[str, str]) -> str:
        experiment = self.client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            experiment_id = self.client.create_experiment(
                self.experiment,
                artifact_location=artifact_location_for(self.uri, self.experiment),
                # Opens on the runs table in the MLflow 3 UI rather than its GenAI overview.
                tags={"mlflow.experimentKind": "custom_model_development"},
            )
        run = self.client.create_run(experiment_id, run_name=self.run_name, tags=tags)
        return run.info.run_id

    def _call(self, fn, *args, kind: str | None = None, payload: Any = None):
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - any tracking failure must not stop the stage
            if self.buffer_path is None or kind is None:
                if kind is None and fn == self._create_run:
                    return None
                raise
            self._buffer(kind, payload, str(exc))
            return None

    def _buffer(self, kind: str, payload: Any, error: str) -> None:
        assert self.buffer_path is not None
        self.buffer_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.buffer_path, "a", encoding="utf-8") as handle:
            record = {"kind": kind, "payload": payload, "time": time.time(), "error": error}
            handle.write(json.dumps(record, default=str) + "\n")

    def log_params(self, params: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        flat = {k: str(v)[:6000] for k, v in flatten(params).items()}
        self._call(self._send_params, flat, kind="params", payload=flat)

    def _send_params(self, flat: dict[str, str]) -> None:
        from mlflow.entities import Param

        self._require_run()
        items = [Param(k, v) for k, v in flat.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if not self.enabled:
            return
        clean = {sanitize_metric_name(k): float(v) for k, v in metrics.items() if v is not None}
        payload = {"metrics": clean, "step": step, "timestamp": int(time.time() * 1000)}
        self._call(self._send_metrics, payload, kind="metrics", payload=payload)

    def _send_metrics(self, payload: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        self._require_run()
        step = payload["step"] or 0
        items = [Metric(k, v, payload["timestamp"], step) for k, v in payload["metrics"].items()]
        for start in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[start : start + 500])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {str(k): str(v) for k, v in tags.items()}
        self._call(self._send_tags, clean, kind="tags", payload=clean)

    def _send_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self._require_run()
        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if not self.enabled:
            return
        payload = {"path": str(path), "artifact_path": artifact_path}
        self._call(self._send_artifact, payload, kind="artifact", payload=payload)

    def _send_artifact(self, payload: dict[str, Any]) -> None:
        self._require_run()
        path = Path(payload["path"])
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), payload["artifact_path"])
        else:
            self.client.log_artifact(self.run_id, str(path), payload["artifact_path"])

    def end(self, status: str = "FINISHED") -> None:
        if not self.enabled or self.run_id is None:
            return
        self._call(self.client.set_terminated, self.run_id, status, kind="end", payload=status)

    def _require_run(self) -> None:
        if self.run_id is None:
            self.run_id = self._create_run({})

    def replay(self) -> int:
        """Send what was buffered while the server was unreachable; returns records sent."""
        if self.buffer_path is None or not self.buffer_path.is_file():
            return 0
        records = [json.loads(line) for line in self.buffer_path.read_text(encoding="utf-8").splitlines() if line]
        senders = {
            "params": self._send_params,
            "metrics": self._send_metrics,
            "tags": self._send_tags,
            "artifact": self._send_artifact,
            "end": lambda status: self.client.set_terminated(self.run_id, status),
        }
        for record in records:
            senders[record["kind"]](record["payload"])
        self.buffer_path.unlink()
        return len(records)

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.end("FAILED" if exc_type else "FINISHED")
