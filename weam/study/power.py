"""Power before compute: the minimum detectable effect of a planned design, the runs a wanted
effect needs, what the plan costs in device-hours (the device named), and synthetic studies to check the statistics.

The model is the report's (:mod:`weam.study.stats`): the total effect, targets random, for a
balanced design with ``S`` language sets per condition, ``R`` seeds per set and ``T`` targets,
crossed with the conditions. Target main effects cancel in the condition contrast (every run is
scored on every target); each condition's own deviation per target (σ_condition×target) does not:

    Var(treatment − control) = 2 · (σ²_set / S + σ²_run / (S·R) + σ²_residual / (S·R·T))
                               + 2 · σ²_condition×target / T

and the test is a t test on Satterthwaite's degrees of freedom for the mean squares that estimate
it (2S − 2 when σ_condition×target is 0). The minimum detectable effect at level α with power
1 − β is ``(t_{1−α/2} + t_{1−β}) · SE``. Adding seeds only shrinks the run and residual terms:
σ²_set / S is a floor only more *sets* lower, and 2σ²_condition×target / T one only more
*targets* lower.

Variance components come from a finished study's ``report/variance_components.json`` (written
by :func:`weam.study.report.write_report`; ``power.pilot``) or from the config's stated
``power.sd_*`` assumptions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from weam.core.errors import WeamError

MAX_SETS = 200
"""Search bound for the sets needed per condition."""
MAX_TARGETS = 100
"""Search bound for the targets needed when no number of sets suffices."""


@dataclass(frozen=True)
class Components:
    """Standard deviations on the score's scale, and where they come from."""

    sd_set: float
    sd_run: float
    sd_residual: float
    source: str
    sd_condition_target: float = 0.0
    """Each condition's own deviation per target: does not cancel in the contrast."""


@dataclass(frozen=True)
class Power:
    sets: int
    seeds: int
    targets: int
    alpha: float
    power: float
    se: float
    df: float
    mde: float
    """Minimum detectable effect (NaN when df < 1)."""


def components_from(study, pilot: Path | None = None) -> Components:
    """The pilot's estimated components when one is named (argument, else ``power.pilot``), else the config's."""
    path = pilot or study.power.pilot
    if path is None:
        p = study.power
        return Components(p.sd_set, p.sd_run, p.sd_residual, "stated assumptions (power.sd_* in the config)",
                          p.sd_condition_target)
    path = Path(path)
    if path.is_dir():
        path = path / "variance_components.json"
    if not path.is_file():
        raise WeamError(f"{path}: no variance components (run `weam study report` on the pilot study first)")
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        variance = data["variance"]
        sd_set = math.sqrt(max(variance.get("language_set", math.nan), 0.0))
        sd_run = math.sqrt(max(variance.get("run", 0.0), 0.0))
        sd_residual = math.sqrt(max(variance["residual"], 0.0))
    except (KeyError, TypeError) as exc:
        raise WeamError(f"{path}: not a variance_components.json ({exc})") from None
    note = ""
    if "condition_target" in variance:
        sd_condition_target = math.sqrt(max(variance["condition_target"], 0.0))
    else:  # a pilot analysed before the condition × target term existed
        sd_condition_target = study.power.sd_condition_target
        note += f"; it has no condition × target component, the stated {sd_condition_target:g} is used"
    if "language_set" not in variance:
        # A pilot with one set per condition cannot separate set from condition variance.
        sd_set = study.power.sd_set
        note += f"; its design had too few sets to estimate σ_set, the stated {sd_set:g} is used"
    return Components(sd_set, sd_run, sd_residual,
                      f"pilot {path} ({data.get('study', '?')}: {data.get('endpoint', '')}{note})", sd_condition_target)


def _mean_squares(c: Components, sets: int, seeds: int, targets: int) -> list[tuple[float, float, float]]:
    """(coefficient, expected mean square, df) of the terms whose sum is the contrast's variance
    (the estimator of :func:`weam.study.stats.total_effect`, two conditions of ``sets`` each)."""
    per_set = c.sd_set**2 + c.sd_run**2 / seeds + c.sd_residual**2 / (seeds * targets)
    terms = [(1 / sets, per_set, sets - 1)] * 2
    if c.sd_condition_target > 0 and targets > 1:
        terms.append((1 / targets, 2 * c.sd_condition_target**2 + 2 * c.sd_residual**2 / (sets * seeds), targets - 1))
        terms += [(-1 / (sets * targets), c.sd_residual**2 / seeds, (sets - 1) * (targets - 1))] * 2
    return terms


def contrast_se(c: Components, sets: int, seeds: int, targets: int) -> float:
    return math.sqrt(sum(k * ms for k, ms, _ in _mean_squares(c, sets, seeds, targets)))


def contrast_df(c: Components, sets: int, seeds: int, targets: int) -> float:
    """Satterthwaite's df of the contrast's variance estimate (2S − 2 without a condition × target term)."""
    terms = _mean_squares(c, sets, seeds, targets)
    if sets < 2:
        return 0.0
    variance = sum(k * ms for k, ms, _ in terms)
    denominator = sum((k * ms) ** 2 / df for k, ms, df in terms)
    return variance**2 / denominator if denominator > 0 else float(2 * sets - 2)


def power_for(c: Components, sets: int, seeds: int, targets: int, alpha: float = 0.05, power: float = 0.8) -> Power:
    """Minimum detectable effect of a design with ``sets`` per condition and ``seeds`` per set."""
    se = contrast_se(c, sets, seeds, targets)
    df = contrast_df(c, sets, seeds, targets)
    mde = (stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se if df >= 1 else math.nan
    return Power(sets, seeds, targets, alpha, power, se, df, float(mde))


def achieved_power(c: Components, sets: int, seeds: int, targets: int, effect: float, alpha: float = 0.05) -> float:
    """Probability of calling ``effect`` significant (noncentral t, two-sided)."""
    df = contrast_df(c, sets, seeds, targets)
    if df < 1:
        return math.nan
    se = contrast_se(c, sets, seeds, targets)
    crit = stats.t.ppf(1 - alpha / 2, df)
    if se == 0:
        return 1.0
    nc = effect / se
    value = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
    # scipy's noncentral t returns NaN far in the tail (nc ≫ crit): the power is 1 there.
    return float(value) if math.isfinite(value) else float(abs(nc) > crit)


def sets_needed(c: Components, seeds: int, targets: int, effect: float, alpha: float = 0.05,
                power: float = 0.8) -> int | None:
    """Fewest sets per condition whose MDE is at most ``effect`` (None: not within MAX_SETS)."""
    for sets in range(2, MAX_SETS + 1):
        if power_for(c, sets, seeds, targets, alpha, power).mde <= effect:
            return sets
    return None


def targets_needed(c: Components, seeds: int, effect: float, alpha: float = 0.05,
                   power: float = 0.8) -> tuple[int, int] | None:
    """Fewest targets at which some number of sets (≤ MAX_SETS) detects ``effect``, and those sets."""
    for targets in range(2, MAX_TARGETS + 1):
        if power_for(c, MAX_SETS, seeds, targets, alpha, power).mde <= effect:
            return targets, sets_needed(c, seeds, targets, effect, alpha, power)
    return None


def device_hours_per_run(study) -> tuple[float | None, str, str]:
    """Device-hours of one pre-training run (wall time × processes), the device they are hours of, and
    where the figure comes from: the study's finished pre-training manifests (throughput × budget; the
    device each recorded), else a measured benchmark (``power.throughput``, the JSON of
    ``benchmarks/pretrain_bench.py --json`` on the stated hardware), else the assumed
    ``power.device_hours_per_run``, said to be assumed and for ``power.device``."""
    rates, devices_seen = [], []
    for manifest in sorted((Path(study.work_dir) / "pretrain").glob("**/manifest.json")):
        try:
            counts = json.loads(manifest.read_text(encoding="utf-8")).get("counts", {})
        except (OSError, ValueError):
            continue
        if counts.get("tokens") and counts.get("wall_seconds"):
            devices = counts.get("world_size", 1)
            rates.append(counts["wall_seconds"] * devices / counts["tokens"])  # device-seconds per token
            devices_seen.append(counts.get("device") or "an unrecorded device")
    if rates:
        hours = float(np.median(rates)) * study.token_budget / 3600
        device = " / ".join(dict.fromkeys(devices_seen))
        return hours, device, (f"measured: median throughput of {len(rates)} finished pre-training run(s) in "
                               f"{study.work_dir}/pretrain")
    path = study.power.throughput
    if path is not None and Path(path).is_file():
        return _hours_from_benchmark(Path(path), study.token_budget)
    missing = f"; {path} does not exist yet" if path is not None else ""
    if study.power.device_hours_per_run is not None:
        return study.power.device_hours_per_run, study.power.device, (
            f"assumed, not measured: power.device_hours_per_run in the config{missing}")
    return None, study.power.device, ("unknown (no finished pre-training manifest, no throughput benchmark; set "
                                      f"power.throughput{missing})")


def _hours_from_benchmark(path: Path, token_budget: int) -> tuple[float, str, str]:
    """Device-hours from the fastest successful ``weam`` row of a pretrain_bench JSON, and its device."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = [r for r in data["rows"] if r.get("objective") == "weam" and r.get("tokens_per_s")]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeamError(f"{path}: not a benchmarks/pretrain_bench.py --json file ({exc})") from None
    if not rows:
        raise WeamError(f"{path}: no successful weam row to take a throughput from")
    best = max(rows, key=lambda r: r["tokens_per_s"])
    devices = int(data.get("devices", 1))
    hours = token_budget / best["tokens_per_s"] * devices / 3600
    return hours, data.get("device") or "an unrecorded device", (
        f"measured: {best['tokens_per_s']:,.0f} tokens/s of weam, ZeRO-{best.get('zero', '?')}, preset "
        f"{data.get('preset', '?')}, {data.get('precision', '?')}, × {devices} device(s) ({path})")


def primary_targets(study) -> list[str]:
    """The held-out languages the primary endpoint's task scores (Tatoeba: all; the demo builds its own sets)."""
    task = study.analysis.primary.task
    if task == "tatoeba":
        return list(study.held_out)
    from weam.eval.tasks import get_task

    try:
        languages = set(get_task(task).languages)
    except WeamError:  # an unknown task name: the eval stage refuses it; count every target here
        return list(study.held_out)
    return [code for code in study.held_out if code in languages]


EFFECTS = (0.5, 1.0, 1.5)
"""Effects (score points) whose sets-per-condition the power statement lists."""


def power_statement(study, pilot: Path | None = None) -> list[str]:
    """The lines ``weam study power`` and ``weam study plan`` print."""
    if study.instrument is not None:
        return ["power: an instrument check compares arms on one language set; its figures are intervals over "
                f"{len(study.seeds)} seeds (report/instrument.md), not the diversity study's test"]
    c = components_from(study, pilot)
    per_condition = [len(study.language_sets(cond.name)) for cond in study.conditions]
    sets, seeds, targets = min(per_condition), len(study.seeds), len(primary_targets(study))
    alpha, wanted, effect = study.analysis.alpha, study.power.power, study.power.target_effect
    planned = power_for(c, sets, seeds, targets, alpha, wanted)
    lines = [
        f"variance components: σ_set = {c.sd_set:.4g}, σ_run = {c.sd_run:.4g}, σ_residual = {c.sd_residual:.4g}, "
        f"σ_condition×target = {c.sd_condition_target:.4g} — {c.source}",
        f"planned design: {sets} language sets per condition × {seeds} seed(s) × {targets} targets of "
        f"{study.analysis.primary.task} "
        f"= {2 * sets * seeds} pre-training runs; contrast SE = {planned.se:.4g}, df = {planned.df:.3g}",
    ]
    if planned.df < 1:
        lines.append("minimum detectable effect: none — one set per condition leaves no degrees of freedom; "
                     "the design cannot test the condition effect")
    else:
        lines.append(f"minimum detectable effect (α = {alpha:g}, power {wanted:.0%}): {planned.mde:.4g} "
                     f"(power for the stated effect {effect:g}: "
                     f"{achieved_power(c, sets, seeds, targets, effect, alpha):.0%})")
    # With unlimited sets the condition × target spread remains: 2σ²/T, lowered only by more targets.
    floor = power_for(c, 100_000, seeds, targets, alpha, wanted).mde
    for wanted_effect in sorted({*EFFECTS, effect}):
        needed = sets_needed(c, seeds, targets, wanted_effect, alpha, wanted)
        label = f"sets per condition needed for effect {wanted_effect:g} (power {wanted:.0%}, {seeds} seed(s))"
        if needed is not None:
            lines.append(f"{label}: {needed} = {2 * needed * seeds} pre-training runs")
        elif wanted_effect < floor:
            more = targets_needed(c, seeds, wanted_effect, alpha, wanted)
            lines.append(f"{label}: none — with {targets} targets the condition × target spread alone leaves "
                         f"MDE {floor:.3g} however many sets; only more targets lower it"
                         + (f" (fewest targets that reach it: {more[0]}, with {more[1]} sets per condition)"
                            if more else f" (not within {MAX_TARGETS} targets)"))
        else:
            lines.append(f"{label}: more than {MAX_SETS}")
    if planned.df >= 1:
        seeds_floor = power_for(c, sets, 10_000, targets, alpha, wanted).mde
        lines.append(f"more seeds alone cannot go below MDE {seeds_floor:.4g} with {sets} sets per condition "
                     "(σ_set / sets is the floor)")
    hours, device, source = device_hours_per_run(study)
    runs = 2 * sets * seeds
    if hours is not None:
        lines.append(f"cost: {runs} runs × {hours:.3g} device-h = {runs * hours:.3g} device-hours on {device} ({source})")
    else:
        lines.append(f"cost: {runs} runs; device-hours {source}")
    return lines


def simulate_scores(rng: np.random.Generator, effect: float, sets: int = 6, seeds: int | list[int] = 2,
                    targets: int = 8, sd_target: float = 0.1, sd_set: float = 0.03, sd_run: float = 0.01,
                    sd_residual: float = 0.02, mean: float = 0.5, sd_condition_target: float = 0.0,
                    sd_set_target: float = 0.0, residual_df: float | None = None) -> pd.DataFrame:
    """A synthetic study in the tidy layout, with a known effect and known variance components.

    ``effect`` is the total effect: the mean over the population of targets of treatment −
    control. Beyond the fitted model's components (target, set, run, residual):
    ``sd_condition_target``: each condition's own deviation per target (a diverse set helps some
    targets more than others); ``sd_set_target``: each set's own deviation per target;
    ``residual_df``: residuals from a t distribution with that many df (heavy tails), scaled to
    ``sd_residual``; ``seeds``: one count for every set, or a list cycled over the sets (unequal
    seeds per set). A component of 0 draws nothing, so the fitted model's draws stay as they were.
    """
    seed_counts = [seeds] * sets if isinstance(seeds, int) else [seeds[i % len(seeds)] for i in range(sets)]
    if residual_df is not None and residual_df <= 2:
        raise WeamError("residual_df must exceed 2 (a t distribution with a finite variance)")

    def residuals(n: int) -> np.ndarray:
        if residual_df is None:
            return rng.normal(0, sd_residual, n)
        return rng.standard_t(residual_df, n) * sd_residual / math.sqrt(residual_df / (residual_df - 2))

    target_effects = rng.normal(0, sd_target, targets)
    rows = []
    for role, name, shift in (("treatment", "diverse", effect), ("control", "single", 0.0)):
        by_target = rng.normal(0, sd_condition_target, targets) if sd_condition_target else np.zeros(targets)
        for s in range(sets):
            u_set = rng.normal(0, sd_set)
            set_target = rng.normal(0, sd_set_target, targets) if sd_set_target else np.zeros(targets)
            for r in range(seed_counts[s]):
                v_run = rng.normal(0, sd_run)
                noise = residuals(targets)
                for t in range(targets):
                    rows.append({"condition": name, "role": role, "language_set": f"s{s + 1}",
                                 "run": f"{name}/s{s + 1}/seed{r}", "seed": r, "target": f"t{t}", "task": "sim",
                                 "metric": "acc", "score": mean + shift + target_effects[t] + by_target[t] + u_set
                                 + set_target[t] + v_run + noise[t]})
    return pd.DataFrame(rows)


DEMO_SHAPE = {"sets": 6, "seeds": 1, "targets": 6, "sd_target": 5.0, "sd_set": 1.6, "sd_run": 0.5,
              "sd_residual": 2.0, "mean": 50.0}
"""The demo's design (6 sets × 1 seed × 6 targets per condition) with its stated components, in points."""
SCENARIOS = {
    "fitted-model": {},
    "treatment-target": {"sd_condition_target": 1.5},
    "set-target": {"sd_set_target": 2.0},
    "heavy-tailed": {"residual_df": 3},
    "unequal-seeds": {"seeds": [1, 2, 3]},
}
"""Truths the intervals must keep their promise under: the fitted model; each condition with its
own per-target deviation (sd 1.5 points); each set with its own per-target deviation (sd 2);
residuals from t with 3 df; 1, 2 or 3 seeds per set. Each also runs with no effect."""
METHODS = ("total effect", "hierarchical bootstrap", "mixed model", "unit-level bootstrap (old)")
PRIMARY_METHOD = "total effect"


def _intervals(frame: pd.DataFrame, methods: tuple[str, ...], n_resamples: int, confidence: float, seed: int):
    from weam.study.stats import hierarchical_bootstrap, mixed_model, total_effect, unit_level_interval

    fits = {"total effect": lambda: total_effect(frame, confidence),
            "hierarchical bootstrap": lambda: hierarchical_bootstrap(frame, n_resamples, confidence, seed=seed),
            "mixed model": lambda: mixed_model(frame, confidence=confidence),
            "unit-level bootstrap (old)": lambda: unit_level_interval(frame, n_resamples, confidence, seed=seed)}
    return [fits[name]() for name in methods]


def simulate_coverage(n_studies: int, effect: float, seed: int = 0, n_resamples: int = 1000, alpha: float = 0.05,
                      methods: tuple[str, ...] = METHODS, **design) -> pd.DataFrame:
    """Run the intervals on ``n_studies`` synthetic studies; per method: coverage of the true
    effect, mean interval width, share called significant (interval excludes 0), mean estimate.

    ``design``: keyword arguments of :func:`simulate_scores` (sets, seeds, targets, sd_*, …).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for study in range(n_studies):
        frame = simulate_scores(rng, effect, **design)
        for name, estimate in zip(methods, _intervals(frame, methods, n_resamples, 1 - alpha, study)):
            rows.append({"method": name, "estimate": estimate.estimate, "covers": estimate.covers(effect),
                         "width": estimate.high - estimate.low, "significant": estimate.low > 0 or estimate.high < 0})
    table = pd.DataFrame(rows).groupby("method", sort=False).agg(
        coverage=("covers", "mean"), mean_width=("width", "mean"), significant=("significant", "mean"),
        mean_estimate=("estimate", "mean"))
    table.insert(0, "studies", n_studies)
    return table.reset_index()


def scenario_coverage(scenario: str, n_studies: int, effect: float = 2.0, seed: int = 0, n_resamples: int = 1000,
                      methods: tuple[str, ...] = METHODS, shape: dict | None = None) -> pd.DataFrame:
    """One scenario of :data:`SCENARIOS`, with the effect and with none: per method, the coverage
    of ``effect`` and the false-positive rate (significant with no effect)."""
    if scenario not in SCENARIOS:
        raise WeamError(f"unknown scenario '{scenario}' (known: {', '.join(SCENARIOS)})")
    design = {**DEMO_SHAPE, **(shape or {}), **SCENARIOS[scenario]}
    with_effect = simulate_coverage(n_studies, effect, seed, n_resamples, methods=methods, **design)
    null = simulate_coverage(n_studies, 0.0, seed + 1, n_resamples, methods=methods, **design).set_index("method")
    return pd.DataFrame({
        "scenario": scenario, "method": with_effect["method"], "primary": with_effect["method"] == PRIMARY_METHOD,
        "coverage": with_effect["coverage"], "false_positive_rate": with_effect["method"].map(null["significant"]),
        "power": with_effect["significant"], "mean_width": with_effect["mean_width"], "studies": n_studies})


def print_design(study, steps, console) -> None:
    """``weam study plan``'s header: every language set (validated at load), its relatedness to the
    targets, the budget check where the data exist, the power statement and the cost."""
    from rich.table import Table

    from weam.study.config import diversity
    from weam.study.covariates import covariate_table

    covariates = covariate_table(study)
    table = Table("condition", "role", "set", "languages", "families", "entropy (bits)",
                  "targets with a same-family language", "mean script share", title="Language sets")
    for item in study.language_sets():
        rows = covariates[(covariates["condition"] == item.condition) & (covariates["language_set"] == item.set_id)]
        measure = diversity(list(item.languages))
        table.add_row(item.condition, item.role, item.set_id, ", ".join(item.languages), ", ".join(item.families),
                      f"{measure['family_entropy_bits']:.2f}", f"{int((rows['genealogical'] > 0).sum())}/{len(rows)}",
                      f"{rows['script'].mean():.2f}")
    console.print(table)
    if study.instrument is None:
        print_balance(covariates, console)
    console.print(f"{len(study.runs())} pre-training runs ({len(study.language_sets())} sets × {len(study.seeds)} seeds), "
                  f"held-out targets: {', '.join(study.held_out)}; design_seed {study.design_seed}")
    console.print(f"primary endpoint: {study.analysis.primary.task}/{study.analysis.primary.metric}/"
                  f"{study.analysis.primary.group} at α = {study.analysis.alpha:g}")
    _print_budgets(study, steps, console)
    for line in power_statement(study):
        console.print(line)


BALANCE_KINDS = ("genealogical", "typological", "script")
"""Relatedness kinds the plan can measure before any data exist (subword needs the tokenizer)."""
BALANCE_LABELS = {"genealogical": "genealogical depth", "typological": "typological distance",
                  "script": "script share"}
"""How each kind reads: shared classification depth and script share grow with relatedness, the
URIEL syntactic distance shrinks."""
BALANCE_THRESHOLD = 0.25
"""Largest standardised mean difference (treatment − control, over the pooled sd of the kind's
(set, target) values) taken as balance; 0.25 is the usual limit for covariate balance (Stuart 2010)."""


def balance_table(covariates: pd.DataFrame) -> pd.DataFrame:
    """Per target (and over all targets) and kind: each condition's mean relatedness to the target
    over its sets, the difference, and the standardised difference (pooled sd of the kind)."""
    roles = covariates[covariates["role"].isin(["treatment", "control"])]
    rows = []
    for measure in BALANCE_KINDS:
        values = roles.dropna(subset=[measure])
        sd = float(values[measure].std()) if len(values) > 1 else 0.0
        for target, part in [*values.groupby("target", sort=False), ("all targets", values)]:
            means = part.groupby("role")[measure].mean()
            treatment, control = means.get("treatment", math.nan), means.get("control", math.nan)
            difference = treatment - control
            smd = difference / sd if sd > 0 else (0.0 if difference == 0 else math.inf)
            rows.append({"kind": measure, "target": target, "treatment": treatment, "control": control,
                         "difference": difference, "standardised": smd})
    return pd.DataFrame(rows)


def balance_warnings(table: pd.DataFrame, threshold: float = BALANCE_THRESHOLD) -> list[str]:
    """One line per (kind, target) whose standardised difference exceeds ``threshold``, with its figures."""
    out = []
    for row in table.itertuples():
        if math.isfinite(row.difference) and abs(row.standardised) > threshold:
            out.append(f"warning: {BALANCE_LABELS[row.kind]} to {row.target}: treatment {row.treatment:.3g} vs control "
                       f"{row.control:.3g} (difference {row.difference:+.3g}, {row.standardised:+.2f} sd; "
                       f"threshold ±{threshold:g} sd): the conditions differ in more than diversity")
    return out


def print_balance(covariates: pd.DataFrame, console) -> None:
    """``weam study plan``'s balance table: per condition, mean relatedness to each target by kind."""
    from rich.table import Table

    table = balance_table(covariates)
    wide = table.pivot_table(index="target", columns="kind", values=["treatment", "control", "standardised"],
                             sort=False)
    out = Table("target", *[f"{BALANCE_LABELS[measure]} {role}" for measure in BALANCE_KINDS for role in ("T", "C", "Δ/sd")],
                title="Balance: each condition's mean relatedness to each target over its sets (T treatment, "
                      "C control, Δ/sd: (T − C) / the kind's sd over all set-target pairs; typological is a "
                      "distance: higher is less related)")
    for target in table["target"].unique():
        cells = []
        for measure in BALANCE_KINDS:
            cells += [f"{wide.loc[target, ('treatment', measure)]:.3g}", f"{wide.loc[target, ('control', measure)]:.3g}",
                      f"{wide.loc[target, ('standardised', measure)]:+.2f}"]
        out.add_row(target, *cells)
    console.print(out)
    warnings_ = balance_warnings(table)
    for line in warnings_:
        console.print(line)
    if not warnings_:
        console.print(f"balance: every kind and target within ±{BALANCE_THRESHOLD:g} sd between the conditions")


def _print_budgets(study, steps, console) -> None:
    from weam.training.stage import BudgetConfig, check_budgets

    budget = next((s.config for s in steps if isinstance(s.config, BudgetConfig)), None)
    if budget is None:
        return
    files = [Path(f) for condition in budget.conditions for f in condition.files]
    if not all(f.is_file() for f in files):
        console.print("budgets: checked once the data exist (`weam study run` checks them before the first "
                      "pre-training run)")
        return
    try:
        available = check_budgets(budget)
    except OSError:
        console.print("budgets: the tokenizer does not exist yet; checked before the first pre-training run")
        return
    for key, info in available.items():
        worst = max(info["passes"].values())
        console.print(f"budget {key}: {info['tokens']:,} tokens of data, at most {worst:.2f} passes over a pair "
                      f"(max_epochs {study.max_epochs:g})")
