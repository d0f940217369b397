"""Run a study's plan on a Ray cluster: ``weam study run CONFIG --ray-address ADDRESS``.

Each step of the plan becomes one Ray task that asks for its stage's resources
(:attr:`weam.stages.Stage.resources`: one GPU to train or evaluate a model, one CPU otherwise) and
is submitted as soon as the steps it reads from are done (:func:`dependencies`, ``ray.wait`` on
the tasks in flight). The worker runs the step through :func:`weam.stages.execute`: the same stage
object, fingerprint, manifest, output lock and MLflow run as the sequential loop
(:mod:`weam.study.run`), over the study's work directory, which every node must see at the same
path (the RWX volume of deploy/README.md). So a re-submitted study skips what is done and re-runs
what is stale, exactly as locally.

A worker lost mid-step (its process killed, its node gone) is retried by Ray (``max_retries``):
the step's folder keeps its partial work under the same fingerprint, and the step resumes from its
own checkpoint (pre-training: the newest complete DeepSpeed checkpoint). An exception raised by a
step is not retried: the steps downstream of it are not started, independent ones go on, and the
study ends with the error once nothing is left in flight.

Each task runs in a fresh worker process (``max_calls=1``): a step's torch, DeepSpeed and GPU
state never leaks into the next one. The driver runs no step itself; it opens the condition runs
(MLflow parents) as the sequential loop does, prints one line per finished step with the cluster's
queue, and keeps ``<work_dir>/.progress.json`` (each step's state, Ray task, node, start and end)
current, which ``weam study status`` shows while the driver holds the work directory.

A step that one Ray task cannot run (a pre-training run over several nodes) has a launcher from
its stage (:attr:`weam.stages.Stage.launcher`, e.g. weam.training.trainjob's Kubeflow TrainJob):
the driver starts it in a thread of its own, which creates the object through the Kubernetes API,
waits for it and checks the step's manifest; it asks nothing of Ray, and its failure fails that
step only, like a task's.

A step whose stage splits it into parts (:attr:`weam.stages.Stage.parts`: an evaluation's
(task, fine-tuning seed) pairs) runs as one task per part, each with the step's resources, all at
once; when every part is done, the step's own task (one CPU) runs it through ``execute``, which
finds the parts' results and merges them into the step's usual files and MLflow run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import Any

from weam.core.errors import WeamError
from weam.core.lock import WORK_LOCK_NAME, read_holder
from weam.core.manifest import Verdict, atomic_write_json
from weam.stages import STAGES, Step, Tracking, _needs, check_only, execute, prepare_parts, verdict
from weam.study.run import StudyRunner

PROGRESS_NAME = ".progress.json"
"""The driver's view of the steps, in the work directory (read by ``weam study status``)."""
STARTS_DIR = ".ray-steps"
"""One file per step, written by the worker when an attempt starts (task id, node, PID)."""
DEFAULT_RESOURCES = {"CPU": 1.0}
POLL_SECONDS = 2.0
QUEUE_MARK = "  · queue: "
"""Between a finished step's status and the cluster's queue on the driver's line."""
MAX_RETRIES = 3


def step_resources(step: Step) -> dict[str, float]:
    """What the step's stage asks of the cluster (Ray resource names), one CPU by default."""
    rule = STAGES[step.stage].resources
    return {name: float(amount) for name, amount in (rule(step) if rule else DEFAULT_RESOURCES).items()}


def step_launcher(step: Step) -> Any | None:
    """The stage's launcher for this step (:attr:`weam.stages.Stage.launcher`), None for a Ray task."""
    rule = STAGES[step.stage].launcher
    return rule(step) if rule else None


def step_parts(step: Step) -> list[str]:
    """The step's parts (:attr:`weam.stages.Stage.parts`) when there are several, else none."""
    stage = STAGES[step.stage]
    found = stage.parts(step) if stage.parts and stage.run_part else []
    return found if len(found) > 1 else []


def dependencies(steps: list[Step]) -> dict[str, list[str]]:
    """Step key → the keys of the earlier steps it must wait for: those whose output it reads
    (:func:`weam.stages._needs`: input files, folders its config names) and every earlier check
    (:attr:`weam.stages.Stage.gate`: the budget), or every earlier step for a stage that reads them
    all (:attr:`weam.stages.Stage.after_all`: the report). The plan's order is a valid run order,
    so only earlier steps can be upstream."""
    order = {step.key: index for index, step in enumerate(steps)}
    found: dict[str, list[str]] = {}
    for index, step in enumerate(steps):
        if STAGES[step.stage].after_all:
            found[step.key] = [other.key for other in steps[:index]]
            continue
        keys = {other.key for other in _needs(step, steps) if order[other.key] < index}
        keys |= {other.key for other in steps[:index] if STAGES[other.stage].gate}
        found[step.key] = sorted(keys, key=order.__getitem__)
    return found


def ray_options(resources: dict[str, float], max_retries: int) -> dict[str, Any]:
    """``.options()`` of a step's task: its resources, retries on a lost worker only (a step's own
    exception is an answer, not a fault)."""
    rest = dict(resources)
    options: dict[str, Any] = {"num_cpus": rest.pop("CPU", 0.0), "num_gpus": rest.pop("GPU", 0.0),
                               "max_retries": max_retries, "retry_exceptions": False}
    if rest:
        options["resources"] = rest
    return options


def start_file(work: Path, key: str) -> Path:
    return work / STARTS_DIR / (key.replace("/", "__") + ".json")


def run_step(step: Step, tracking: Tracking, started: str) -> dict[str, Any]:
    """The Ray task: record this attempt, then run the step through the one skip rule."""
    record = _record_attempt(started)
    skipped = execute(step, tracking)
    return {**record, "skipped": skipped, "ended": time.time()}


def run_part(step: Step, part: str, started: str) -> dict[str, Any]:
    """The Ray task of one part of a step: record this attempt, compute the part into the step's folder."""
    record = _record_attempt(started)
    STAGES[step.stage].run_part(step, part)
    return {**record, "skipped": False, "ended": time.time()}


def _record_attempt(started: str) -> dict[str, Any]:
    import ray

    path = Path(started)
    try:
        attempt = json.loads(path.read_text(encoding="utf-8")).get("attempt", 0) + 1
    except (OSError, ValueError):
        attempt = 1
    record = {"task_id": ray.get_runtime_context().get_task_id(), "node": ray.util.get_node_ip_address(),
              "pid": os.getpid(), "started": time.time(), "attempt": attempt}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record)
    return record


def check_fits(steps: Iterable[Step], nodes: list[dict[str, Any]]) -> None:
    """Refuse, before any work, a step that no node of the cluster can ever run (a task asking for
    more than any node has would wait forever)."""
    capacities = [node.get("Resources", {}) for node in nodes if node.get("Alive", True)]
    for step in steps:
        wanted = step_resources(step)
        if not any(all(capacity.get(name, 0.0) >= amount for name, amount in wanted.items()) for capacity in capacities):
            biggest = max(capacities, key=lambda c: (c.get("GPU", 0.0), c.get("CPU", 0.0)), default={})
            shown = ", ".join(f"{name} {amount:g}" for name, amount in wanted.items())
            has = ", ".join(f"{name} {biggest.get(name, 0.0):g}" for name in wanted)
            raise WeamError(
                f"step {step.key} needs {shown}, and no node of the Ray cluster has that (the largest has {has}). "
                "Add nodes with those resources; a CPU-only machine can run GPU steps on its CPUs if Ray is told it "
                "has GPUs: ray start --head --num-gpus N (each step then runs on CPU)")


class RayStudyRunner(StudyRunner):
    """The plan as a DAG of Ray tasks; MLflow parents and tags as in :class:`StudyRunner`."""

    def __init__(self, study, steps: list[Step], study_file=None, echo=print, max_retries: int = MAX_RETRIES):
        super().__init__(study, steps, study_file=study_file, echo=echo)
        self.max_retries = max_retries
        self.progress_file = self.work / PROGRESS_NAME
        self.records: dict[str, dict[str, Any]] = {}
        self.launchers: dict[str, Any] = {}
        self.launched: dict[Future, Step] = {}
        self.part_refs: dict[Any, tuple[Step, str]] = {}
        self.parts_done: set[str] = set()

    def run(self, only: set[str] | None = None) -> None:
        import ray

        chosen = check_only(self.steps, only) if only else self.steps
        self.launchers = {step.key: launcher for step in chosen if (launcher := step_launcher(step)) is not None}
        check_fits([step for step in chosen if step.key not in self.launchers], ray.nodes())
        wanted = {step.key for step in chosen}
        needs = {key: [d for d in deps if d in wanted] for key, deps in dependencies(self.steps).items()}
        task = ray.remote(max_calls=1)(run_step)  # a fresh worker process per step
        self.part_task = ray.remote(max_calls=1)(run_part)
        self.records = {step.key: {"state": "waiting", "needs": needs[step.key],
                                   **({"launcher": self.launchers[step.key].describe(), "resources": {}}
                                      if step.key in self.launchers else {"resources": step_resources(step)})}
                        for step in chosen}
        for step in chosen:
            start_file(self.work, step.key).unlink(missing_ok=True)
        self.part_refs, self.parts_done = {}, set()
        waiting = list(chosen)
        in_flight: dict[Any, Step] = {}
        failures: dict[str, BaseException] = {}
        began = time.time()
        pool = ThreadPoolExecutor(max_workers=max(1, len(self.launchers)), thread_name_prefix="launcher")
        self.launched = {}
        try:
            with self._parents:
                while waiting or in_flight or self.launched or self.part_refs:
                    waiting = self._submit_ready(waiting, in_flight, needs, task, began, pool)
                    if not in_flight and not self.launched and not self.part_refs:
                        break
                    if in_flight or self.part_refs:
                        ready, _ = ray.wait([*in_flight, *self.part_refs], num_returns=1, timeout=POLL_SECONDS)
                    else:
                        ready = []
                        wait_futures(list(self.launched), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                    for ref in ready:
                        if ref in self.part_refs:
                            waiting += self._part_finished(*self.part_refs.pop(ref), ref, failures, began)
                        else:
                            self._finished(in_flight.pop(ref), ref, failures, began)
                    for future in [f for f in self.launched if f.done()]:
                        self._launch_finished(self.launched.pop(future), future, failures, began)
                    self._note_starts(in_flight.values())
                    self._note_part_starts()
                    self._write_progress()
        except BaseException:  # Ctrl-C or a driver fault: stop the workers (their steps resume on re-run)
            for ref in [*in_flight, *self.part_refs]:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            for launcher in self.launchers.values():
                launcher.stop.set()  # the launched objects are left to finish; a re-submission waits for them
            raise
        finally:
            pool.shutdown(wait=True)
            self._write_progress(final=True)
        if failures:
            blocked = [key for key, record in self.records.items() if record["state"] == "blocked"]
            if len(failures) == 1 and not blocked:
                raise next(iter(failures.values()))
            shown = "; ".join(f"{key}: {error}" for key, error in failures.items())
            more = f"; not started, downstream of them: {', '.join(blocked)}" if blocked else ""
            raise WeamError(f"{len(failures)} step(s) failed on the Ray cluster: {shown}{more}")

    def _submit_ready(self, waiting, in_flight, needs, task, began: float, pool: ThreadPoolExecutor) -> list[Step]:
        """Submit every step whose upstream steps are finished; one that is done already (the same
        skip rule as the worker's) is skipped here, without a task, and may free its own dependents."""
        changed = True
        while changed:
            changed, left = False, []
            for step in waiting:
                deps = needs[step.key]
                if any(self.records[d]["state"] in ("failed", "blocked") for d in deps):
                    self.records[step.key]["state"] = "blocked"
                    continue
                if not all(self.records[d]["state"] in ("done", "skipped") for d in deps):
                    left.append(step)
                    continue
                if verdict(step).done:
                    self.records[step.key].update(state="skipped", ended=time.time())
                    self.echo(f"[{time.time() - began:7.1f} s] {step.key}: skipped (finished){self._queue()}")
                    changed = True
                    continue
                if step.key in self.launchers:
                    future = pool.submit(self.launchers[step.key].run, self.tracking(step), self.echo)
                    self.launched[future] = step
                    self.records[step.key].update(state="running", started=time.time())
                    self.echo(f"[{time.time() - began:7.1f} s] {step.key}: launched as "
                              f"{self.records[step.key]['launcher']}{self._queue()}")
                    continue
                parts = [] if step.key in self.parts_done else step_parts(step)
                if parts:
                    self._submit_parts(step, parts)
                    continue
                # After its parts the step only merges what they computed: one CPU.
                wanted = DEFAULT_RESOURCES if step.key in self.parts_done else self.records[step.key]["resources"]
                options = ray_options(wanted, self.max_retries)
                ref = task.options(name=step.key, **options).remote(
                    step, self.tracking(step), str(start_file(self.work, step.key)))
                in_flight[ref] = step
                self.records[step.key].update(state="queued", task_id=ref.task_id().hex(), submitted=time.time())
            waiting = left
        return waiting

    def _submit_parts(self, step: Step, parts: list[str]) -> None:
        """One task per part, each with the step's resources, after clearing a stale attempt once."""
        prepare_parts(step)
        options = ray_options(self.records[step.key]["resources"], self.max_retries)
        for part in parts:
            started = start_file(self.work, f"{step.key}#{part}")
            started.unlink(missing_ok=True)
            ref = self.part_task.options(name=f"{step.key}#{part}", **options).remote(step, part, str(started))
            self.part_refs[ref] = (step, part)
        self.records[step.key].update(state="queued", parts={"total": len(parts), "done": 0},
                                      task_id=f"{len(parts)} parts", submitted=time.time())

    def _part_finished(self, step: Step, part: str, ref, failures: dict[str, BaseException], began: float
                       ) -> list[Step]:
        """A part's task has ended; returns ``[step]`` once its last part is done (the step then runs)."""
        import ray

        record = self.records[step.key]
        if record["state"] == "failed":
            return []  # an earlier part failed: the step is failed already
        try:
            result = ray.get(ref)
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc
            failures[step.key] = cause
            record.update(state="failed", error=f"{part}: {type(cause).__name__}: {cause}"[:2000], ended=time.time())
            self.echo(f"[{time.time() - began:7.1f} s] {step.key} · {part}: FAILED ({type(cause).__name__}: "
                      f"{str(cause)[:300]}){self._queue()}")
            return []
        record["parts"]["done"] += 1
        record.setdefault("started", result["started"])
        retried = f", attempt {result['attempt']}" if result["attempt"] > 1 else ""
        self.echo(f"[{time.time() - began:7.1f} s] {step.key} · {part}: done in {result['ended'] - result['started']:.1f} s "
                  f"(ray task {ref.task_id().hex()[:12]} on {result['node']}{retried}; part "
                  f"{record['parts']['done']}/{record['parts']['total']}){self._queue()}")
        if record["parts"]["done"] < record["parts"]["total"]:
            return []
        self.parts_done.add(step.key)
        record["state"] = "waiting"
        return [step]

    def _note_starts(self, steps: Iterable[Step]) -> None:
        """Queued → running once the worker has recorded its attempt."""
        for step in steps:
            if step.key in self.launchers:
                continue
            try:
                attempt = json.loads(start_file(self.work, step.key).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            self.records[step.key].update(state="running", node=attempt["node"], pid=attempt["pid"],
                                          started=attempt["started"], attempts=attempt["attempt"])

    def _note_part_starts(self) -> None:
        """A step split into parts is running once one of its parts' workers has started."""
        for step, part in self.part_refs.values():
            record = self.records[step.key]
            if record["state"] != "queued":
                continue
            try:
                attempt = json.loads(start_file(self.work, f"{step.key}#{part}").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            record.update(state="running", node=attempt["node"], pid=attempt["pid"], started=attempt["started"])

    def _finished(self, step: Step, ref, failures: dict[str, BaseException], began: float) -> None:
        import ray

        record = self.records[step.key]
        try:
            result = ray.get(ref)
        except Exception as exc:  # the step's own error (RayTaskError: its cause) or retries used up
            cause = getattr(exc, "cause", None) or exc
            failures[step.key] = cause
            record.update(state="failed", error=f"{type(cause).__name__}: {cause}"[:2000], ended=time.time())
            self.echo(f"[{time.time() - began:7.1f} s] {step.key}: FAILED ({type(cause).__name__}: "
                      f"{str(cause)[:300]}){self._queue()}")
            return
        record.update(state="skipped" if result["skipped"] else "done", node=result["node"], pid=result["pid"],
                      started=result["started"], ended=result["ended"], attempts=result["attempt"])
        if result["skipped"]:
            status = "skipped (finished)"
        else:
            retried = f", attempt {result['attempt']}" if result["attempt"] > 1 else ""
            status = (f"done in {result['ended'] - result['started']:.1f} s (ray task {record['task_id'][:12]} "
                      f"on {result['node']}{retried})")
        self.echo(f"[{time.time() - began:7.1f} s] {step.key}: {status}{self._queue()}")

    def _launch_finished(self, step: Step, future: Future, failures: dict[str, BaseException], began: float) -> None:
        """A launched step has ended: its launcher raised (failed) or checked its manifest (done)."""
        record = self.records[step.key]
        record["ended"] = time.time()
        error = future.exception()
        if error is not None:
            failures[step.key] = error
            record.update(state="failed", error=f"{type(error).__name__}: {error}"[:2000])
            self.echo(f"[{time.time() - began:7.1f} s] {step.key}: FAILED ({type(error).__name__}: "
                      f"{str(error)[:300]}){self._queue()}")
            return
        record["state"] = "done"
        self.echo(f"[{time.time() - began:7.1f} s] {step.key}: done in {record['ended'] - record['started']:.1f} s "
                  f"({record['launcher']}){self._queue()}")

    def _queue(self) -> str:
        counts: dict[str, int] = {}
        for record in self.records.values():
            counts[record["state"]] = counts.get(record["state"], 0) + 1
        shown = [f"{counts[s]} {s}" for s in ("running", "queued", "waiting") if counts.get(s)]
        return f"{QUEUE_MARK}{', '.join(shown)}" if shown else ""

    def _write_progress(self, final: bool = False) -> None:
        atomic_write_json(self.progress_file, {
            "driver": {"host": socket.gethostname(), "pid": os.getpid(), "active": not final},
            "updated": time.time(), "steps": self.records})


# ---------------------------------------------------------------------------------------------
# weam study status: the driver's view


def driver_running(work: Path) -> bool:
    """Whether a study run holds the work directory now (its flock; released when it dies)."""
    lock = Path(work) / WORK_LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def cluster_states(work: Path) -> dict[str, Verdict]:
    """Running and queued steps as the Ray driver of this work directory last wrote them, while it
    runs: ``running`` (ray task, node, PID, since when) and ``queued`` (submitted, waiting for
    resources). Empty unless the driver that wrote them holds the work directory now (a killed
    driver's file, or one left from before a later run, says nothing)."""
    path = Path(work) / PROGRESS_NAME
    try:
        progress = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    driver = progress.get("driver", {})
    holder = read_holder(Path(work) / WORK_LOCK_NAME)  # who holds the work dir: this driver, not a later run
    if not driver.get("active") or not driver_running(work) or \
            (holder.get("pid"), holder.get("host")) != (driver.get("pid"), driver.get("host")):
        return {}
    states = {}
    for key, record in progress.get("steps", {}).items():
        task = record.get("task_id", "")
        if record["state"] == "running" and record.get("parts"):
            since = time.strftime("%H:%M:%S", time.localtime(record["started"]))
            states[key] = Verdict("running", f"{record['parts']['done']}/{record['parts']['total']} parts done "
                                             f"(one ray task each) since {since}")
        elif record["state"] == "running" and record.get("launcher"):
            since = time.strftime("%H:%M:%S", time.localtime(record["started"]))
            states[key] = Verdict("running", f"{record['launcher']} since {since}")
        elif record["state"] == "running":
            since = time.strftime("%H:%M:%S", time.localtime(record["started"]))
            retry = f", attempt {record['attempts']}" if record.get("attempts", 1) > 1 else ""
            states[key] = Verdict("running", f"ray task {task} on {record['node']} pid {record['pid']} "
                                             f"since {since}{retry}")
        elif record["state"] == "queued":
            wanted = ", ".join(f"{n} {a:g}" for n, a in record.get("resources", {}).items())
            states[key] = Verdict("queued", f"ray task {task}, waiting for {wanted}")
    return states
