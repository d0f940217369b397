"""The report's reader: a study's scores, costs and conditions as tables (:class:`StudyRuns`), then
the tidy score table every analysis works on (:func:`tidy_scores`).

The stage files under the work directory are the source of truth (:mod:`weam.study.results`); the
conditions come from the study config. The MLflow reader (runs tagged as :mod:`weam.study.run`
writes them) stays for a report on a tracking store alone (``weam study report`` without files, the
MLflow UI tests and benchmarks/mlflow_compare_screenshot.py). Tidy columns: those of
:mod:`weam.study.stats` plus ``languages`` (the run's set, comma-separated) and ``kind``:

* ``held-out``: a zero-shot target (every test is on these);
* ``own``: a language of the run's own set, on its held-out split (the positive control);
* ``other``: a language some other set trains on (shown, not used).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from weam.core.errors import WeamError
from weam.core.languages import get_language
from weam.core.tracking import (TAG_CONDITION, TAG_EVAL_SEED, TAG_FAMILIES, TAG_LANGUAGE_SET, TAG_LANGUAGES,
                                TAG_N_FAMILIES, TAG_ROLE, TAG_SEED, TAG_STAGE, TAG_STUDY, TAG_TASK)
from weam.study.config import BASE_CONDITION, diversity

AGGREGATES = {"avg", "low_resource"}
IGNORED_STATUSES = {"FAILED", "KILLED"}
UNLABELED_COLUMNS = ["task", "language", "reason", "runs"]


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
    unlabeled: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=UNLABELED_COLUMNS))
    """Cells evaluated without a score: task, language, reason (from each results.json's ``unlabeled``)."""



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
        return StudyRuns(eid, conditions, scores, _costs_from_files(work_dir), notes, read_unlabeled(work_dir, task))

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
    unlabeled = read_unlabeled(work_dir, task) if work_dir is not None else pd.DataFrame(columns=UNLABELED_COLUMNS)
    return StudyRuns(eid, conditions, scores, costs, notes, unlabeled)


def read_unlabeled(work_dir: Path, task: str | None = None) -> pd.DataFrame:
    """Every (task, language) some finished evaluation left without a score, with eval's reason (no
    gold labels in the split, no file in the download) and how many runs left it so."""
    import json

    from weam.core.manifest import read_manifest
    from weam.study.results import _run_folders

    rows: dict[tuple[str, str], dict] = {}
    for folder, _, _ in _run_folders(Path(work_dir), "eval"):
        manifest = read_manifest(folder)
        if manifest is None or manifest.get("stage") != "eval":
            continue
        for results_file in sorted(folder.glob("*/results.json")):
            results = json.loads(results_file.read_text(encoding="utf-8"))
            name = results.get("task", results_file.parent.name)
            if task is not None and name != task:
                continue
            for lang, reason in (results.get("unlabeled") or {}).items():
                row = rows.setdefault((name, lang), {"task": name, "language": lang, "reason": reason, "runs": 0})
                row["runs"] += 1
    return pd.DataFrame(list(rows.values()), columns=UNLABELED_COLUMNS)


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
