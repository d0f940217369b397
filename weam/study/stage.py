"""The report stage: the study report, read from the stage files of a study's work directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weam.core.config import StrictModel, not_result, result_config
from weam.core.layout import WEIGHT_FILES
from weam.core.manifest import write_manifest
from weam.core.tracking import RunLogger
from weam.stages import Stage, Step, work_relative


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


WORD_GOLD = Stage("word_gold", "weam.study.instrument.WordGoldConfig", run_word_gold, word_gold_identity,
                  "word-gold/<src>-<tgt>/", "data: one pair's train and held-out files (instrument check)")
PROBE = Stage("probe", "weam.study.instrument.ProbeConfig", run_probe, probe_identity,
              "probe/<arm>/<set>/seed<k>/ (base: probe/base/seed<k>/)",
              "a model's weights, held-out splits, word-gold (instrument check)", fresh=True)
REPORT = Stage("report", "weam.study.stage.ReportConfig", run_report, report_identity,
               "report/", "eval results.json, pretrain manifests", after_all=True)
