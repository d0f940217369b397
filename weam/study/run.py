"""Run a study's plan locally: a loop over the steps of the stage table, skipping what is done.

The plan is built by :mod:`weam.study.plan`; each step runs through :func:`weam.stages.execute`,
which applies the one skip rule and writes the step's manifest and MLflow run. What is left here
is the study's own bookkeeping: one MLflow experiment per study, a parent run per condition
(tagged with its role and its sets' mean diversity), and the tags every stage run of the study carries.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from weam.stages import Step, Tracking, check_only, execute, provenance_tags
from weam.study.config import StudyConfig, diversity
from weam.study.config import BASE_CONDITION  # noqa: F401 - the study's API
from weam.study.plan import build_plan, load_study  # noqa: F401 - the study's API
from weam.core.tracking import (
    TAG_CONDITION,
    TAG_FAMILIES,
    TAG_N_FAMILIES,
    TAG_ROLE,
    TAG_STAGE,
    TAG_STUDY,
    ParentRuns,
    RunLogger,
    default_buffer_dir,
    find_run,
    resolve_tracking_uri,
    run_name,
)


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

    def run(self, only: set[str] | None = None) -> None:
        started = time.time()
        # --only: refused before any work when a kind is unknown or an upstream step left out is not done.
        chosen = check_only(self.steps, only) if only else self.steps
        with self._parents:  # condition runs end FINISHED, FAILED or KILLED with the steps
            for step in chosen:
                t0 = time.time()
                skipped = execute(step, self.tracking(step))
                status = "skipped (finished)" if skipped else f"done in {time.time() - t0:.1f} s"
                self.echo(f"[{time.time() - started:7.1f} s] {step.key}: {status}")

    def tracking(self, step: Step) -> Tracking:
        """The study's store and experiment, the condition's parent run, the study's tags."""
        tags: dict[str, Any] = {TAG_STUDY: self.study.name}
        parent = None
        if step.condition is not None:
            tags[TAG_ROLE] = self.role(step.condition)
            if self.study.tracking.enabled:
                parent = self.parent_run(step.condition)
        return Tracking(self.uri, self.study.name, self.study.tracking.enabled, parent, tags, self.buffer_dir)

    def find_run(self, **tags: Any) -> Any | None:
        """The newest finished run of this study with these tags, else the newest at all, else None."""
        return find_run(self.uri, self.study.name, {TAG_STUDY: self.study.name, **tags}, self.buffer_dir)

    def parent_run(self, condition: str) -> str:
        """The condition's parent run (created once per study, then found by its tags)."""
        return self._parents.get(condition, lambda: self._open_parent(condition)).run_id

    def _open_parent(self, condition: str) -> RunLogger:
        existing = self.find_run(**{TAG_STAGE: "condition", TAG_CONDITION: condition})
        if existing is not None:
            return RunLogger(self.uri, self.study.name, existing.info.run_name, run_id=existing.info.run_id,
                             resume=True, buffer_dir=self.buffer_dir, system_metrics=False)
        tags = {TAG_STUDY: self.study.name, TAG_STAGE: "condition", TAG_CONDITION: condition,
                TAG_ROLE: self.role(condition), **self.provenance}
        params: dict[str, Any] = {"token_budget": self.study.token_budget, "seeds": self.study.seeds,
                                  "held_out": ",".join(self.study.held_out)}
        sets = self.study.language_sets(condition) if self.condition_spec(condition) is not None else []
        measure: dict[str, float] = {}
        if sets:
            # The condition's diversity: the mean over its sets (each set's languages are on its runs' tags).
            per_set = [diversity(list(s.languages)) for s in sets]
            measure = {k: round(sum(m[k] for m in per_set) / len(per_set), 4) for k in per_set[0]}
            families = sorted({family for s in sets for family in s.families})
            tags.update({TAG_FAMILIES: ",".join(families), TAG_N_FAMILIES: measure["n_families"]})
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

    def role(self, condition: str) -> str:
        spec = self.condition_spec(condition)
        return spec.role if spec is not None else "baseline"
