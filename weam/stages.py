"""The stage table: every stage of weam declared once (litgpt's single command table, for stages;
torchtitan's ``TrainSpec`` for what a row is).

A stage is one :class:`Stage` object living in its own package (``weam.data.stage``,
``weam.alignment.stage``, ``weam.training.stage``, ``weam.eval.stage``, ``weam.study.stage``): its
name, config class, fingerprint, run function, MLflow run name, tags and cost metrics. This module
keeps the table (rows referenced by dotted path, as configs are, and imported on first use), the
:class:`Step`, the one skip rule and :func:`execute`. It imports nothing above ``weam.core``, and no
generic code here tests a stage's name. Everything that runs or inspects a stage reads this table:
``weam study run`` (a loop over the plan), ``weam study status``, ``weam study reproduce``, the
config test and ``weam <stage>``.

One skip rule holds for every stage (:func:`verdict`): a stage is done exactly when the manifest
in its output folder records the same fingerprint of input contents (content hashes) and
result-affecting config (fields marked :func:`weam.core.config.not_result` left out). A stage whose
upstream stage is not done is stale too, so a changed setting re-runs that stage and everything
downstream of it.

Each stage execution is one MLflow run, opened and ended by :func:`execute` (nanoGPT's single
logger): named for what it is (``pretrain/<objective>/<condition>/seed<k>``), tagged with the
vocabulary of :mod:`weam.core.tracking`, with the resolved config as an artifact (``config/``, what
``reproduce`` reads) and the stage's cost metrics, whoever calls it: a study, the CLI or a cluster
job. The stage's function logs into the run it is handed and never opens or ends it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from weam.core.config import dump_config, result_config
from weam.core.errors import WeamError, writing_to
from weam.core.lock import lock_output
from weam.core.manifest import MANIFEST_NAME, Verdict, check_stage, package_versions, read_manifest
from weam.core.tracking import (
    TAG_CONDITION,
    TAG_GIT_COMMIT,
    TAG_LANGUAGE_SET,
    TAG_LANGUAGES,
    TAG_SEED,
    TAG_STAGE,
    TAG_STAGE_CONFIG,
    RunLogger,
    exit_status,
    flatten,
    nearest_store,
)

RUNNING_MARKER = ".running"
STARTED_NAME = ".fingerprint.json"
"""Written when a stage starts: a re-run resumes partial work only when it was started with the
same inputs and config (else the folder is cleared first)."""

STAGE_ROWS: dict[str, str] = {
    "data": "weam.data.stage:DATA",
    "tokenizer": "weam.training.stage:TOKENIZER",
    "base_init": "weam.training.stage:BASE_INIT",
    "align": "weam.alignment.stage:ALIGN",
    "budget": "weam.training.stage:BUDGET",
    "base": "weam.training.stage:BASE",
    "pretrain": "weam.training.stage:PRETRAIN",
    "tatoeba": "weam.eval.stage:TATOEBA",
    "eval": "weam.eval.stage:EVAL",
    "word_gold": "weam.study.stage:WORD_GOLD",
    "probe": "weam.study.stage:PROBE",
    "report": "weam.study.stage:REPORT",
}
"""Every stage, in the order a study runs them: name → ``module:object`` of its :class:`Stage`."""


# ---------------------------------------------------------------------------------------------
# Steps and the table

@dataclass
class Step:
    """One unit of work of a plan: a stage with its fully validated config."""

    key: str
    """Unique in the plan, also the MLflow run's name prefix: ``pretrain/diverse/seed0``."""
    stage: str
    """Row of :data:`STAGES`."""
    out_dir: Path
    config: BaseModel
    condition: str | None = None
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Arguments beside the config: ``src``/``tgt`` (align), ``model`` (eval), ``languages`` (a set's)."""
    language_set: str | None = None
    """The condition's language set (``s1``, …); None for the base model and shared steps."""
    work_dir: Path | None = None
    """The study's work directory (set by the plan): paths under it enter a fingerprint relative to
    it, so a moved or copied work directory is still done. None for a stage run on its own."""

    @property
    def kind(self) -> str:
        return self.stage



@dataclass(frozen=True)
class Stage:
    """One stage: what it is, how it is fingerprinted and run, and how its MLflow run looks."""

    name: str
    config: str
    """Dotted path of the config class (imported on use: the table imports no torch)."""
    function: Callable[[Step, RunLogger | None, dict[str, Any]], Any]
    """Runs the stage (assumed not done) and writes its manifest last; takes the step, its MLflow
    run (None on other ranks or without tracking), which it logs into and never ends, and the
    run's tags."""
    identity: Callable[[Step], tuple[dict[str, Path], dict[str, Any]]]
    """(input files whose content decides the result, result-affecting config): the fingerprint."""
    output: str
    """The output folder in a study's work directory (weam/core/layout.py)."""
    inputs: str
    """What the stage reads, in words."""
    fresh: bool = False
    """Clear the output folder before a run with another fingerprint (partial work is reusable
    only for the same fingerprint)."""
    run_name: Callable[[Step], str] | None = None
    """The MLflow run's name; None: the step's key (``align/en-fi``)."""
    tags: Callable[[Step], dict[str, Any]] | None = None
    """The stage's own tags, beside the generic ones (stage, condition, seed, language set)."""
    logs_own_params: bool = False
    """The function logs the run's params itself (training logs its whole config); else
    :func:`execute` logs the result-affecting config as params."""
    costs: Callable[[Step, dict[str, Any]], dict[str, float]] | None = None
    """Cost metrics from the manifest's counts; None: every numeric count as ``<stage>/<count>``."""
    resources: Callable[[Step], dict[str, float]] | None = None
    """What one execution asks of a cluster scheduler, in Ray's resource names (``CPU``, ``GPU``,
    custom ones); None: one CPU. Read by ``weam study run --ray-address`` (weam.study.ray_run)."""
    after_all: bool = False
    """The step reads what every earlier step of the plan wrote, found by a glob at run time (the
    report), so a scheduler starts it only after all of them; the sequential loop runs it last anyway."""
    gate: bool = False
    """A check whose failure makes every later step of the plan pointless (the budget): a scheduler
    starts the steps after it only once it has passed, as the sequential loop does."""
    launcher: Callable[[Step], Any] | None = None
    """How a cluster scheduler runs a step that one Ray task cannot (a pre-training run over several
    nodes): returns an object with ``describe() -> str`` and ``run(tracking, echo)`` (blocking: it
    starts the work elsewhere, waits, and raises if it failed), or None for an ordinary Ray task.
    Read by weam.study.ray_run; the sequential loop runs every step in-process."""

    parts: Callable[[Step], list[str]] | None = None
    """The step's independent pieces of work, by name (eval: one per (task, fine-tuning seed)), which
    a cluster scheduler may run at once, each as its own task with :attr:`resources`, through
    :attr:`run_part`; the step itself then runs through :func:`execute` and finds them done (it
    merges, logs and writes the manifest). None: one piece. The sequential loop never splits."""
    run_part: Callable[[Step, str], None] | None = None
    """Computes one part into the step's folder, logging nothing (see :func:`prepare_parts`)."""

    def config_class(self) -> type[BaseModel]:
        module, name = self.config.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)


def one_gpu(step: Step) -> dict[str, float]:
    """A :attr:`Stage.resources` rule: one GPU (and one CPU to feed it) for a step that trains or
    evaluates a model in one process."""
    return {"CPU": 1, "GPU": 1}


class StageTable(Mapping[str, Stage]):
    """The rows of :data:`STAGE_ROWS`, each imported on first use (so the table imports no stage)."""

    def __init__(self, rows: dict[str, str]):
        self._rows = dict(rows)
        self._loaded: dict[str, Stage] = {}

    def __getitem__(self, name: str) -> Stage:
        if name not in self._loaded:
            module, attr = self._rows[name].split(":")
            stage = getattr(importlib.import_module(module), attr)
            if stage.name != name:
                raise RuntimeError(f"stage table row {name!r} points to stage {stage.name!r} ({self._rows[name]})")
            self._loaded[name] = stage
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


STAGES = StageTable(STAGE_ROWS)
"""Every stage, in the order a study runs them."""


def table_rows() -> list[tuple[str, str, str, str, str]]:
    """(stage, config class, function, output, inputs): the table as printed by ``weam stages``."""
    return [(s.name, s.config, f"{s.function.__module__}.{s.function.__name__}", s.output, s.inputs)
            for s in STAGES.values()]


WORK = "<work>"


def work_relative(identity):
    """An identity whose config holds paths under the study's work directory with that prefix as
    ``<work>`` (input files count by content anyway), so moving the folder changes no fingerprint."""

    @functools.wraps(identity)
    def relative(step: Step):
        inputs, config = identity(step)
        if step.work_dir is None:
            return inputs, config
        root = str(Path(step.work_dir).resolve())

        def rewrite(value):
            if isinstance(value, dict):
                return {key: rewrite(item) for key, item in value.items()}
            if isinstance(value, list):
                return [rewrite(item) for item in value]
            if isinstance(value, str) and (value == root or value.startswith(root + os.sep)):
                return WORK + value[len(root):]
            return value

        return inputs, rewrite(config)

    return relative


def verdict(step: Step) -> Verdict:
    """The one skip rule, for any stage (see the module docstring)."""
    inputs, config = STAGES[step.stage].identity(step)
    return check_stage(step.out_dir, inputs, config)


def upstream(step: Step, steps: list[Step]) -> list[Step]:
    """The steps of the plan whose output folders hold one of this step's inputs."""
    inputs, _ = STAGES[step.stage].identity(step)
    folders = [Path(p).resolve() for p in inputs.values()]
    found = []
    for other in steps:
        if other is step:
            continue
        out = other.out_dir.resolve()  # once per step, not once per input: plans have ~50 steps, a step ~40 inputs
        if any(_within(f, out) for f in folders):
            found.append(other)
    return found


def _within(path: Path, folder: Path) -> bool:
    """``path.is_relative_to(folder)`` for two resolved paths, compared part by part: pathlib's own
    parses both paths again on every call, seconds of each plan check on a plan of ~50 steps."""
    return path.parts[: len(folder.parts)] == folder.parts


def plan_status(steps: list[Step]) -> dict[str, Verdict]:
    """Verdict of every step in plan order; a step downstream of a step not done is stale."""
    states: dict[str, Verdict] = {}
    for step in steps:
        pid = running_pid(step)
        if pid is not None:
            states[step.key] = Verdict("running", f"pid {pid}")
            continue
        current = verdict(step)
        if current.done:
            behind = [s.key for s in upstream(step, steps) if s.key in states and not states[s.key].done]
            if behind:
                current = Verdict("stale", f"upstream {behind[0]} is {states[behind[0]].state}")
        states[step.key] = current
    return states


def _needs(step: Step, steps: list[Step]) -> list[Step]:
    """The steps whose output ``step`` reads: :func:`upstream` (its input files), the steps whose
    folders its config names (a tokenizer or model folder no step has written yet), and those
    inside a folder it reads (``eval.data_dir`` holds the tatoeba step's sets). A ``work_dir``
    names where a stage keeps its own state, not what it reads."""
    named: list[Path] = []

    def walk(value, key=""):
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, name)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, key)
        elif key not in ("work_dir", "out_dir") and isinstance(value, (str, Path)) and os.path.isabs(str(value)):
            named.append(Path(value).resolve())

    walk(step.config.model_dump())
    walk({k: v for k, v in step.extra.items() if k in ("src", "tgt", "model")})
    found = upstream(step, steps)
    for other in steps:
        if other is step or other in found or STAGES[other.stage] is STAGES[step.stage]:
            continue
        folder = other.out_dir.resolve()
        if any(_within(path, folder) or _within(folder, path) for path in named):
            found.append(other)
    return found


def check_only(steps: list[Step], only: set[str]) -> list[Step]:
    """The steps of kinds ``only``, after checking that the selection can run: every kind is one of
    this plan's, and every upstream step left out is done. Refuses (WeamError) before any work,
    naming the kinds to add (``--only`` runs what it is told, it never falls back to other inputs)."""
    import difflib

    kinds = list(dict.fromkeys(step.stage for step in steps))
    unknown = []
    for name in sorted(only - set(kinds)):
        close = difflib.get_close_matches(name, kinds, n=1)
        unknown.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    if unknown:
        raise WeamError(f"--only: no step kind {', '.join(unknown)} in this study; its kinds: {','.join(kinds)}")
    chosen = [step for step in steps if step.stage in only]
    missing: dict[str, tuple[Step, Verdict]] = {}
    to_check = list(chosen)
    while to_check:  # what is missing, and what that needs in turn (the kinds to add)
        for before in _needs(to_check.pop(), steps):
            if before.stage in only or before.key in missing:
                continue
            state = verdict(before)
            if not state.done:
                missing[before.key] = (before, state)
                to_check.append(before)
    if missing:
        order = {step.key: index for index, step in enumerate(steps)}
        missing = dict(sorted(missing.items(), key=lambda item: order[item[0]]))
        shown = "; ".join(f"{key} ({state.state}{': ' + state.reason if state.reason else ''})"
                          for key, (_, state) in list(missing.items())[:6])
        more = f" and {len(missing) - 6} more" if len(missing) > 6 else ""
        needed = {s.stage for s, _ in missing.values()} | set(only)
        add = ",".join(name for name in kinds if name in needed)
        raise WeamError(f"--only {','.join(k for k in kinds if k in only)}: upstream steps are not done: "
                        f"{shown}{more}; run them first or add their kinds: --only {add}")
    return chosen


# ---------------------------------------------------------------------------------------------
# Running one stage: skip rule, MLflow run, manifest


@dataclass
class Tracking:
    """Where a stage logs: the store, the experiment, the parent run and the tags of the caller."""

    uri: str | None = None
    experiment: str = "weam"
    enabled: bool = True
    parent_run_id: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    buffer_dir: Path | None = None
    """Where runs wait while the server is unreachable (weam.core.tracking); None: beside the stage's folder."""


def execute(step: Step, tracking: Tracking | None = None, *, is_main: bool = True, force: bool = False) -> bool:
    """Run ``step`` unless it is done; returns True when it was skipped. The step's one MLflow run
    is opened and ended here; only the main process of a distributed job logs to MLflow. The
    step's folder is locked for the whole of it (whoever starts it: a study or a standalone
    ``weam <stage> run``; a second writer is refused, naming the first)."""
    with lock_output(step.out_dir) if is_main else contextlib.nullcontext():
        return _execute(step, tracking, is_main, force)


def _execute(step: Step, tracking: Tracking | None, is_main: bool, force: bool) -> bool:
    stage = STAGES[step.stage]
    current = verdict(step)
    if current.done and not force:
        return True
    inputs, config = stage.identity(step)
    if stage.fresh and is_main:
        _clear_other_attempt(step.out_dir, inputs, config)
    tracking = tracking or Tracking()
    tags = {**stage_tags(step), **provenance_tags(), **tracking.tags}
    logger = open_run(step, tracking, tags) if is_main and tracking.enabled else None
    started = time.time()
    with running(step.out_dir, enabled=is_main):
        try:
            with writing_to(step.out_dir, what=f"the {step.stage} stage's output"):
                stage.function(step, logger, tags)
        except BaseException as exc:  # KILLED on Ctrl-C or SIGTERM, FAILED otherwise (weam.core.tracking)
            if logger:
                logger.end(exit_status(exc))
            raise
    if logger:
        log_costs(step, logger, time.time() - started)
        logger.end("FINISHED")
    return False


def run_name(step: Step) -> str:
    """What a run is: ``pretrain/<objective>/<condition>/seed<k>``, ``eval/<task>/<condition>/seed<k>``,
    ``base/mlm/seed<k>`` (each stage names its own), else the step's key (``align/en-fi``)."""
    stage = STAGES[step.stage]
    return stage.run_name(step) if stage.run_name else step.key


def stage_tags(step: Step) -> dict[str, Any]:
    stage = STAGES[step.stage]
    tags: dict[str, Any] = {TAG_STAGE: step.stage, TAG_STAGE_CONFIG: stage.config}
    if step.condition is not None:
        tags[TAG_CONDITION] = step.condition
    if step.seed is not None:
        tags[TAG_SEED] = step.seed  # the pre-training seed; eval's fine-tuning seed is weam.finetune_seed
    if step.language_set is not None:
        tags[TAG_LANGUAGE_SET] = step.language_set
        if "languages" in step.extra:
            tags[TAG_LANGUAGES] = ",".join(step.extra["languages"])
    if stage.tags:
        tags.update(stage.tags(step))
    return tags


@functools.cache
def provenance_tags() -> dict[str, str]:
    """Git commit and package versions: logged on every stage run for reproducibility."""
    tags = {f"weam.version.{name}": version for name, version in package_versions().items()}
    try:
        root = Path(__file__).resolve().parents[1]
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        if commit:
            tags[TAG_GIT_COMMIT] = commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return tags




def open_run(step: Step, tracking: Tracking, tags: dict[str, Any]) -> RunLogger:
    """The stage's MLflow run with its tags, its result-affecting params and its resolved config
    (``config/<stage>.yaml`` and ``config/step.json``: what ``weam study reproduce`` reads)."""
    from weam.core.tracking import default_buffer_dir, resolve_tracking_uri

    uri = tracking.uri or resolve_tracking_uri(None, nearest_store(step.out_dir) or step.out_dir)
    logger = RunLogger(uri, tracking.experiment, run_name(step), parent_run_id=tracking.parent_run_id,
                       tags=tags, buffer_dir=tracking.buffer_dir or default_buffer_dir(step.out_dir.parent),
                       system_metrics=False)
    if not STAGES[step.stage].logs_own_params:
        logger.log_params(flatten(result_config(step.config)))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"{step.stage}.yaml").write_text(dump_config(step.config), encoding="utf-8")
        description = {"key": step.key, "stage": step.stage, "out_dir": str(step.out_dir),
                       "condition": step.condition, "seed": step.seed, "language_set": step.language_set,
                       "extra": {k: str(step.extra[k]) for k in ("src", "tgt", "model") if k in step.extra}}
        (Path(tmp) / "step.json").write_text(json.dumps(description, indent=2), encoding="utf-8")
        logger.log_artifact(Path(tmp) / f"{step.stage}.yaml", "config")
        logger.log_artifact(Path(tmp) / "step.json", "config")
    return logger


def log_costs(step: Step, logger: RunLogger, seconds: float) -> None:
    """Cost metrics from the stage's manifest (the source of truth), at the final step."""
    manifest = read_manifest(step.out_dir) or {}
    counts = manifest.get("counts", {})
    costs = STAGES[step.stage].costs
    metrics: dict[str, float] = {f"{step.stage}/wall_seconds": seconds}
    if costs is not None:
        metrics.update(costs(step, counts))
    else:
        metrics.update({f"{step.stage}/{k}": v for k, v in flatten(counts).items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)})
    logger.log_metrics(metrics, step=counts.get("steps"))
    hashes = ",".join(f"{k}:{v['sha256'][:12]}" for k, v in sorted(manifest.get("inputs", {}).items()))
    if hashes:
        logger.set_tags({"weam.input_sha256": hashes[:5000]})


def prepare_parts(step: Step) -> None:
    """Before a step's parts run: what :func:`execute` does first (clear a stale attempt's folder
    of a ``fresh`` stage, record the fingerprint started), so that execute, run after the parts,
    keeps what they wrote."""
    stage = STAGES[step.stage]
    if stage.fresh:
        inputs, config = stage.identity(step)
        _clear_other_attempt(step.out_dir, inputs, config)


def _clear_other_attempt(out_dir: Path, inputs: dict[str, Path], config: dict[str, Any]) -> None:
    """Partial or finished work of another fingerprint is removed; that of this one is resumed."""
    from weam.core.manifest import atomic_write_json, content_hash, fingerprint

    marker = out_dir / STARTED_NAME
    hashes = {k: content_hash(v) if Path(v).is_file() else "missing" for k, v in sorted(inputs.items())}
    wanted = fingerprint(hashes, config)
    if out_dir.is_dir():
        try:
            started = json.loads(marker.read_text(encoding="utf-8")).get("fingerprint")
        except (OSError, ValueError):
            started = None
        has_work = (out_dir / MANIFEST_NAME).exists() or started is not None
        if has_work and (started != wanted or (out_dir / MANIFEST_NAME).exists()):
            shutil.rmtree(out_dir)
    atomic_write_json(marker, {"fingerprint": wanted})


class running:
    """A ``.<name>.running`` file beside the folder, holding our PID while a stage runs."""

    def __init__(self, folder: Path, enabled: bool = True):
        self.path = running_marker(folder)
        self.enabled = enabled

    def __enter__(self):
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.path.unlink(missing_ok=True)


def running_marker(folder: Path) -> Path:
    return Path(folder).parent / f".{Path(folder).name}{RUNNING_MARKER}"


def running_pid(step: Step) -> int | None:
    """The PID of a live process running the step (its marker), else None."""
    try:
        pid = int(running_marker(step.out_dir).read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None

