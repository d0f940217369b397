"""The study report: scores per condition, language and family; treatment − control with paired
bootstrap CIs; training cost; how to look at the same runs in the MLflow UI.

Input: the study's MLflow experiment, in the structure :mod:`weam.study.run` writes (one parent
run per condition tagged ``weam.stage=condition`` and ``weam.role``; per seed a ``pretrain`` run
with ``train/*`` cost metrics; per seed and task an ``eval`` run with ``<task>/<metric>/<lang>``
scores). Output: ``<out_dir>/report.md`` and PNG plots beside it, also logged as artifacts of a
``weam.stage=report`` run in the same experiment.

Aggregates are recomputed from the per-language scores (so every table and every confidence
interval rests on the same numbers): a condition's score for a group of languages is, per seed,
the mean over those languages; tables show mean ± sample std (ddof=1) over seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from weam.errors import WeamError
from weam.languages import get_language
from weam.manifest import atomic_write_text
from weam.study import plots
from weam.study.stats import compare, pair_by_rank
from weam.tracking import TAG_CONDITION, TAG_SEED, TAG_STAGE, TAG_STUDY, TAG_TASK, RunLogger

TAG_ROLE = "weam.role"
TAG_FAMILIES = "weam.families"
TAG_N_FAMILIES = "weam.n_families"
TAG_EVAL_SEED = "weam.eval_seed"
"""Fine-tuning seed of an eval run (weam.seed is the pre-training seed)."""
AGGREGATES = {"avg", "low_resource"}
IGNORED_STATUSES = {"FAILED", "KILLED"}
MIN_BOOTSTRAP_UNITS = 6
"""Below this many paired units a bootstrap interval is little more than the range of the data."""


@dataclass
class StudyRuns:
    """What the report reads from MLflow, as tables."""

    experiment_id: str
    conditions: pd.DataFrame
    """One row per condition: condition, role, families, n_families, run_id."""
    scores: pd.DataFrame
    """One row per score: condition, seed, task, metric, lang, value, run_id."""
    costs: pd.DataFrame
    """One row per pretrain run: condition, seed, run_id, and every ``train/*`` metric."""
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Reading MLflow


def _search(client, experiment_id: str, study: str, **tags: str) -> list[Any]:
    clauses = [f"tags.`{TAG_STUDY}` = '{study}'"] + [f"tags.`{k}` = '{v}'" for k, v in tags.items()]
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], " and ".join(clauses), max_results=1000, page_token=token)
        runs.extend(run for run in page if run.info.status not in IGNORED_STATUSES)
        token = page.token
        if not token:
            return runs


def _newest(runs: list[Any], key) -> dict[Any, Any]:
    """The newest run per key (a re-run replaces an older one)."""
    chosen: dict[Any, Any] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        chosen[key(run)] = run
    return chosen


def load_study_runs(tracking_uri: str, study: str, task: str | None = None) -> StudyRuns:
    """Read the study's condition, pretrain and eval runs; WeamError names whatever is missing."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        raise WeamError(f"no MLflow experiment named '{study}' at {tracking_uri} (has the study run?)")
    eid = experiment.experiment_id
    parents = _newest(_search(client, eid, study, **{TAG_STAGE: "condition"}), lambda r: r.data.tags.get(TAG_CONDITION))
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
    scores = _read_scores(client, eid, study, task, conditions, notes)
    costs = _read_costs(client, eid, study)
    return StudyRuns(eid, conditions, scores, costs, notes)


def _read_scores(client, eid: str, study: str, task: str | None, conditions: pd.DataFrame, notes: list[str]):
    tags = {TAG_STAGE: "eval", **({TAG_TASK: task} if task else {})}
    runs = _newest(
        _search(client, eid, study, **tags),
        lambda r: tuple(r.data.tags.get(t) for t in (TAG_CONDITION, TAG_SEED, TAG_TASK, TAG_EVAL_SEED)),
    )
    if not runs:
        what = f"for task {task}" if task else "(tag weam.stage=eval)"
        raise WeamError(f"study '{study}' has no eval runs {what}")
    rows, ignored = [], set()
    for (condition, seed, run_task, eval_seed), run in runs.items():
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
            rows.append({"condition": condition, "seed": seed, "eval_seed": eval_seed or "", "task": run_task,
                         "metric": parts[1], "lang": lang, "value": value, "run_id": run.info.run_id})
    if ignored:
        notes.append(f"metrics not read (no registry language): {', '.join(sorted(ignored))}")
    raw = pd.DataFrame(rows, columns=["condition", "seed", "eval_seed", "task", "metric", "lang", "value", "run_id"])
    _check_complete(raw, conditions, task)
    return _merge_eval_seeds(_drop_duplicate_score(raw, notes), notes)


def _merge_eval_seeds(raw: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """One score per pre-training seed: the mean over fine-tuning seeds (tag weam.eval_seed)."""
    keys = ["condition", "seed", "task", "metric", "lang"]
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
        wide = part.pivot_table(index=["condition", "seed", "eval_seed", "lang"], columns="metric", values="value")
        twin = next((m for m in wide.columns if m != "score" and "score" in wide and wide[m].equals(wide["score"])), None)
        if twin is not None:
            notes.append(f"{task}/score repeats {task}/{twin} and is not shown separately")
            part = part[part["metric"] != "score"]
        keep.append(part)
    return pd.concat(keep, ignore_index=True)


def _check_complete(scores: pd.DataFrame, conditions: pd.DataFrame, task: str | None) -> None:
    """Every compared condition has eval runs for every task, and every run scores every language."""
    compared = conditions.loc[conditions["role"].isin(["treatment", "control"]), "condition"]
    tasks = [task] if task else sorted(scores["task"].unique())
    for name in compared:
        for t in tasks:
            if scores[(scores["condition"] == name) & (scores["task"] == t)].empty:
                raise WeamError(f"condition {name} has no eval runs for task {t}")
    for (t, metric), group in scores.groupby(["task", "metric"]):
        langs = set(group["lang"])
        for (condition, seed, eval_seed), cell in group.groupby(["condition", "seed", "eval_seed"]):
            missing = sorted(langs - set(cell["lang"]))
            if missing:
                fine_tuning = f" (fine-tuning seed {eval_seed})" if eval_seed else ""
                raise WeamError(
                    f"condition {condition} seed {seed}{fine_tuning}: eval run {cell['run_id'].iloc[0]} has no "
                    f"{t}/{metric} score for {', '.join(missing)} (other runs have them)"
                )


def _read_costs(client, eid: str, study: str) -> pd.DataFrame:
    runs = _newest(
        _search(client, eid, study, **{TAG_STAGE: "pretrain"}),
        lambda r: (r.data.tags.get(TAG_CONDITION), r.data.tags.get(TAG_SEED)),
    )
    rows = [
        {"condition": condition, "seed": seed, "run_id": run.info.run_id,
         **{k: v for k, v in run.data.metrics.items() if k.startswith("train/") and k != "train/loss"}}
        for (condition, seed), run in runs.items()
    ]
    return pd.DataFrame(rows, columns=None if rows else ["condition", "seed", "run_id"])


# ---------------------------------------------------------------------------------------------
# Tables


def seed_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Per condition, seed, task, metric: the mean over languages of each group (avg, low_resource,
    family/<F>), one column per group."""
    frame = scores.copy()
    frame["family"] = frame["lang"].map(lambda code: get_language(code).family)
    frame["low"] = frame["lang"].map(lambda code: get_language(code).low_resource)
    keys = ["task", "metric", "condition", "seed"]
    table = frame.groupby(keys)["value"].mean().rename("avg").to_frame()
    low = frame[frame["low"]].groupby(keys)["value"].mean().rename("low_resource")
    table = table.join(low)
    for family, part in frame.groupby("family"):
        table = table.join(part.groupby(keys)["value"].mean().rename(f"family/{family}"))
    return table.reset_index()


def summarize_over_seeds(frame: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """Mean, sample std and seed count of ``columns`` for each ``keys`` group."""
    grouped = frame.groupby(keys)[columns]
    out = grouped.mean().add_suffix(" mean").join(grouped.std(ddof=1).add_suffix(" std"))
    out["seeds"] = frame.groupby(keys)["seed"].nunique()
    return out.reset_index()


def paired_units(scores: pd.DataFrame, treatment: str, control: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Treatment and control scores side by side, matched on language and seed rank."""
    t = scores[scores["condition"] == treatment]
    c = scores[scores["condition"] == control]
    pairs = pair_by_rank(sorted(t["seed"].unique()), sorted(c["seed"].unique()))
    rank = {("t", ts): i for i, (ts, _) in enumerate(pairs)} | {("c", cs): i for i, (_, cs) in enumerate(pairs)}
    t = t.assign(rank=t["seed"].map(lambda s: rank.get(("t", s)))).dropna(subset=["rank"])
    c = c.assign(rank=c["seed"].map(lambda s: rank.get(("c", s)))).dropna(subset=["rank"])
    merged = t.merge(c, on=["task", "metric", "lang", "rank"], suffixes=("_t", "_c"))
    merged["low"] = merged["lang"].map(lambda code: get_language(code).low_resource)
    merged["family"] = merged["lang"].map(lambda code: get_language(code).family)
    return merged, pairs


def difference_table(units: pd.DataFrame, n_resamples: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Treatment − control per task, metric and language group, with bootstrap CI and p-value."""
    rows = []
    for (task, metric), part in units.groupby(["task", "metric"]):
        groups: list[tuple[str, pd.DataFrame]] = [("all held-out", part), ("low-resource", part[part["low"]])]
        groups += [(f"family: {family}", sub) for family, sub in part.groupby("family")]
        for name, sub in groups:
            rows.append({"task": task, "metric": metric, "group": name, "unit": "seed × language",
                         **_compare_row(sub["value_t"], sub["value_c"], n_resamples, seed)})
        per_seed = part.groupby("rank")[["value_t", "value_c"]].mean()
        rows.append({"task": task, "metric": metric, "group": "all held-out", "unit": "seed (mean over languages)",
                     **_compare_row(per_seed["value_t"], per_seed["value_c"], n_resamples, seed)})
    return pd.DataFrame(rows)


def _compare_row(t: pd.Series, c: pd.Series, n_resamples: int, seed: int) -> dict[str, Any]:
    if t.empty:
        return {"n": 0, "diff": math.nan, "low": math.nan, "high": math.nan, "p": math.nan,
                "significant": False, "statement": "no languages in this group"}
    result = compare(t.to_numpy(), c.to_numpy(), n_resamples=n_resamples, seed=seed)
    statement, significant = result.statement(), result.significant
    if result.n_units < MIN_BOOTSTRAP_UNITS:
        statement = (f"{result.mean_diff:+.4f}; only {result.n_units} units, too few for a bootstrap CI "
                     "to decide: read the permutation p")
        significant = False
    return {"n": result.n_units, "diff": result.mean_diff, "low": result.low, "high": result.high,
            "p": math.nan if result.p_value is None else result.p_value,
            "significant": significant, "statement": statement}


def _cost_order(column: str) -> tuple[int, str]:
    """Tokens first, then tokens per pair, then time and hours."""
    rank = 0 if column == "train/tokens" else 1 if column.startswith("train/tokens/") else 2
    return rank, column


def cost_table(costs: pd.DataFrame, conditions: pd.DataFrame) -> pd.DataFrame:
    """Per condition: seeds, mean tokens (total and per pair) per seed, and summed hours."""
    rows = []
    for name in conditions["condition"]:
        part = costs[costs["condition"] == name] if not costs.empty else costs
        row: dict[str, Any] = {"condition": name, "pretrain runs": len(part)}
        for column in sorted((c for c in part.columns if c.startswith("train/")), key=_cost_order):
            values = part[column].dropna()
            if column.endswith("_hours") or column == "train/wall_seconds":
                row[f"{column} (sum)"] = values.sum() if not values.empty else math.nan
            else:
                row[f"{column} (mean/seed)"] = values.mean()
        rows.append(row)
    return pd.DataFrame(rows)


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


def mean_std(mean: float, std: float) -> str:
    return f"{_fmt(mean)} ± {_fmt(std)}"


def language_label(code: str) -> str:
    language = get_language(code)
    return f"{code}{'*' if language.low_resource else ''}"


def _condition_section(seeds: pd.DataFrame, conditions: pd.DataFrame) -> str:
    columns = [c for c in seeds.columns if c == "avg" or c == "low_resource" or c.startswith("family/")]
    summary = summarize_over_seeds(seeds, ["condition"], columns)
    roles = dict(zip(conditions["condition"], conditions["role"]))
    table = pd.DataFrame(
        {
            "condition": summary["condition"],
            "role": summary["condition"].map(lambda name: roles.get(name, "unknown")),
            "seeds": summary["seeds"],
            **{name: [mean_std(m, s) for m, s in zip(summary[f"{name} mean"], summary[f"{name} std"])]
               for name in columns},
        }
    )
    return markdown_table(table)


def _language_section(scores: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    summary = summarize_over_seeds(scores, ["lang", "condition"], ["value"])
    wide = summary.pivot(index="lang", columns="condition")
    rows = []
    for code in wide.index:
        language = get_language(code)
        row = {"language": f"{language_label(code)} ({language.name})", "family": language.family,
               "low-resource": "yes" if language.low_resource else "no"}
        for condition in wide["value mean"].columns:
            row[condition] = mean_std(wide.loc[code, ("value mean", condition)], wide.loc[code, ("value std", condition)])
        rows.append(row)
    return markdown_table(pd.DataFrame(rows)), summary


def _difference_section(diffs: pd.DataFrame) -> str:
    table = pd.DataFrame(
        {
            "group": diffs["group"],
            "unit": diffs["unit"],
            "n": diffs["n"],
            "treatment − control": diffs["diff"],
            "95 % CI": [f"[{_fmt(lo)}, {_fmt(hi)}]" for lo, hi in zip(diffs["low"], diffs["high"])],
            "permutation p": diffs["p"],
            "statement": diffs["statement"],
        }
    )
    return markdown_table(table)


def _cost_section(costs: pd.DataFrame, conditions: pd.DataFrame) -> str:
    table = cost_table(costs, conditions)
    lines = [markdown_table(table, digits=3)]
    compared = table[table["condition"].isin(conditions.loc[conditions["role"].isin(["treatment", "control"]), "condition"])]
    tokens = compared.get("train/tokens (mean/seed)")
    if tokens is not None and tokens.notna().sum() >= 2 and tokens.min() > 0:
        spread = (tokens.max() - tokens.min()) / tokens.min()
        lines.append(
            f"\nToken budgets differ by {spread:.2%} between treatment and control "
            "(largest vs smallest mean per seed; the baseline is not part of the comparison)."
        )
    missing = table.loc[table["pretrain runs"] == 0, "condition"].tolist()
    if missing:
        lines.append(f"\nNo pretrain runs found for: {', '.join(missing)} (their cost is unknown).")
    return "\n".join(lines)


def compare_url(base_url: str, experiment_id: str, run_ids: list[str]) -> str:
    """The MLflow UI's compare-runs page for these runs."""
    runs = ",".join(f'"{r}"' for r in run_ids)
    return f"{base_url.rstrip('/')}/#/compare-runs?runs=[{runs}]&experiments=[\"{experiment_id}\"]"


def _chart_link(tracking_uri: str, runs: StudyRuns, task: str, metric: str) -> str:
    """A link to the UI's chart view of the eval runs, grouped by condition, plotting the primary
    metric (weam.tracking.chart_view); empty when the view cannot be stored."""
    from mlflow.tracking import MlflowClient

    from weam.tracking import chart_view, chart_view_url, is_remote

    try:
        key = chart_view(MlflowClient(tracking_uri), runs.experiment_id, f"{task}/{metric}/avg",
                         search_filter=f"tags.`{TAG_STAGE}` = 'eval' and tags.`{TAG_TASK}` = '{task}'",
                         extra_metrics=(f"{task}/{metric}/low_resource",))
    except Exception:  # noqa: BLE001 - the link is a convenience; the report stands without it
        return ""
    base = tracking_uri if is_remote(tracking_uri) else "http://127.0.0.1:5000"
    return (f"Opens on {task}/{metric}/avg (and low_resource) per `{TAG_CONDITION}`, averaged over the eval runs "
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
   Eval runs are nested under their pretrain run, so the table lists the pretrain rows: expand them (+)
   to see the eval runs.
2. Under *Columns*, add the tags `{TAG_CONDITION}`, `{TAG_SEED}`, `{TAG_ROLE}` (on the condition rows) and
   the metrics `{task}/{metric}/avg`, `{task}/{metric}/low_resource` and the per-language ones
   (`{task}/{metric}/<lang>`); group by `{TAG_CONDITION}` to see both conditions side by side.
3. Select the eval runs and press *Compare*: the compare view's parallel-coordinates and scatter plots take
   `{task}/{metric}/avg` against `{task}/{metric}/low_resource`; the table at the bottom lists every metric
   and tag per run. Direct link (replace the host):
   `{compare_url("http://127.0.0.1:5000", runs.experiment_id, eval_ids)}`
4. Training cost: filter `tags.`{TAG_STAGE}` = 'pretrain'` and add `train/tokens`, `train/cpu_hours`
   (or `train/gpu_hours`) and `train/wall_seconds` as columns.

The UI shows logged aggregates; this report recomputes every aggregate from the per-language scores."""


def render_report(runs: StudyRuns, study: str, tracking_uri: str, out_dir: Path, diffs: pd.DataFrame,
                  pairs: list[tuple[str, str]]) -> str:
    """The whole markdown report; writes the plots into ``out_dir`` as it goes."""
    conditions = runs.conditions
    treatment = conditions.loc[conditions["role"] == "treatment", "condition"].iloc[0]
    control = conditions.loc[conditions["role"] == "control", "condition"].iloc[0]
    parts = [
        f"# Study report: {study}\n",
        f"Tracking store: `{tracking_uri}`, experiment id {runs.experiment_id}. "
        f"Treatment (family-diverse): **{treatment}**; control (single-family): **{control}**.\n",
        markdown_table(conditions[["condition", "role", "families", "n_families", "run_id"]]),
        "\nScores: per seed, the mean over the languages of a group; shown as mean ± sample std (ddof=1) "
        "over seeds. Low-resource languages (Joshi class ≤ 2) are marked `*`.",
    ]
    seeds = seed_scores(runs.scores)
    for (task, metric), part in runs.scores.groupby(["task", "metric"]):
        slug = f"{task}_{metric}".replace("/", "_")
        lang_md, lang_summary = _language_section(part)
        sub_diffs = diffs[(diffs["task"] == task) & (diffs["metric"] == metric)]
        plots.language_plot(lang_summary, out_dir / f"{slug}_languages.png", f"{task} {metric}", language_label)
        plots.difference_plot(sub_diffs, out_dir / f"{slug}_difference.png", f"{task} {metric}: {treatment} − {control}")
        parts += [
            f"\n## {task} — {metric}\n",
            "### Per condition\n",
            _condition_section(seeds[(seeds["task"] == task) & (seeds["metric"] == metric)], conditions),
            "\n### Per held-out language\n",
            lang_md,
            f"\n![{task} {metric} per language]({slug}_languages.png)\n",
            f"### Difference {treatment} − {control}\n",
            _difference_section(sub_diffs),
            f"\n![difference]({slug}_difference.png)\n",
        ]
    parts += [
        "\n## Statistics\n",
        "Paired units: one (seed, language) cell. Seeds are paired by rank (the k-th smallest seed of the "
        "treatment with the k-th smallest of the control), not by value: "
        + ", ".join(f"{t} ↔ {c}" for t, c in pairs)
        + ". 95 % CI: scipy.stats.bootstrap (BCa, 10,000 paired resamples, seed 0); p: paired permutation test "
        "(sign flips, exact when 2^n ≤ 10,000). A difference is called significant when the CI excludes 0 "
        f"and rests on at least {MIN_BOOTSTRAP_UNITS} units. Units sharing a seed are not independent, so the "
        "seed × language interval is optimistic; the 'seed (mean over languages)' row is the conservative "
        f"check (with {len(pairs)} seed pairs its p cannot go below {2 / 2 ** len(pairs):.3g}).",
        "\n## Training cost\n",
        _cost_section(runs.costs, conditions),
        "\n## How to compare in the MLflow UI\n",
        _ui_section(runs, study, tracking_uri),
    ]
    if runs.notes:
        parts += ["\n## Notes\n", *[f"- {note}" for note in runs.notes]]
    return "\n".join(parts) + "\n"


def write_report(
    tracking_uri: str, study: str, out_dir: Path, *, task: str | None = None, log_to_mlflow: bool = True
) -> Path:
    """Read the study's runs, write ``out_dir/report.md`` and its plots, log them to a report run."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = load_study_runs(tracking_uri, study, task)
    treatment = runs.conditions.loc[runs.conditions["role"] == "treatment", "condition"].iloc[0]
    control = runs.conditions.loc[runs.conditions["role"] == "control", "condition"].iloc[0]
    units, pairs = paired_units(runs.scores, treatment, control)
    for side, name in enumerate((treatment, control)):
        paired = {pair[side] for pair in pairs}
        unpaired = sorted(set(runs.scores.loc[runs.scores["condition"] == name, "seed"]) - paired)
        if unpaired:
            runs.notes.append(f"{name}: seeds {', '.join(unpaired)} have no partner in the other condition and "
                              "are left out of the differences (kept in the per-condition tables)")
    diffs = difference_table(units)
    text = render_report(runs, study, tracking_uri, out_dir, diffs, pairs)
    report = out_dir / "report.md"
    atomic_write_text(report, text)
    diffs.to_csv(out_dir / "differences.csv", index=False)
    if log_to_mlflow:
        _log_report(tracking_uri, study, out_dir, diffs)
    return report


def _log_report(tracking_uri: str, study: str, out_dir: Path, diffs: pd.DataFrame) -> str | None:
    logger = RunLogger(tracking_uri, study, "report", tags={TAG_STUDY: study, TAG_STAGE: "report"})
    metrics = {}
    for row in diffs[diffs["unit"] == "seed × language"].itertuples():
        group = {"all held-out": "overall", "low-resource": "low_resource"}.get(row.group, row.group)
        group = group.replace("family: ", "family/")
        for name, value in (("diff", row.diff), ("ci_low", row.low), ("ci_high", row.high)):
            if not math.isnan(value):
                metrics[f"{row.task}/{row.metric}/{name}/{group}"] = value
    logger.log_metrics(metrics)
    for path in sorted(out_dir.iterdir()):
        if path.suffix in {".md", ".png", ".csv"}:
            logger.log_artifact(path, "report")
    logger.end()
    return logger.run_id
