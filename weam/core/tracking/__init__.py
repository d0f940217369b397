"""MLflow tracking shared by every stage: one path, whether the server answers or not.

One experiment per study; a parent run per condition; nested runs per stage (``mlflow.parentRunId``
tag). A tracking server that is down, or refuses the credentials, never stops the work: runs go to
a journal in a buffer directory, and ``weam tracking sync`` or the next process that reaches the
server replays it. One job a module, all names importable from here:

* :mod:`~weam.core.tracking.tags`: tag names, run, metric and model names;
* :mod:`~weam.core.tracking.store`: the settings, store URIs, the SQLite store, the client;
* :mod:`~weam.core.tracking.server`: probing a server once, online or offline;
* :mod:`~weam.core.tracking.journal`: the buffer journal;
* :mod:`~weam.core.tracking.sync`: sending records and replaying a journal;
* :mod:`~weam.core.tracking.runs`: :class:`RunLogger`, run lookups, parent runs, how a run ends;
* :mod:`~weam.core.tracking.ui`: a chart view of the MLflow UI that a link opens.
"""

from weam.core.tracking.journal import BUFFER_DIR_NAME, OFFLINE_PREFIX, Journal, default_buffer_dir, find_buffer
from weam.core.tracking.runs import (END_STATUSES, ParentRuns, RunLogger, Terminated, drop_rows_after, exit_status,
                                     find_run, find_runs, is_stale, reachable, sigterm_as_exception)
from weam.core.tracking.server import PROBE_TIMEOUT_S, RECHECK_S, _Server, probe
from weam.core.tracking.store import (DEFAULT_STORE_NAME, STORE_LOCK_WAIT_S, TrackingConfig, artifact_location_for,
                                      is_remote, make_client, nearest_store, reroot_artifacts, resolve_tracking_uri,
                                      schema_template, seed_sqlite_store, sqlite_store_lock, sqlite_uri,
                                      store_uri)
from weam.core.tracking.sync import replay
from weam.core.tracking.tags import (PARENT_TAG, TAG_BUFFER_ID, TAG_CONDITION, TAG_EVAL_SEED, TAG_FAMILIES,
                                     TAG_FINETUNE_SEED, TAG_GIT_COMMIT, TAG_HOST, TAG_LANGUAGE_SET, TAG_LANGUAGES,
                                     TAG_MODEL, TAG_N_FAMILIES, TAG_OBJECTIVE, TAG_PID, TAG_PID_START, TAG_REPRODUCES,
                                     TAG_ROLE, TAG_SEED, TAG_STAGE, TAG_STAGE_CONFIG, TAG_STUDY, TAG_TASK, flatten,
                                     model_name, primary_metric_name, run_name, sanitize_metric_name)
from weam.core.tracking.ui import chart_view, chart_view_url

__all__ = [
    "BUFFER_DIR_NAME", "DEFAULT_STORE_NAME", "END_STATUSES", "OFFLINE_PREFIX", "PARENT_TAG", "PROBE_TIMEOUT_S",
    "RECHECK_S", "STORE_LOCK_WAIT_S", "TAG_BUFFER_ID", "TAG_CONDITION", "TAG_EVAL_SEED", "TAG_FAMILIES",
    "TAG_FINETUNE_SEED", "TAG_GIT_COMMIT", "TAG_HOST", "TAG_LANGUAGE_SET", "TAG_LANGUAGES", "TAG_MODEL",
    "TAG_N_FAMILIES", "TAG_OBJECTIVE", "TAG_PID", "TAG_PID_START", "TAG_REPRODUCES", "TAG_ROLE", "TAG_SEED",
    "TAG_STAGE", "TAG_STAGE_CONFIG", "TAG_STUDY", "TAG_TASK", "Journal", "ParentRuns", "RunLogger", "Terminated",
    "TrackingConfig", "_Server", "artifact_location_for", "chart_view", "chart_view_url", "default_buffer_dir",
    "drop_rows_after", "exit_status", "find_buffer", "find_run", "find_runs", "flatten", "is_remote", "is_stale",
    "make_client", "model_name", "nearest_store", "primary_metric_name", "probe", "reachable", "replay",
    "reroot_artifacts", "resolve_tracking_uri", "run_name", "sanitize_metric_name", "sigterm_as_exception",
    "schema_template", "seed_sqlite_store", "sqlite_store_lock", "sqlite_uri", "store_uri",
]
