"""The report's analysis: pure functions of the tidy score table (:func:`weam.study.report_read.tidy_scores`)
and the cost table. The primary endpoint (the total effect of the condition, targets random:
:func:`weam.study.stats.total_effect`) with a hierarchical-bootstrap interval beside it, the mixed
model, Holm-corrected secondaries, described small groups, controls (base model, positive control,
high-resource check), WEAM against the base, budgets and realised language mixes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from weam.core.errors import WeamError
from weam.core.languages import get_language
from weam.eval.metrics import REFERENCE_METRICS
from weam.study.config import AnalysisConfig, diversity
from weam.study.config import BASE_CONDITION
from weam.study.report_read import with_covariates
from weam.study.stats import Estimate, describe, hierarchical_bootstrap, holm, mixed_model, total_effect

DESCRIBED_METRICS = ("mrr", "accuracy_no_shared_word", *REFERENCE_METRICS)
"""Tatoeba's figures beside XTREME's accuracy (eval.metrics.retrieval_scores): shown in the retrieval
tables, never tested or averaged into a control (the tested comparisons stay the pre-declared
family; chance levels and counts are no scores), unless the config declares one primary."""


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
    tasks: list[str] = field(default_factory=list)
    """The tasks the study evaluates (``eval.tasks``): each gets a row in the tasks table, scored or not."""

    @classmethod
    def from_study(cls, study, covariates: pd.DataFrame | None = None) -> Design:
        return cls(list(study.held_out), study.pivot, study.analysis, study.token_budget, study.budget_tolerance,
                   covariates, study.base.model, list(study.eval.get("tasks", ["tatoeba"])))


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
    tested_metrics = {task: tested_metric(task, set(part["metric"]), config.primary)
                      for task, part in held.groupby("task")}
    for (task, metric), part in held.groupby(["task", "metric"]):
        groups, group_notes = target_groups(sorted(part["target"].unique()), config.min_group_languages, strata)
        notes += [f"{task}/{metric}: {n}" for n in group_notes]
        for name, codes, large_enough in groups:
            sub = part[part["target"].isin(codes)]
            is_primary = (task, metric, name) == primary_key
            # One secondary per other task (its score, all held-out targets); the primary task's
            # subgroups are secondaries too. Everything else is described, so the Holm family stays small.
            declared = metric == tested_metrics[task] and (task == primary_key[0] or name == "all held-out")
            tested = large_enough and declared
            means = describe(sub).set_index("role")["mean"]
            row = {"task": task, "metric": metric, "group": name, "targets": len(codes),
                   "role": "primary" if is_primary else "secondary" if tested else "described",
                   "why described": "" if is_primary or tested else
                   f"{len(codes)} language{'s' if len(codes) != 1 else ''}" if declared else
                   "a subgroup of a secondary task" if metric == tested_metrics[task] else
                   f"not the task's tested metric ({tested_metrics[task]})",
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


def tested_metric(task: str, metrics: set[str], primary) -> str:
    """The one metric of ``task`` that is tested: the primary endpoint's for its task, else the task's
    XTREME-R score (weam.eval.tasks: F1 for PAN-X, accuracy for XNLI, the mean of EM and F1 for QA)."""
    if task == primary.task:
        return primary.metric
    try:
        from weam.eval.tasks import get_task

        score = get_task(task).score
    except WeamError:
        score = "score"
    parts = score.removeprefix("mean(").removesuffix(")").split(",") if score.startswith("mean(") else []
    # QA's score is the mean of EM and F1 (not a per-language metric of its own): F1 is the one tested.
    for name in (score, "score", *(["f1"] if "f1" in parts else []), *parts):
        if name in metrics:
            return name
    return sorted(metrics)[0]


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
            why = endpoints.loc[row.Index, "why described"] if "why described" in endpoints else ""
            decisions.append(f"described, not tested ({why or f'{row.targets} languages'})")
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


def language_label(code: str) -> str:
    language = get_language(code)
    return f"{code}{'*' if language.low_resource else ''}"


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


# ---------------------------------------------------------------------------------------------
# Tasks: one row each, and the held-out cells without a score


NO_GOLD_COLUMNS = ["task", "language", "reason"]


def no_gold_cells(tidy: pd.DataFrame, unlabeled: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Every (task, held-out target) without a score, with its reason: eval's (no gold labels in the
    split the download keeps, no file) or, for a language the task does not have, XTREME-R's list."""
    from weam.eval.tasks import get_task

    held = tidy[tidy["kind"] == "held-out"]
    targets = design.held_out or sorted(held["target"].unique())
    tasks = list(dict.fromkeys([*design.tasks, *tidy["task"].unique(), *unlabeled["task"]]))
    rows = []
    for task in tasks:
        scored = set(held.loc[held["task"] == task, "target"])
        part = unlabeled[unlabeled["task"] == task]
        reasons = dict(zip(part["language"], part["reason"]))
        try:
            covered = set(get_task(task).languages)
        except WeamError:
            covered = None
        for code in targets:
            if code in scored:
                continue
            if code in reasons:
                why = reasons[code]
            elif covered is not None and code not in covered:
                why = f"not among XTREME-R's {task} languages"
            else:
                why = "no score in the evaluation results"
            rows.append({"task": task, "language": code, "reason": why})
    return pd.DataFrame(rows, columns=NO_GOLD_COLUMNS)


def task_table(endpoints: pd.DataFrame, no_gold: pd.DataFrame, design: Design) -> pd.DataFrame:
    """One row per evaluated task: its tested metric over all held-out targets with gold labels (the
    primary endpoint's row for the primary task), and the targets without a score."""
    tasks = list(dict.fromkeys([*design.tasks, *endpoints["task"], *no_gold["task"]]))
    primary = design.analysis.primary
    rows = []
    for task in tasks:
        part = endpoints[(endpoints["task"] == task) & (endpoints["group"] == (
            primary.group if task == primary.task else "all held-out"))]
        chosen = part[part["role"].isin(["primary", "secondary"])]
        if chosen.empty and task == primary.task:
            chosen = part[part["metric"] == primary.metric]
        if chosen.empty and "why described" in part:  # the task's tested metric, described (too few targets)
            chosen = part[~part["why described"].astype(str).str.startswith("not the task's tested metric")]
        row = chosen.iloc[0] if not chosen.empty else (part.iloc[0] if not part.empty else None)
        missing = no_gold[no_gold["task"] == task]["language"].tolist()
        rows.append({
            "task": task, "metric": row["metric"] if row is not None else "—",
            "role": row["role"] if row is not None else "—",
            "targets scored": int(row["targets"]) if row is not None else 0,
            "targets without a score": ", ".join(missing) or "none",
            "treatment": row["treatment mean"] if row is not None else math.nan,
            "control": row["control mean"] if row is not None else math.nan,
            "treatment − control": row["estimate"] if row is not None else math.nan,
            "low": row["low"] if row is not None else math.nan, "high": row["high"] if row is not None else math.nan,
            "p": row["p"] if row is not None else math.nan,
            "p (Holm)": row["p (Holm)"] if row is not None else math.nan,
            "decision": row["decision"] if row is not None else "no held-out target has gold labels: not compared",
        })
    return pd.DataFrame(rows)
