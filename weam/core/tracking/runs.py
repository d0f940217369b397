"""One MLflow run a stage logs to (:class:`RunLogger`), through an explicit ``MlflowClient`` and run
id (no global active-run state, so stages in other processes can nest under a parent by id); every
call goes to the server when it answers, else to the buffer journal.

Every run ends FINISHED, FAILED or KILLED: ``with RunLogger(...) as run:`` ends FINISHED on success,
FAILED on an exception, KILLED on Ctrl-C or SIGTERM; a run killed with -9 (its recorded PID on its
host no longer alive) is marked KILLED by the next run of the same name. :class:`ParentRuns` ends
a study's condition runs with the outcome of the stages under them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from weam.core.tracking.journal import OFFLINE_PREFIX, Journal, default_buffer_dir
from weam.core.tracking.server import _Server
from weam.core.tracking.store import _notify, _refused, _short, is_remote
from weam.core.tracking.sync import _experiment_id, _send, replay
from weam.core.tracking.tags import (PARENT_TAG, TAG_HOST, TAG_PID, TAG_PID_START, flatten, model_name,
                                     sanitize_metric_name)

END_STATUSES = ("FINISHED", "FAILED", "KILLED")



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
