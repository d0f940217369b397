"""MLflow tracking shared by every stage: one path, whether the server answers or not.

One experiment per study; a parent run per condition; nested runs per stage (``mlflow.parentRunId``
tag). :class:`RunLogger` talks to MLflow through an explicit ``MlflowClient`` and run id (no global
active-run state, so stages in other processes can nest under a parent by id).

A tracking server that is down, or refuses the credentials, never stops the work. The first run a
process opens against a server probes it once (one request, a few seconds at most, no retries);
when it does not answer, that is said once on stderr and everything — run names, tags, parents,
params, metrics, artifacts (copied), end status — goes to a journal in a buffer directory
(``tracking-buffer/`` in the work directory). ``weam tracking sync`` and the next process that
reaches the server replay it, idempotently: a run replayed twice is created once (its buffer id is
a tag), every record is sent once, parents are re-linked to their replayed ids.

Every run ends FINISHED, FAILED or KILLED: ``with RunLogger(...) as run:`` ends FINISHED on success,
FAILED on an exception, KILLED on Ctrl-C or SIGTERM; a run killed with -9 (its recorded PID on its
host no longer alive) is marked KILLED by the next run of the same name. :class:`ParentRuns` ends
a study's condition runs with the outcome of the stages under them.

Tag names every stage sets (the report and the MLflow compare view read these):
``weam.study``, ``weam.condition``, ``weam.seed``, ``weam.stage`` (data|align|pretrain|eval|report),
``weam.objective``, ``weam.task``, ``weam.model``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlparse

from pydantic import Field

from weam.core.config import StrictModel
from weam.core.secrets import redact, strip_credentials

TAG_STUDY = "weam.study"
TAG_CONDITION = "weam.condition"
TAG_SEED = "weam.seed"
TAG_STAGE = "weam.stage"
TAG_OBJECTIVE = "weam.objective"
TAG_TASK = "weam.task"
TAG_MODEL = "weam.model"
TAG_PID = "weam.pid"
TAG_HOST = "weam.host"
TAG_PID_START = "weam.pid_start"
TAG_BUFFER_ID = "weam.buffer_id"
TAG_FINETUNE_SEED = "weam.finetune_seed"
"""Fine-tuning seed of an eval run; ``weam.seed`` is always the pre-training seed."""
TAG_EVAL_SEED = "weam.eval_seed"
"""The same fine-tuning seed under the name the report's MLflow reader groups by."""
TAG_ROLE = "weam.role"
TAG_FAMILIES = "weam.families"
TAG_LANGUAGE_SET = "weam.language_set"
"""MLflow tag of a pre-training or eval run: the id of its condition's language set (``s1``, …)."""
TAG_LANGUAGES = "weam.languages"
"""MLflow tag: the comma-separated languages of a run's set."""
TAG_N_FAMILIES = "weam.n_families"
TAG_STAGE_CONFIG = "weam.stage_config"
"""Dotted path of the stage's config class (``weam study reproduce`` loads config/<stage>.yaml with it)."""
TAG_REPRODUCES = "weam.reproduces"
TAG_GIT_COMMIT = "weam.git_commit"
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_STORE_NAME = "mlflow.db"
BUFFER_DIR_NAME = "tracking-buffer"
OFFLINE_PREFIX = "offline-"
PROBE_TIMEOUT_S = 3.0
RECHECK_S = 120.0
"""While offline, a new run re-probes the server at most this often (and replays once it is back)."""
END_STATUSES = ("FINISHED", "FAILED", "KILLED")


class TrackingConfig(StrictModel):
    uri: str | None = None
    """MLflow tracking URI. None: a SQLite store ``mlflow.db`` in the work directory (no server
    needed). The CLI fills this from MLFLOW_TRACKING_URI when the config leaves it unset."""
    experiment: str = "weam"
    """MLflow experiment name (a study uses its own name)."""
    enabled: bool = True
    """Turn tracking off entirely (logging becomes a no-op)."""
    buffer_dir: Path | None = None
    """Where runs are kept while the server is unreachable (``weam tracking sync`` replays them, as
    does the next run that reaches the server). None: ``tracking-buffer/`` in the stage's output
    directory; a study sets its work directory's."""
    system_metrics: bool = True
    """Log MLflow's system metrics (``system/cpu_utilization_percentage``, memory, disk, network;
    GPU when pynvml finds one) on every stage run."""
    system_metrics_interval: float = Field(10.0, gt=0)
    """Seconds between system-metric samples."""


def run_name(stage: str, condition: str | None = None, seed: int | None = None, objective: str | None = None,
             task: str | None = None, pair: str | None = None) -> str:
    """A run name a person can read: ``pretrain/weam/single/seed2``, ``eval/tatoeba/diverse/seed0``,
    ``align/en-fi``, ``base/mlm/seed0`` (stage, objective, task, pair, condition, seed; None left out)."""
    parts = [stage, objective, task, pair, condition, None if seed is None else f"seed{seed}"]
    return "/".join(str(part) for part in parts if part not in (None, ""))


def sqlite_uri(path: str | Path) -> str:
    """The URI of a SQLite store file (``sqlite:////abs/path`` for an absolute path)."""
    return f"sqlite:///{Path(path)}"


def store_uri(folder: str | Path) -> str:
    """The URI of the SQLite store ``<folder>/mlflow.db`` (no server needed)."""
    return sqlite_uri(Path(folder) / DEFAULT_STORE_NAME)


def resolve_tracking_uri(uri: str | None, work_dir: str | Path) -> str:
    if uri:
        return uri
    folder = Path(work_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return store_uri(folder)


def artifact_location_for(uri: str, experiment: str) -> str | None:
    """Artifacts of a SQLite store live beside it (MLflow would use ./mlruns of the current directory)."""
    if not uri.startswith("sqlite:///"):
        return None
    store = Path(uri.removeprefix("sqlite:///"))
    return (store.parent / "mlartifacts" / experiment).resolve().as_uri()


STORE_LOCK_WAIT_S = 600.0
"""How long a process waits for another one creating or migrating the same SQLite store."""


def sqlite_store_lock(uri: str):
    """For a SQLite store, a file lock (``<store>.lock``) around the first connection: MLflow
    creates and migrates the tables on connecting, and two processes doing it at once fail
    (``_alembic_tmp_experiments already exists``). Other stores: nothing to hold."""
    from weam.core.lock import exclusive

    if not uri.startswith("sqlite:///"):
        return contextlib.nullcontext()
    store = Path(uri.removeprefix("sqlite:///"))
    return exclusive(store.with_name(store.name + ".lock"), f"MLflow store {store}", wait_seconds=STORE_LOCK_WAIT_S)


def reroot_artifacts(uri: str) -> int:
    """Point a SQLite store's artifact locations (``<folder>/mlartifacts/…``, what
    :func:`artifact_location_for` gives) at the folder the store is in now: a moved or copied work
    directory logs its artifacts beside its own store, not into the original. Returns the
    experiments re-rooted (their runs follow)."""
    import sqlite3

    if not uri.startswith("sqlite:///"):
        return 0
    store = Path(uri.removeprefix("sqlite:///"))
    if not store.is_file():
        return 0
    here = store.parent.resolve().as_uri() + "/mlartifacts/"
    moved = 0
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
        if "experiments" not in tables:
            return 0
        rows = db.execute("select experiment_id, artifact_location from experiments").fetchall()
        for experiment_id, location in rows:
            if not location or not location.startswith("file://") or "/mlartifacts/" not in location:
                continue
            old = location[: location.index("/mlartifacts/") + len("/mlartifacts/")]
            if old == here:
                continue
            db.execute("update experiments set artifact_location = ? where experiment_id = ?",
                       (here + location[len(old):], experiment_id))
            if "runs" in tables:
                db.execute("update runs set artifact_uri = ? || substr(artifact_uri, ?) "
                           "where experiment_id = ? and substr(artifact_uri, 1, ?) = ?",
                           (here, len(old) + 1, experiment_id, len(old), old))
            moved += 1
    return moved


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


def primary_metric_name(task: str, metric: str) -> str:
    """The one name under which every eval run logs the study's primary endpoint: the mean of
    ``<task>/<metric>`` over the held-out targets (``primary/tatoeba_accuracy_heldout``), the same
    group for the base model and for every condition, so the UI's chart compares like with like."""
    return f"primary/{task}_{metric}_heldout"


def sanitize_metric_name(name: str) -> str:
    """MLflow allows alphanumerics, ``_ - . / space``; other characters become ``_``."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in name)


def is_remote(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def _short(exc: BaseException) -> str:
    """The reason a request failed, in a few words (urllib3's messages run over several lines)."""
    text = " ".join(str(exc).split())
    for needle, reason in (("Connection refused", "connection refused"), ("timed out", "no answer in time"),
                           ("Name or service not known", "unknown host"), ("Temporary failure in name", "unknown host"),
                           ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted")):
        if needle in text:
            return reason
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


_REFUSED = {"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST", "BAD_REQUEST",
            "INVALID_STATE"}


def _refused(exc: BaseException) -> bool:
    """The server (or store) answered and rejected the call (a param logged again with another
    value, say): going offline or buffering it cannot help."""
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) and exc.error_code in _REFUSED


def _notify(message: str) -> None:
    print(f"tracking: {redact(message)}", file=sys.stderr, flush=True)


def probe(uri: str, timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """One bounded request (no retries): is the server there and does it take our credentials?"""
    if not is_remote(uri):
        return True, "local store"
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        response = http_request(get_default_host_creds(uri), "/api/2.0/mlflow/experiments/search", "POST",
                                max_retries=0, backoff_factor=0, timeout=timeout, raise_on_status=False,
                                json={"max_results": 1})
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"; the reason is shown
        return False, redact(f"cannot reach the MLflow server {uri} ({_short(exc)})")
    if response.status_code in (401, 403):
        return False, (f"the MLflow server {redact(uri)} refused the credentials (HTTP {response.status_code}); check "
                       "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)")
    if response.status_code >= 400:
        return False, redact(f"the MLflow server {uri} answered HTTP {response.status_code}: {response.text[:200]}")
    return True, "reachable"


class _Server:
    """What this process knows about one tracking URI: online or not, said once."""

    _all: dict[str, _Server] = {}
    _lock = threading.Lock()

    def __init__(self, uri: str):
        self.uri = uri
        self.online: bool | None = None
        self.checked = 0.0
        self.reason = ""
        self._client = None

    @classmethod
    def get(cls, uri: str) -> _Server:
        with cls._lock:
            return cls._all.setdefault(uri, cls(uri))

    @classmethod
    def forget(cls) -> None:
        """Drop what this process learnt (tests; a long-lived process that wants a fresh probe)."""
        with cls._lock:
            cls._all.clear()

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            # MLflow's defaults retry a dead server for minutes per call (7 retries, backoff 2);
            # a server that dies mid-run costs one call a few seconds here, then the buffer takes
            # over. Its "View run at" lines cost a get_run per ended run. The user's settings win.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
            with sqlite_store_lock(self.uri):
                reroot_artifacts(self.uri)
                self._client = MlflowClient(tracking_uri=self.uri)  # creates and migrates the tables
        return self._client

    def check(self, journal: Journal | None) -> bool:
        """Probe once (and again every RECHECK_S while offline); replay ``journal`` when online."""
        due = self.online is None or (not self.online and time.monotonic() - self.checked > RECHECK_S)
        if due:
            ok, reason = probe(self.uri)
            self.checked = time.monotonic()
            if not ok:
                self.went_offline(reason, journal)
                return False
            if self.online is False:
                _notify(f"the MLflow server {self.uri} answers again")
            self.online = True
        if self.online and journal is not None and journal.pending(self.uri):
            try:
                result = replay(journal, self.uri, client=self.client, only_this_uri=True)
            except Exception as exc:  # noqa: BLE001 - replay is retried by the next run or `weam tracking sync`
                self.went_offline(f"replaying {journal.folder} failed ({_short(exc)})", journal)
                return False
            _notify(f"replayed {result['records']} buffered records ({result['runs']} runs) from {journal.folder} "
                    f"to {self.uri}")
        return bool(self.online)

    def went_offline(self, reason: str, journal: Journal | None) -> None:
        if self.online is not False:
            where = journal.folder if journal is not None else "nowhere (no buffer directory)"
            # The suggested command names the server without credentials: sync takes them from the
            # environment (MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME/PASSWORD or ~/.mlflow/credentials).
            _notify(f"{reason}; the work goes on and its runs are buffered in {where}; send them with "
                    f"`weam tracking sync --buffer {where} --uri {strip_credentials(self.uri)}` (the next run "
                    "that reaches the server also does)")
        self.online, self.reason, self.checked = False, reason, time.monotonic()


# ---------------------------------------------------------------------------------------------
# The journal: what happened while offline (and an index of runs, for lookups while offline)


class Journal:
    """A buffer directory: ``journal.jsonl`` (append-only records), ``replayed.txt`` (record ids
    sent), ``ids.jsonl`` (offline run id → server run id), ``artifacts/`` (copies to upload).

    Records with ``replay: true`` are sent by :func:`replay`; the others index runs created while
    online (their name, tags and end), so a process that cannot reach the server still finds them."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / "journal.jsonl"
        self._lock = threading.Lock()

    def append(self, op: str, run: str | None, replay_it: bool, uri: str, **fields: Any) -> dict[str, Any]:
        # The server without its credentials (sync reads them from the environment again), and no
        # password anywhere else in the record either (a tag or param holding a URI).
        record = {"rec": uuid.uuid4().hex, "op": op, "run": run, "replay": replay_it, "uri": strip_credentials(uri),
                  "time": time.time(), **fields}
        line = redact(json.dumps(record, default=str)) + "\n"
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            # One write() of one line with O_APPEND: concurrent writers do not interleave records.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        return record

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash mid-write: the rest of the journal still counts
        return out

    def done(self) -> set[str]:
        file = self.folder / "replayed.txt"
        return set(file.read_text(encoding="utf-8").split()) if file.is_file() else set()

    def mark_done(self, rec: str) -> None:
        with open(self.folder / "replayed.txt", "a", encoding="utf-8") as handle:
            handle.write(rec + "\n")

    def ids(self) -> dict[str, str]:
        file = self.folder / "ids.jsonl"
        if not file.is_file():
            return {}
        pairs = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        return {pair["offline"]: pair["server"] for pair in pairs}

    def map_id(self, offline: str, server: str) -> None:
        with open(self.folder / "ids.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"offline": offline, "server": server}) + "\n")

    def resolve(self, run_id: str | None) -> str | None:
        if run_id and run_id.startswith(OFFLINE_PREFIX):
            return self.ids().get(run_id, run_id)
        return run_id

    def pending(self, uri: str | None = None) -> list[dict[str, Any]]:
        """Records not sent yet (only those meant for ``uri`` when given)."""
        done = self.done()
        return [r for r in self.records()
                if r.get("replay") and r["rec"] not in done
                and (uri is None or strip_credentials(r.get("uri")) == strip_credentials(uri))]

    def runs(self, experiment: str) -> list[SimpleNamespace]:
        """Runs of ``experiment`` known to this journal, shaped like MLflow's (info, data.tags)."""
        ids = self.ids()
        runs: dict[str, SimpleNamespace] = {}
        for record in self.records():
            key = ids.get(record["run"], record["run"])  # later records name the replayed id
            if record["op"] == "create" and record.get("experiment") == experiment:
                info = SimpleNamespace(run_id=key, run_name=record["name"], status="RUNNING",
                                       start_time=record.get("start_ms"), end_time=None)
                runs[key] = SimpleNamespace(info=info, data=SimpleNamespace(tags=dict(record["tags"])))
            elif key in runs and record["op"] == "tags":
                runs[key].data.tags.update(record["tags"])
            elif key in runs and record["op"] in ("end", "status"):
                runs[key].info.status = record["status"]
        return list(runs.values())


def default_buffer_dir(folder: str | Path) -> Path:
    return Path(folder) / BUFFER_DIR_NAME


def nearest_store(folder: str | Path) -> Path | None:
    """The folder holding the nearest existing ``mlflow.db`` at or above ``folder`` (a study's
    work directory), or None: a stage run inside a study logs to the study's store."""
    folder = Path(folder).resolve()
    for candidate in [folder, *folder.parents]:
        if (candidate / DEFAULT_STORE_NAME).is_file():
            return candidate
    return None


def find_buffer(path: str | Path) -> Path:
    """A buffer directory given it, the folder that holds it (a study's work directory), or a
    folder under that one (a stage's output folder: a standalone stage buffers beside it)."""
    path = Path(path)
    if (path / "journal.jsonl").is_file():
        return path
    for folder in (path, *path.absolute().parents):
        if (folder / BUFFER_DIR_NAME / "journal.jsonl").is_file():
            return folder / BUFFER_DIR_NAME
    return path / BUFFER_DIR_NAME if (path / BUFFER_DIR_NAME).is_dir() else path


# ---------------------------------------------------------------------------------------------
# Replay


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
    client = client or _Server.get(uri).client
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


def model_name(run_name: str) -> str:
    """A LoggedModel name from a run name (MLflow refuses / : . % and quotes in model names)."""
    return re.sub(r"""[/:.%"']+""", "-", run_name).strip("-") or "model"


# ---------------------------------------------------------------------------------------------
# Runs


def _pid_alive(pid: int, started: float | None) -> bool:
    """Whether ``pid`` is the process recorded (a recycled PID has another start time)."""
    import psutil

    try:
        process = psutil.Process(pid)
        return started is None or abs(process.create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def is_stale(run: Any) -> bool:
    """A RUNNING run whose recorded process, on this host, is gone (killed with -9, power loss)."""
    tags = run.data.tags
    if run.info.status != "RUNNING" or tags.get(TAG_HOST) != socket.gethostname() or not tags.get(TAG_PID):
        return False
    try:
        pid, started = int(tags[TAG_PID]), float(tags[TAG_PID_START]) if tags.get(TAG_PID_START) else None
    except ValueError:
        return False
    return pid != os.getpid() and not _pid_alive(pid, started)


def exit_status(exc: BaseException | None) -> str:
    """FINISHED, FAILED or KILLED for how a block ended (Ctrl-C and SIGTERM are KILLED)."""
    if exc is None or (isinstance(exc, SystemExit) and not isinstance(exc, Terminated) and exc.code in (0, None)):
        return "FINISHED"
    if isinstance(exc, (KeyboardInterrupt, Terminated)):
        return "KILLED"
    return "FAILED"


class Terminated(SystemExit):
    """Raised in the main thread on SIGTERM while a tracked block runs, so runs end KILLED."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


class sigterm_as_exception:
    """Turn SIGTERM into :class:`Terminated` inside the block (only where nobody else handles it)."""

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise Terminated()

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


class RunLogger:
    """One MLflow run; every call survives an unreachable server by going to the buffer journal.

    ``run_id`` reopens an existing run (an offline id is translated once replayed); ``resume``
    also marks it RUNNING under this process. Used as a context manager it ends FINISHED, FAILED
    or KILLED (see :func:`exit_status`)."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        run_name: str,
        *,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        buffer_dir: str | Path | None = None,
        buffer_path: str | Path | None = None,
        run_id: str | None = None,
        enabled: bool = True,
        resume: bool = False,
        system_metrics: bool = True,
        system_metrics_interval: float = 10.0,
    ):
        self.uri = uri
        self.experiment = experiment
        self.run_name = run_name
        self.enabled = enabled
        folder = buffer_dir or (Path(buffer_path).parent if buffer_path else default_buffer_dir(Path.cwd()))
        self.journal = Journal(folder)
        # Runs logged to a server are indexed in the journal (for lookups while it is down) only
        # where the caller named a buffer (a work directory), never in whatever the cwd is.
        self._index = is_remote(uri or "") and bool(buffer_dir or buffer_path)
        self.server = _Server.get(uri)
        self.run_id = self.journal.resolve(run_id)
        self.parent_run_id = self.journal.resolve(parent_run_id)
        """The run this one is nested in (None: top level, or a resumed run)."""
        self.status: str | None = None
        self._monitor = None
        self._sigterm = sigterm_as_exception()
        if not enabled:
            return
        self.server.check(self.journal)
        if run_id is None:
            all_tags = {str(k): str(v) for k, v in (tags or {}).items()}
            if parent_run_id:
                all_tags[PARENT_TAG] = self.journal.resolve(parent_run_id)
            self.run_id = self._create(all_tags)
        elif resume:
            self.set_tags(self._process_tags())
            self._do("status", status="RUNNING")
        if system_metrics:
            self._monitor = _SystemMetrics(self, system_metrics_interval)

    def child(self, name: str, tags: Mapping[str, Any] | None = None) -> RunLogger:
        """A nested run named ``<this run's name>/<name>`` (e.g. one fine-tuning seed, ``…/xnli/ft1``),
        in the same store, experiment and buffer; the caller ends it."""
        return RunLogger(self.uri, self.experiment, f"{self.run_name}/{name}", parent_run_id=self.run_id, tags=tags,
                         buffer_dir=self.journal.folder, enabled=self.enabled, system_metrics=False)

    # -- creating ---------------------------------------------------------------------------
    @property
    def client(self):
        return self.server.client

    @staticmethod
    def _process_tags() -> dict[str, str]:
        """Who runs it: the next run of the same name marks it KILLED once this process is gone."""
        import psutil

        return {TAG_PID: str(os.getpid()), TAG_PID_START: f"{psutil.Process().create_time():.2f}",
                TAG_HOST: socket.gethostname()}

    def _create(self, tags: dict[str, str]) -> str:
        tags = {**tags, **self._process_tags()}
        if self.server.online:
            try:
                return self._create_online(tags)
            except Exception as exc:  # noqa: BLE001 - a server that dies now: buffer instead
                self.server.went_offline(f"the MLflow server {self.uri} stopped answering ({_short(exc)})",
                                         self.journal)
        return self._create_offline(tags)

    def _create_online(self, tags: dict[str, str]) -> str:
        eid = _experiment_id(self.client, self.uri, self.experiment, {})
        name = self.run_name.replace("'", "\\'")
        for old in self.client.search_runs([eid], f"attributes.run_name = '{name}' and attributes.status = 'RUNNING'"):
            if is_stale(old):
                self.client.set_terminated(old.info.run_id, "KILLED")
        run = self.client.create_run(eid, run_name=self.run_name, tags=tags)
        if self._index:  # an index entry, so an offline process still finds this run
            self.journal.append("create", run.info.run_id, False, self.uri, experiment=self.experiment,
                                name=self.run_name, tags=tags, start_ms=run.info.start_time)
        return run.info.run_id

    def _create_offline(self, tags: dict[str, str]) -> str:
        for old in self.journal.runs(self.experiment):
            if old.info.run_name == self.run_name and is_stale(old):
                self.journal.append("end", old.info.run_id, True, self.uri, status="KILLED",
                                    end_ms=int(time.time() * 1000))
        run_id = OFFLINE_PREFIX + uuid.uuid4().hex
        self.journal.append("create", run_id, True, self.uri, experiment=self.experiment, name=self.run_name,
                            tags=tags, start_ms=int(time.time() * 1000))
        return run_id

    # -- one path for every call --------------------------------------------------------------
    def _do(self, op: str, **fields: Any) -> None:
        if not self.enabled or self.run_id is None:
            return
        target = self.journal.resolve(self.run_id)
        if self.server.online and not target.startswith(OFFLINE_PREFIX):
            try:
                _send(self.client, target, op, fields, self.journal)
                if op in ("end", "status", "tags") and self._index:
                    self.journal.append(op, target, False, self.uri, **fields)  # the index offline lookups read
                return
            except Exception as exc:  # noqa: BLE001 - any tracking failure must not stop the stage
                if _refused(exc):
                    _notify(f"MLflow refused {op} for run {self.run_name}: {_short(exc)}")
                    return
                self.server.went_offline(f"the MLflow server {self.uri} stopped answering ({_short(exc)})",
                                         self.journal)
        if op == "artifact":
            fields = self._copy_artifact(fields)
        self.journal.append(op, target, True, self.uri, **fields)

    def _copy_artifact(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Artifacts are copied into the buffer: the file may change or vanish before the replay."""
        source = Path(fields["path"])
        relative = Path("artifacts") / uuid.uuid4().hex / source.name
        destination = self.journal.folder / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination)
        elif source.is_file():
            shutil.copy2(source, destination)
        else:
            return fields
        return {**fields, "copy": str(relative)}

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._do("params", params={k: str(v)[:6000] for k, v in flatten(params).items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        clean = {sanitize_metric_name(k): float(v) for k, v in metrics.items() if v is not None}
        if clean:
            self._do("metrics", metrics=clean, step=step, timestamp=int(time.time() * 1000))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._do("tags", tags={str(k): str(v) for k, v in tags.items()})

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._do("artifact", path=str(path), artifact_path=artifact_path)

    def log_datasets(self, datasets: list[Mapping[str, Any]]) -> None:
        """The data the run read, as MLflow datasets (the runs table's Datasets column): each
        ``{name, digest, source, profile}`` (``source``/``profile``: JSON text), context ``train``."""
        if datasets:
            self._do("inputs", datasets=[dict(d) for d in datasets])

    def log_model(self, path: str | Path, name: str | None = None, params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None, model_type: str | None = None) -> None:
        """A model the run wrote to ``path``, as an MLflow LoggedModel made by this run (the runs table's
        Models column). Its files stay in ``path`` (tag ``weam.model_dir``): the weights are not copied."""
        self._do("model", name=model_name(name or self.run_name), model_type=model_type,
                 params={k: str(v)[:6000] for k, v in flatten(params or {}).items()},
                 tags={**{str(k): str(v) for k, v in (tags or {}).items()}, "weam.model_dir": str(Path(path).resolve())})

    def end(self, status: str = "FINISHED") -> None:
        """End the run (once; later calls do nothing). ``status``: FINISHED, FAILED or KILLED."""
        if status not in END_STATUSES:
            raise ValueError(f"run status {status!r} is not one of {', '.join(END_STATUSES)}")
        if self.status is not None:
            return
        if self._monitor is not None:
            self._monitor.stop()
        self.status = status
        self._do("end", status=status, end_ms=int(time.time() * 1000))

    def replay(self) -> int:
        """Send what this logger's buffer holds (when the server answers); returns records sent."""
        return replay(self.journal, self.uri, client=self.client)["records"]

    def __enter__(self) -> RunLogger:
        self._sigterm.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._sigterm.__exit__()
        self.end(exit_status(exc))


class _SystemMetrics:
    """MLflow's system-metric monitors (CPU, memory, disk, network, GPU), sampled on a thread and
    logged through the run's logger, so they are buffered like everything else when offline."""

    def __init__(self, logger: RunLogger, interval: float):
        from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor
        from mlflow.system_metrics.metrics.disk_monitor import DiskMonitor
        from mlflow.system_metrics.metrics.gpu_monitor import GPUMonitor
        from mlflow.system_metrics.metrics.network_monitor import NetworkMonitor

        self.logger, self.interval, self.step = logger, interval, 0
        self.monitors = [CPUMonitor(), DiskMonitor(), NetworkMonitor()]
        try:
            self.monitors.append(GPUMonitor())  # needs pynvml and an NVIDIA GPU
        except Exception:  # noqa: BLE001 - no GPU: CPU, memory, disk and network only
            pass
        self.stopping = threading.Event()
        self.samples = 0
        self._collect()
        self.thread = threading.Thread(target=self._loop, name="weam-system-metrics", daemon=True)
        self.thread.start()

    def _collect(self) -> None:
        for monitor in self.monitors:
            monitor.collect_metrics()
        self.samples += 1

    def _publish(self) -> None:
        if not self.samples:
            return
        metrics: dict[str, float] = {}
        for monitor in self.monitors:
            metrics.update(monitor.aggregate_metrics())
            monitor.clear_metrics()
        self.samples = 0
        self.logger.log_metrics({f"system/{k}": v for k, v in metrics.items()}, step=self.step)
        self.step += 1

    def _loop(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self._collect()
                self._publish()
            except Exception:  # noqa: BLE001 - a failing sensor must not stop the stage
                return

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=self.interval + 5)
        try:
            self._collect()
            self._publish()  # every run gets at least one sample, even one shorter than the interval
        except Exception:  # noqa: BLE001
            pass


# ---------------------------------------------------------------------------------------------
# Lookups and parents (the study runner's)


def find_runs(uri: str, experiment: str, tags: Mapping[str, Any], buffer_dir: str | Path | None = None) -> list[Any]:
    """Runs of ``experiment`` with these tags, newest first: from the server when it answers, else
    from the buffer journal (runs created or seen by this work directory)."""
    journal = Journal(buffer_dir or default_buffer_dir(Path.cwd()))
    server = _Server.get(uri)
    wanted = {str(k): str(v) for k, v in tags.items()}
    if server.check(journal):
        try:
            found = server.client.get_experiment_by_name(experiment)
            if found is None:
                return []
            clauses = " and ".join(f"tags.`{k}` = '{v}'" for k, v in wanted.items())
            return list(server.client.search_runs([found.experiment_id], clauses,
                                                  order_by=["attributes.start_time DESC"], max_results=50))
        except Exception as exc:  # noqa: BLE001
            server.went_offline(f"the MLflow server {uri} stopped answering ({_short(exc)})", journal)
    runs = [r for r in journal.runs(experiment) if all(r.data.tags.get(k) == v for k, v in wanted.items())]
    return sorted(runs, key=lambda r: r.info.start_time or 0, reverse=True)


def find_run(uri: str, experiment: str, tags: Mapping[str, Any], buffer_dir: str | Path | None = None) -> Any | None:
    """The newest FINISHED run with these tags, else the newest at all, else None."""
    runs = find_runs(uri, experiment, tags, buffer_dir)
    finished = [run for run in runs if run.info.status == "FINISHED"]
    return finished[0] if finished else (runs[0] if runs else None)


def reachable(uri: str, buffer_dir: str | Path | None = None) -> bool:
    """Whether this process talks to the server (one probe per process; see RECHECK_S)."""
    return _Server.get(uri).check(Journal(buffer_dir) if buffer_dir else None)


class ParentRuns:
    """Parent (condition) runs a process opened or reopened; as a context manager around the
    process's work, ends each with its children's outcome: FINISHED, FAILED or KILLED."""

    def __init__(self) -> None:
        self.open: dict[str, RunLogger] = {}
        self._sigterm = sigterm_as_exception()

    def get(self, key: str, make: Callable[[], RunLogger]) -> RunLogger:
        if key not in self.open:
            self.open[key] = make()
        return self.open[key]

    def __enter__(self) -> ParentRuns:
        self._sigterm.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._sigterm.__exit__()
        for logger in self.open.values():
            logger.end(exit_status(exc))
        self.open.clear()


def drop_rows_after(path: str | Path, step: int) -> int:
    """Cut a JSONL log with a ``step`` field back to rows ≤ ``step`` (a resumed run re-logs the
    rest; a killed one may have left a half-written last line). Returns the rows dropped."""
    path = Path(path)
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] > step:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        os.replace(tmp, path)
    return dropped


# ---------------------------------------------------------------------------------------------
# The MLflow UI: a chart view a link opens


def chart_view(client, experiment_id: str, metric: str, group_tag: str = TAG_CONDITION,
               search_filter: str = "", extra_metrics: tuple[str, ...] = ()) -> str:
    """Store an MLflow UI view of the experiment's runs — grouped by ``group_tag``, charts of
    ``metric`` (then ``extra_metrics``) per group — and return its share key.

    MLflow 3's compare-runs page (``#/compare-runs``) takes only run and experiment ids, its plot
    axes cannot be set from a link; the experiment page's chart view can: the UI's *Share* button
    stores its state as the experiment tag ``mlflow.sharedViewState.<key>`` and opens it from
    ``?viewStateShareKey=<key>``. This writes that tag (plain JSON, which the UI also reads)."""
    import hashlib

    section = "weam"
    charts = [
        {"type": "BAR", "uuid": f"weam-bar-{i}", "metricKey": key, "metricSectionId": section, "isGenerated": False,
         "deleted": False, "runsCountToCompare": 100, "displayName": f"{key} by {group_tag}"}
        for i, key in enumerate((metric, *extra_metrics))
    ]
    state = {
        "searchFilter": search_filter,
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": group_tag}]},
        "useGroupedValuesInCharts": True,
        "hideEmptyCharts": True,
        "compareRunSections": [{"uuid": section, "name": f"{metric} by {group_tag}", "display": True,
                                "isReordered": False}],
        "compareRunCharts": charts,
        "isAccordionReordered": True,  # keep this section first (the UI sorts sections by name otherwise)
        "selectedColumns": [f"tags.`{group_tag}`", f"metrics.`{metric}`",
                            *(f"metrics.`{key}`" for key in extra_metrics)],
    }
    text = json.dumps(state, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    client.set_experiment_tag(experiment_id, f"mlflow.sharedViewState.{key}", text)
    return key


def chart_view_url(base_url: str, experiment_id: str, key: str, mode: str = "CHART") -> str:
    """The link that opens a view stored by :func:`chart_view`: its charts (``CHART``) or its runs
    table (``TABLE``: grouped rows, the group tag and metrics as columns)."""
    return (f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={key}"
            f"&compareRunsMode={mode}")
