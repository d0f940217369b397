"""Statistics that respect the study's design: a mixed-effects model, a hierarchical bootstrap,
Holm's correction, and (for comparison only) the old unit-level interval.

Every function reads a **tidy score table** (pandas DataFrame, one row per score) with columns

==============  ==========================================================================
condition       condition name (``diverse``, ``single``, ``base``)
role            ``treatment``, ``control`` or ``baseline``
language_set    the condition's set id (``s1``, …); unique only within a condition
run             one pre-training run, unique in the study (``<condition>/<set>/seed<k>``)
seed            pre-training seed of the run
target          held-out (target) language code, registry form
task, metric    XTREME-R task and metric (``tatoeba``, ``accuracy``)
score           the run's score on that target (mean over fine-tuning seeds where several)
==============  ==========================================================================

plus optional covariate columns, one value per (language set, target): ``genealogical``
(shared Glottolog classification depth of the set's closest language), ``typological`` (URIEL
syntactic distance of the nearest set language), ``script`` (share of set languages in the
target's script), ``subword`` (share of the target's subword tokens seen in the set's data);
see :mod:`weam.study.covariates`. An optional **per-example table** (columns ``run``,
``target``, ``example``, ``correct``: 0/1 or a per-example score; the same examples for every
run) lets the bootstrap resample test examples within a language too.

The design: targets are crossed with conditions (every run is scored on every target), runs are
nested in language sets, sets in conditions. The treatment effect lives at the set level, so its
uncertainty is driven by the number of *sets*, not of (seed × language) cells.

The estimand (declared): the **total effect** of the condition on the held-out targets, the
targets a sample of low-resource languages (random), with no adjustment for what the drawn
languages decide (relatedness to the targets is part of what a diverse set is). Conditions may
differ by target (a diverse set helps some targets more than others): that condition × target
spread does not cancel in the contrast and is part of the interval.

* :func:`total_effect` (the primary analysis): the difference of the conditions' grand means,
  its variance from the mean squares of the two (sets × targets) tables under crossed random
  effects with a condition × target term, t with Satterthwaite's df. Closed form, so the coverage
  benchmark runs it on thousands of studies (benchmarks/study_stats_coverage.py, demo shape:
  96.2–96.8 % coverage and 2.9–5.3 % false positives under every truth there, 1,000 studies each).
* :func:`mixed_model`: ``score ~ treat + covariates + (1|target) + (1|condition:target) +
  (1|language set) + (1|run)``, statsmodels MixedLM with crossed random effects as variance
  components of one group, REML. Its variance components feed ``weam study power``; with the
  relatedness covariates it estimates a **controlled direct effect** (the effect at fixed
  relatedness), a secondary question. The interval and p-value use a t distribution with
  ``n_sets − 2 − k`` degrees of freedom (k: set-level covariates; the between-set df), at most
  T − 1 when the condition × target component is above 0. With one set per condition there are
  no degrees of freedom and nothing is tested.
* :func:`hierarchical_bootstrap`: resample sets within condition, runs within set, targets
  (the same resampled targets for both conditions, since they are crossed) and, given a
  per-example table, examples within target; percentile interval of treatment − control.
* :func:`holm`: Holm's step-down adjustment for the secondary comparisons.
* :func:`unit_level_interval`: the old procedure (seeds paired by rank, (seed × language) units
  resampled as independent), kept only to show its coverage beside the new intervals.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from weam.core.errors import WeamError

TIDY_COLUMNS = ["condition", "role", "language_set", "run", "seed", "target", "task", "metric", "score"]
COVARIATES = ("genealogical", "typological", "script", "subword")
EXAMPLE_COLUMNS = ["run", "target", "example", "correct"]


def check_tidy(frame: pd.DataFrame, what: str = "score table") -> None:
    """Raise WeamError naming the missing columns or the bad values."""
    missing = [c for c in TIDY_COLUMNS if c not in frame.columns]
    if missing:
        raise WeamError(f"{what} lacks columns {missing} (expected {TIDY_COLUMNS})")
    if not np.isfinite(frame["score"].to_numpy(dtype=float)).all():
        raise WeamError(f"{what} holds NaN or infinite scores")


def _set_key(frame: pd.DataFrame) -> pd.Series:
    return frame["condition"].astype(str) + "/" + frame["language_set"].astype(str)


@dataclass(frozen=True)
class Estimate:
    """Treatment − control with an interval (and, where tested, a p-value)."""

    method: str
    estimate: float
    low: float
    high: float
    p_value: float | None = None
    df: float | None = None
    confidence: float = 0.95
    variance: dict[str, float] = field(default_factory=dict)
    """Mixed model: variance components (target, language_set, run, residual), score scale squared."""
    notes: tuple[str, ...] = ()

    @property
    def testable(self) -> bool:
        return self.p_value is not None

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


# ---------------------------------------------------------------------------------------------
# The primary estimand: the total effect, targets random


def _cell_table(data: pd.DataFrame, role: str) -> pd.DataFrame:
    """(sets × targets) table of one condition: each set's score on each target, mean over its runs."""
    part = data[data["role"] == role]
    return part.pivot_table(index="set_key", columns="target", values="score", aggfunc="mean")


def total_effect(frame: pd.DataFrame, confidence: float = 0.95) -> Estimate:
    """Total effect of the condition on held-out targets, targets a sample of low-resource languages.

    The estimand: the mean over the population of targets of (treatment − control), with no
    adjustment for anything the drawn languages decide (relatedness is part of what a diverse set
    is). The estimate: the difference of the two conditions' grand means (sets weighted equally,
    each set's score on a target the mean over its seeds). Its variance under crossed random
    effects with a condition × target term (each condition has its own per-target deviation):

        Var = Σ_c (σ²_set,c / S_c + σ²_cell,c / (S_c·T)) + 2·σ²_condition×target / T

    (σ²_set,c includes the seeds' spread averaged over a set's runs; σ²_cell,c: set × target and
    residual). Estimated by mean squares of the two (sets × targets) tables, which is REML's
    answer for a balanced design when no component is at zero: per condition the variance of
    the set means / S_c (unbiased for the first bracket), plus the variance over targets of the
    per-target difference / T minus each condition's two-way residual mean square / (S_c·T)
    (unbiased for the last term; set to 0 when negative). Interval and p-value: t with
    Satterthwaite's degrees of freedom for that sum of mean squares.
    """
    check_tidy(frame)
    data = frame[frame["role"].isin(["treatment", "control"])].copy()
    if set(data["role"]) != {"treatment", "control"}:
        raise WeamError("the total effect needs rows of both the treatment and the control condition")
    data["set_key"] = _set_key(data)
    tables = {role: _cell_table(data, role) for role in ("treatment", "control")}
    targets = sorted(set(tables["treatment"].columns) & set(tables["control"].columns))
    for role, table in tables.items():
        if table.reindex(columns=targets).isna().any().any() or len(targets) < table.shape[1]:
            raise WeamError(f"the total effect needs every {role} set scored on every target")
    cells = {role: table[targets].to_numpy(float) for role, table in tables.items()}
    estimate = float(cells["treatment"].mean() - cells["control"].mean())
    n_targets = len(targets)
    notes: list[str] = []
    terms: list[tuple[float, float, float]] = []  # (coefficient, mean square, df)
    residual = {}
    for role, y in cells.items():
        sets = y.shape[0]
        if sets < 2:
            notes.append(f"one {role} language set: no degrees of freedom left for the condition contrast; not tested")
            return Estimate("total effect", estimate, math.nan, math.nan, notes=tuple(notes), confidence=confidence)
        set_means = y.mean(axis=1)
        terms.append((1 / sets, float(set_means.var(ddof=1)), sets - 1))
        if n_targets > 1:
            two_way = y - set_means[:, None] - y.mean(axis=0)[None, :] + y.mean()
            residual[role] = (float((two_way**2).sum() / ((sets - 1) * (n_targets - 1))), sets)
    # Per condition: σ²_set from the set means' variance less the cells' share of it.
    variance = {"language_set": float(np.mean([max(ms - residual.get(role, (0.0, 1))[0] / n_targets, 0.0)
                                               for role, (_, ms, _) in zip(cells, terms)]))}
    if n_targets > 1:
        difference = cells["treatment"].mean(axis=0) - cells["control"].mean(axis=0)
        ms_difference = float(difference.var(ddof=1))
        correction = sum(ms / (sets * n_targets) for ms, sets in residual.values())
        condition_target = ms_difference / n_targets - correction
        variance["condition_target"] = max(condition_target * n_targets / 2, 0.0)
        variance["cell"] = float(np.mean([ms for ms, _ in residual.values()]))
        if condition_target > 0:
            terms.append((1 / n_targets, ms_difference, n_targets - 1))
            terms += [(-1 / (sets * n_targets), ms, (sets - 1) * (n_targets - 1)) for ms, sets in residual.values()]
        else:
            notes.append("condition × target variance estimated at 0")
    else:
        notes.append("one target: the condition × target spread is not estimable; the interval is about this target")
    var = sum(k * ms for k, ms, _ in terms)
    se = math.sqrt(max(var, 0.0))
    denominator = sum((k * ms) ** 2 / df for k, ms, df in terms)
    df = var**2 / denominator if denominator > 0 else float(sum(df for _, _, df in terms[:2]))
    if se == 0:
        return Estimate("total effect", estimate, estimate, estimate, 1.0 if estimate == 0 else 0.0, df, confidence,
                        variance, tuple(notes))
    quantile = stats.t.ppf(0.5 + confidence / 2, df)
    p_value = float(2 * stats.t.sf(abs(estimate / se), df))
    return Estimate("total effect", estimate, estimate - quantile * se, estimate + quantile * se, p_value, df,
                    confidence, variance, tuple(notes))


# ---------------------------------------------------------------------------------------------
# Mixed model


def mixed_model(frame: pd.DataFrame, covariates: tuple[str, ...] | list[str] = (), confidence: float = 0.95) -> Estimate:
    """Treatment effect from ``score ~ treat + covariates + (1|target) + (1|set) + (1|run)``.

    ``frame``: the tidy rows of one task, metric and target group, roles treatment and control.
    Covariates are centred (the intercept stays the control mean); a covariate constant over the
    rows is dropped with a note. A random effect with one level per row of its parent (one seed
    per set: runs are sets) is not identifiable and is dropped with a note.
    """
    check_tidy(frame)
    data = frame[frame["role"].isin(["treatment", "control"])].copy()
    if set(data["role"]) != {"treatment", "control"}:
        raise WeamError("the mixed model needs rows of both the treatment and the control condition")
    data["treat"] = (data["role"] == "treatment").astype(float)
    data["set_key"] = _set_key(data)
    n_sets = data["set_key"].nunique()
    notes: list[str] = []
    used: list[str] = []
    for name in covariates:
        if name not in data.columns:
            raise WeamError(f"covariate '{name}' is not a column of the score table")
        values = data[name].astype(float)
        if values.isna().any():
            raise WeamError(f"covariate '{name}' has missing values")
        if values.std() < 1e-12:
            notes.append(f"covariate {name} is constant here and left out")
            continue
        data[f"cov_{name}"] = values - values.mean()
        used.append(name)
    vc = {}
    n_targets = data["target"].nunique()
    if n_targets > 1:
        vc["target"] = "target"
        # Each condition's own deviation per target: without it the targets count as fixed and the
        # interval under-covers when conditions differ by target (64 % for a nominal 95 %).
        data["condition_target"] = data["role"] + "/" + data["target"].astype(str)
        vc["condition_target"] = "condition_target"
    if n_sets > 2:
        vc["language_set"] = "set_key"
    if data["run"].nunique() > n_sets:
        vc["run"] = "run"
    else:
        notes.append("one run per language set: run and set variance are not separable (run term left out)")
    # Covariates that vary only between sets (constant within each set) use between-set df.
    set_level = sum(1 for name in used if data.groupby("set_key")[f"cov_{name}"].nunique().max() == 1)
    df = n_sets - 2 - set_level
    names = ["Intercept", "treat", *[f"cov_{name}" for name in used]]
    exog = np.column_stack([np.ones(len(data)), *[data[c].to_numpy(float) for c in names[1:]]])
    # Crossed random effects: one group holding every row, each factor a variance component whose
    # design is the factor's indicator matrix (what vc_formula "0 + C(factor)" builds, without patsy).
    exog_vc = {name: {0: pd.get_dummies(data[column]).to_numpy(float)} for name, column in vc.items()}
    if not vc:
        # One target and one run per set: no random effect is identifiable; the fixed-effect fit is OLS.
        from statsmodels.regression.linear_model import OLS

        with warnings.catch_warnings():  # two rows, two parameters: no residual df (scale is inf/NaN)
            warnings.simplefilter("ignore")
            fit = OLS(data["score"].to_numpy(float), exog).fit()
            scale = float(fit.scale) if fit.df_resid > 0 else math.nan
        notes.append(f"{n_sets} language sets, {data['target'].nunique()} target(s): no random effect is estimable")
        return Estimate("mixed model", float(fit.params[1]), math.nan, math.nan, None, None, confidence,
                        {"residual": scale}, tuple(notes))
    from statsmodels.regression.mixed_linear_model import MixedLM

    # Fit on the score divided by its sd: target variances of hundreds (accuracy in %) against
    # residuals below 1 leave BFGS unconverged; the results are scaled back below.
    scale = float(data["score"].std()) or 1.0
    with warnings.catch_warnings():
        # Boundary estimates (a variance of 0) are expected with few sets; the df rule covers them.
        warnings.simplefilter("ignore")
        model = MixedLM(data["score"].to_numpy(float) / scale, pd.DataFrame(exog, columns=names),
                        np.zeros(len(data)), exog_re=np.zeros((len(data), 0)), exog_vc=exog_vc)
        result = _best_fit(model)
    if result is None:
        notes.append("every REML optimiser failed (a singular fit); not tested")
        return Estimate("mixed model", float(data.loc[data["treat"] == 1, "score"].mean()
                                             - data.loc[data["treat"] == 0, "score"].mean()),
                        math.nan, math.nan, None, None, confidence, {}, tuple(notes))
    if not result.converged:
        notes.append("the REML fit did not converge with any optimiser (BFGS, Powell, Nelder-Mead)")
    estimate = float(result.fe_params["treat"]) * scale
    se = float(result.bse_fe["treat"]) * scale
    variance = {name: float(v) * scale**2 for name, v in zip(model.exog_vc.names, np.atleast_1d(result.vcomp))}
    variance["residual"] = float(result.scale) * scale**2
    if variance.get("condition_target", 0.0) > 0:
        # The contrast also varies over targets: Satterthwaite's df of the same mean squares as the
        # total effect's (between the set df and T − 1, by their shares of the variance).
        try:
            df = min(df, total_effect(frame, confidence).df or df)
        except WeamError:  # an incomplete table: the smaller of the two
            df = min(df, n_targets - 1)
    if df < 1 or not math.isfinite(se):
        notes.append(f"{n_sets} language sets: no degrees of freedom left for the condition contrast; not tested")
        return Estimate("mixed model", estimate, math.nan, math.nan, None, None, confidence, variance, tuple(notes))
    quantile = stats.t.ppf(0.5 + confidence / 2, df)
    p_value = float(2 * stats.t.sf(abs(estimate / se), df)) if se > 0 else (1.0 if estimate == 0 else 0.0)
    return Estimate("mixed model", estimate, estimate - quantile * se, estimate + quantile * se, p_value, df,
                    confidence, variance, tuple(notes))


def _best_fit(model):
    """REML by BFGS, else Powell, else Nelder-Mead: statsmodels hands back an unconverged BFGS
    result rather than trying the next method, so convergence is checked here. A method that
    fails outright (a singular Hessian at a boundary) is skipped; None when every one fails."""
    fits = []
    for method in ("bfgs", "powell", "nm"):
        try:
            result = model.fit(reml=True, method=[method])
        except (np.linalg.LinAlgError, ValueError):
            continue
        if result.converged:
            return result
        fits.append(result)
    return max(fits, key=lambda r: r.llf) if fits else None


def covariate_effects(frame: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    """Per-target gains regressed on the set's diversity and the relatedness covariates.

    Gain: a set's mean score on a target (over its runs) minus the base model's score on that
    target where a baseline row exists, else minus the target's mean over all sets. OLS with
    standard errors clustered by language set (sets are the independent units), with the
    small-sample correction G/(G − 1)·(N − 1)/(N − K) and p-values from t with G − 1 df (G sets):
    a normal reference with a dozen clusters would be over-confident. ``n_families`` is left out
    when it only restates the condition (every diverse set k families, every single set 1): the
    primary contrast estimates that, and the two cannot be separated.
    """
    import statsmodels.formula.api as smf

    rows = frame[frame["role"].isin(["treatment", "control"])].copy()
    rows["set_key"] = _set_key(rows)
    keys = ["set_key", "role", "target"]
    cell = rows.groupby(keys, as_index=False).agg(score=("score", "mean"),
                                                   **{c: (c, "first") for c in ["n_families", *covariates] if c in rows})
    base = frame[frame["role"] == "baseline"].groupby("target")["score"].mean()
    reference = base if not base.empty else cell.groupby("target")["score"].mean()
    cell["gain"] = cell["score"] - cell["target"].map(reference)
    terms = [c for c in ["n_families", *covariates] if c in cell and cell[c].astype(float).std() > 1e-12]
    notes = []
    if "n_families" in terms and cell.groupby("role")["n_families"].nunique().max() == 1:
        terms.remove("n_families")
        notes.append("n_families left out: it is the condition here (one value per condition)")
    groups = cell["set_key"].nunique()
    if not terms or groups <= len(terms) + 1:
        return pd.DataFrame(columns=["term", "coef", "se", "p", "note"])
    fit = smf.ols("gain ~ " + " + ".join(terms), cell).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(cell["set_key"])[0], "use_correction": True},
        use_t=True)
    note = (f"OLS on {len(cell)} (set, target) gains, SE clustered by {groups} sets (small-sample corrected), "
            f"p from t with {groups - 1} df" + "".join(f"; {n}" for n in notes))
    return pd.DataFrame({"term": fit.params.index, "coef": fit.params.values, "se": fit.bse.values,
                         "p": fit.pvalues.values, "note": note})


# ---------------------------------------------------------------------------------------------
# Hierarchical bootstrap


def _run_structure(data: pd.DataFrame, role: str, run_index: dict[str, int]) -> np.ndarray:
    """(sets, max runs per set) array of run indices, -1 padded."""
    part = data[data["role"] == role]
    sets = [sorted({run_index[r] for r in group["run"]}) for _, group in part.groupby("set_key")]
    width = max(len(s) for s in sets)
    table = np.full((len(sets), width), -1, dtype=int)
    for i, runs in enumerate(sets):
        table[i, : len(runs)] = runs
    return table


def _resample_condition(rng, table: np.ndarray, n: int) -> np.ndarray:
    """(n, sets, width) run indices: sets drawn with replacement, then runs within each drawn set."""
    counts = (table >= 0).sum(axis=1)
    sets = rng.integers(0, table.shape[0], (n, table.shape[0]))
    positions = np.floor(rng.random((n, table.shape[0], table.shape[1])) * counts[sets][..., None]).astype(int)
    return table[sets[..., None], positions]


def hierarchical_bootstrap(frame: pd.DataFrame, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
                           examples: pd.DataFrame | None = None) -> Estimate:
    """Percentile interval of treatment − control (mean over targets and runs, sets weighted equally).

    Resamples, independently per replicate: language sets within each condition, runs within each
    drawn set (as many as the largest set has, so every set weighs the same), the targets (one
    draw shared by both conditions), and with ``examples`` the test examples within each target
    (one draw shared by every run, as every run answers the same examples). The spread is widened
    by sqrt(S/(S−1)) for the few sets resampled (see the code).
    """
    check_tidy(frame)
    data = frame[frame["role"].isin(["treatment", "control"])].copy()
    data["set_key"] = _set_key(data)
    runs = sorted(data["run"].unique())
    targets = sorted(data["target"].unique())
    run_index = {r: i for i, r in enumerate(runs)}
    wide = data.pivot_table(index="run", columns="target", values="score", aggfunc="mean").reindex(index=runs,
                                                                                                   columns=targets)
    if wide.isna().any().any():
        raise WeamError("the bootstrap needs every run scored on every target")
    rng = np.random.default_rng(seed)
    observed = _bootstrap_stat(wide.to_numpy()[None], data, run_index, None, None)[0]
    replicates = []
    for start in range(0, n_resamples, 500):  # chunks bound the memory of the index arrays
        n = min(500, n_resamples - start)
        scores = (_example_scores(examples, runs, targets, rng, n) if examples is not None
                  else np.broadcast_to(wide.to_numpy(), (n, *wide.shape)))
        target_draw = rng.integers(0, len(targets), (n, len(targets)))
        replicates.append(_bootstrap_stat(scores, data, run_index, rng, target_draw))
    # The bootstrap variance of a mean over S resampled sets is (S − 1)/S of the unbiased one; with
    # the few sets a study has that matters (S = 6: intervals 9 % too narrow), so the replicates'
    # spread around the estimate is widened by sqrt(S / (S − 1)), S the smaller condition's sets.
    sets = min(data.loc[data["role"] == role, "set_key"].nunique() for role in ("treatment", "control"))
    inflate = math.sqrt(sets / (sets - 1)) if sets > 1 else 1.0
    values = observed + (np.concatenate(replicates) - observed) * inflate
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return Estimate("hierarchical bootstrap", float(observed), float(low), float(high), None, None, confidence)


def _bootstrap_stat(scores: np.ndarray, data: pd.DataFrame, run_index, rng, target_draw) -> np.ndarray:
    """Treatment − control for each of ``scores``' replicates (n, runs, targets)."""
    n = scores.shape[0]
    means = {}
    for role in ("treatment", "control"):
        table = _run_structure(data, role, run_index)
        if rng is None:  # the observed statistic: every set once, its own runs
            per_set = [np.nanmean(scores[:, row[row >= 0], :], axis=(1, 2)) for row in table]
            means[role] = np.mean(per_set, axis=0)
            continue
        picked = _resample_condition(rng, table, n)  # (n, sets, width)
        batch = np.arange(n)[:, None, None, None]
        values = scores[batch, picked[..., None], target_draw[:, None, None, :]]
        means[role] = values.mean(axis=(1, 2, 3))
    return means["treatment"] - means["control"]


def _example_scores(examples: pd.DataFrame, runs: list[str], targets: list[str], rng, n: int) -> np.ndarray:
    """(n, runs, targets) scores recomputed from examples resampled within each target."""
    missing = [c for c in EXAMPLE_COLUMNS if c not in examples.columns]
    if missing:
        raise WeamError(f"per-example table lacks columns {missing} (expected {EXAMPLE_COLUMNS})")
    out = np.empty((n, len(runs), len(targets)))
    for j, target in enumerate(targets):
        part = examples[examples["target"] == target]
        matrix = part.pivot_table(index="run", columns="example", values="correct", aggfunc="mean").reindex(runs)
        if matrix.isna().any().any():
            raise WeamError(f"per-example table: not every run has every example of target {target}")
        k = matrix.shape[1]
        weights = rng.multinomial(k, np.full(k, 1 / k), size=n) / k  # (n, examples)
        out[:, :, j] = weights @ matrix.to_numpy().T
    return out


# ---------------------------------------------------------------------------------------------
# Multiple comparisons, descriptive summaries


def holm(p_values: list[float] | np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm step-down: (rejected, adjusted p) for the secondary comparisons; NaN p stays NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    rejected = np.zeros(p.shape, dtype=bool)
    finite = np.isfinite(p)
    if finite.any():
        rejected[finite], adjusted[finite], _, _ = multipletests(p[finite], alpha=alpha, method="holm")
    return rejected, adjusted


def describe(frame: pd.DataFrame) -> pd.DataFrame:
    """Per condition: sets, runs, and the mean and between-set sd of the set means."""
    data = frame.copy()
    data["set_key"] = _set_key(data)
    per_set = data.groupby(["condition", "role", "set_key"], as_index=False)["score"].mean()
    out = per_set.groupby(["condition", "role"], as_index=False).agg(
        sets=("set_key", "nunique"), mean=("score", "mean"), sd_between_sets=("score", "std"))
    out["runs"] = out["condition"].map(data.groupby("condition")["run"].nunique())
    return out


# ---------------------------------------------------------------------------------------------
# The old unit-level interval (for comparison only)


def unit_level_interval(frame: pd.DataFrame, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """The procedure this module replaced: runs of the two conditions paired by rank, (run × target)
    units resampled as if independent (scipy's paired BCa bootstrap). Anti-conservative by design;
    only the coverage benchmark and its test call it."""
    data = frame[frame["role"].isin(["treatment", "control"])]
    wide = {role: data[data["role"] == role].pivot_table(index="run", columns="target", values="score")
            for role in ("treatment", "control")}
    n = min(len(wide["treatment"]), len(wide["control"]))
    t = wide["treatment"].iloc[:n].to_numpy().ravel()
    c = wide["control"].iloc[:n].to_numpy().ravel()
    result = stats.bootstrap((t, c), lambda a, b, axis=-1: np.mean(a - b, axis=axis), paired=True, vectorized=True,
                             n_resamples=n_resamples, confidence_level=confidence, method="BCa",
                             rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return Estimate("unit-level bootstrap (old)", float(np.mean(t - c)), float(low), float(high), None, None,
                    confidence)


def statement(estimate: Estimate, alpha: float, label: str = "primary") -> str:
    """One sentence for the report: estimate, interval, p and the decision the design supports."""
    level = f"{estimate.confidence * 100:g} %"
    if not estimate.testable:
        reason = "; ".join(estimate.notes) or "not testable"
        return f"{estimate.estimate:+.4f} ({label}; {reason})"
    interval = f"{level} CI [{estimate.low:+.4f}, {estimate.high:+.4f}]"
    verdict = ("treatment better than control" if estimate.estimate > 0 else "treatment worse than control") \
        if estimate.p_value < alpha else "no difference detected"
    return f"{verdict}: {estimate.estimate:+.4f}, {interval}, p = {estimate.p_value:.3g} (t, df = {estimate.df:g}; {label})"
