"""Where runs go: the tracking settings, the store's URI (a SQLite file needs no server), the
SQLite store's lock and artifact folder, the MLflow client, and how a failed request is said."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from pydantic import Field

from weam.core.config import StrictModel
from weam.core.secrets import redact

DEFAULT_STORE_NAME = "mlflow.db"


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


def schema_template() -> Path | None:
    """An empty SQLite store with MLflow's tables, migrated to this MLflow's newest schema and
    holding no experiment, made once per MLflow version in the user's cache
    (``~/.cache/weam/mlflow-<version>-schema.db``). MLflow migrates every new store through its
    whole alembic history (seconds a store, more under load); a copy of this file is the same
    tables at the same revision, and MLflow adds the Default experiment to it when it first opens it,
    as it does to a store it migrated itself. None when it cannot be made (MLflow then creates the
    store as before)."""
    try:
        import mlflow
        import sqlalchemy
        from mlflow.store.db.utils import _initialize_tables, _verify_schema

        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "weam"
        template = cache / f"mlflow-{mlflow.__version__}-schema.db"
        if template.is_file():
            return template
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f".{template.name}.{os.getpid()}"
        partial.unlink(missing_ok=True)
        engine = sqlalchemy.create_engine(sqlite_uri(partial))
        try:
            _initialize_tables(engine)
            _verify_schema(engine)  # raises unless it is at this MLflow's newest revision
        finally:
            engine.dispose()
        os.replace(partial, template)  # another process making it at the same time writes the same
        return template
    except Exception:  # noqa: BLE001 - a speed-up only: any failure leaves the store to MLflow
        return None


def seed_sqlite_store(uri: str) -> bool:
    """Create a SQLite store that does not exist yet as a copy of :func:`schema_template` (call it
    under :func:`sqlite_store_lock`). Returns whether it did."""
    import shutil

    if not uri.startswith("sqlite:///"):
        return False
    store = Path(uri.removeprefix("sqlite:///"))
    if store.exists() or not store.parent.is_dir():
        return False
    template = schema_template()
    if template is None:
        return False
    partial = store.with_name(f".{store.name}.{os.getpid()}")
    shutil.copyfile(template, partial)
    os.replace(partial, store)  # whole or absent for a reader that does not take the lock
    return True


def nearest_store(folder: str | Path) -> Path | None:
    """The folder holding the nearest existing ``mlflow.db`` at or above ``folder`` (a study's
    work directory), or None: a stage run inside a study logs to the study's store."""
    folder = Path(folder).resolve()
    for candidate in [folder, *folder.parents]:
        if (candidate / DEFAULT_STORE_NAME).is_file():
            return candidate
    return None


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



def make_client(uri: str):
    """An ``MlflowClient`` for ``uri`` (a SQLite store is created or migrated under its lock and
    re-rooted first)."""
    from mlflow.tracking import MlflowClient

    # MLflow's defaults retry a dead server for minutes per call (7 retries, backoff 2);
    # a server that dies mid-run costs one call a few seconds here, then the buffer takes
    # over. Its "View run at" lines cost a get_run per ended run. The user's settings win.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    with sqlite_store_lock(uri):
        seed_sqlite_store(uri)  # a new store: a copy of the migrated empty schema
        reroot_artifacts(uri)
        return MlflowClient(tracking_uri=uri)  # creates and migrates the tables of a store not seeded
