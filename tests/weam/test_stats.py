"""The design-respecting statistics on synthetic studies with a known effect and known variance
components (weam.study.power.simulate_scores). The 200-study coverage table is
benchmarks/study_stats_coverage.py; these tests run smaller, seeded simulations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from weam.core.errors import WeamError
from weam.study.power import simulate_coverage, simulate_scores
from weam.study.stats import (
    check_tidy,
    covariate_effects,
    hierarchical_bootstrap,
    holm,
    mixed_model,
    statement,
    total_effect,
    unit_level_interval,
)

DESIGN = {"sets": 6, "seeds": 2, "targets": 5}


def test_mixed_model_recovers_effect_and_variance_components_of_a_large_study():
    frame = simulate_scores(np.random.default_rng(0), effect=0.05, sets=20, seeds=2, targets=5,
                            sd_target=0.1, sd_set=0.03, sd_run=0.01, sd_residual=0.02)
    result = mixed_model(frame)
    assert result.covers(0.05) and abs(result.estimate - 0.05) < 0.02
    sd = {name: math.sqrt(v) for name, v in result.variance.items()}
    assert sd["language_set"] == pytest.approx(0.03, rel=0.35)
    assert sd["residual"] == pytest.approx(0.02, rel=0.15)
    # Five targets: compare with the spread of the five target effects actually drawn.
    assert sd["target"] == pytest.approx(frame.groupby("target")["score"].mean().std(), rel=0.1)
    # 38 between-set df, fewer (Satterthwaite) as the fit gives the condition × target term a little variance.
    assert 30 < result.df <= 38 and result.p_value < 1e-3


def test_intervals_cover_the_true_effect_and_the_old_unit_level_one_does_not():
    table = simulate_coverage(40, effect=0.05, seed=11, n_resamples=500, **DESIGN).set_index("method")
    assert table.loc["mixed model", "coverage"] >= 0.9
    assert table.loc["hierarchical bootstrap", "coverage"] >= 0.9
    # The old interval treats (seed × language) cells as independent: far below its nominal 95 %.
    assert table.loc["unit-level bootstrap (old)", "coverage"] < 0.75
    assert table.loc["mixed model", "mean_estimate"] == pytest.approx(0.05, abs=0.01)


def test_no_effect_is_rarely_called_significant():
    table = simulate_coverage(40, effect=0.0, seed=12, n_resamples=500, **DESIGN,
                              methods=("total effect", "mixed model", "unit-level bootstrap (old)")).set_index("method")
    assert table.loc["mixed model", "significant"] <= 0.07
    assert table.loc["total effect", "significant"] <= 0.07
    assert table.loc["unit-level bootstrap (old)", "significant"] > 0.2


def test_total_effect_variance_is_unbiased_when_conditions_differ_by_target():
    """The estimated variance of the total effect, averaged over studies, matches the spread of the
    estimate over those studies (targets redrawn each time: they are random), and the interval
    covers the true effect; the old unit-level interval does not."""
    from weam.study.power import DEMO_SHAPE, SCENARIOS

    rng = np.random.default_rng(21)
    design = {**DEMO_SHAPE, **SCENARIOS["treatment-target"]}
    fits = [total_effect(simulate_scores(rng, 2.0, **design)) for _ in range(150)]
    estimates = np.array([f.estimate for f in fits])
    variances = np.array([((f.high - f.estimate) / stats.t.ppf(0.975, f.df)) ** 2 for f in fits])
    # Var = 2·1.6²/6 + 2·0.5²/6 + 2·2²/36 + 2·1.5²/6 = 1.93 (set, run, residual, condition × target)
    assert np.var(estimates, ddof=1) == pytest.approx(1.93, rel=0.3)
    assert variances.mean() == pytest.approx(np.var(estimates, ddof=1), rel=0.3)
    assert np.mean([f.covers(2.0) for f in fits]) >= 0.9
    assert np.mean(estimates) == pytest.approx(2.0, abs=0.35)
    assert {"language_set", "condition_target", "cell"} <= set(fits[0].variance)


def test_total_effect_of_a_hand_made_table():
    """2 sets × 2 targets per condition: estimate, the interval from the mean squares by hand."""
    rows = []
    cells = {("treatment", "a"): [3.0, 5.0], ("treatment", "b"): [4.0, 8.0],
             ("control", "a"): [1.0, 2.0], ("control", "b"): [2.0, 1.0]}
    for (role, set_id), scores in cells.items():
        for target, score in zip(("x", "y"), scores):
            rows.append({"condition": role, "role": role, "language_set": set_id, "run": f"{role}/{set_id}",
                         "seed": 0, "target": target, "task": "t", "metric": "m", "score": score})
    fit = total_effect(pd.DataFrame(rows))
    assert fit.estimate == pytest.approx(5.0 - 1.5)
    # set means: treatment 4, 6 (var 2), control 1.5, 1.5 (var 0); per-target differences 2, 5
    # (var 4.5); two-way residual mean squares (cells ±0.5, 1 df): 1.0 each.
    # Var = 2/2 + 0/2 + 4.5/2 − (1.0 + 1.0)/4 = 2.75
    half = fit.high - fit.estimate
    assert (half / stats.t.ppf(0.975, fit.df)) ** 2 == pytest.approx(2.75)
    terms = [(1 / 2, 2.0, 1), (1 / 2, 0.0, 1), (1 / 2, 4.5, 1), (-1 / 4, 1.0, 1), (-1 / 4, 1.0, 1)]
    assert fit.df == pytest.approx(2.75**2 / sum((k * ms) ** 2 / df for k, ms, df in terms))
    with pytest.raises(WeamError, match="every control set scored on every target"):
        total_effect(pd.DataFrame(rows[:-1]))


def test_coverage_benchmark_writes_its_rows(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "rows.json"
    result = subprocess.run([sys.executable, "benchmarks/study_stats_coverage.py", "--scenario", "treatment-target",
                             "--studies", "5", "--resamples", "100", "--methods", "total effect",
                             "hierarchical bootstrap", "--json", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert [(r["scenario"], r["method"], r["primary"], r["studies"]) for r in rows] == [
        ("treatment-target", "total effect", True, 5), ("treatment-target", "hierarchical bootstrap", False, 5)]
    assert all(0 <= r["coverage"] <= 1 and 0 <= r["false_positive_rate"] <= 1 for r in rows)
    assert "| treatment-target | total effect | yes |" in result.stdout
    bad = subprocess.run([sys.executable, "benchmarks/study_stats_coverage.py", "--scenario", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown scenario 'nope'" in bad.stderr


def test_one_set_per_condition_is_not_tested():
    frame = simulate_scores(np.random.default_rng(1), effect=0.1, sets=1, seeds=3, targets=5)
    result = mixed_model(frame)
    assert not result.testable and math.isnan(result.low)
    assert "no degrees of freedom" in statement(result, 0.05)
    primary = total_effect(frame)
    assert not primary.testable and "no degrees of freedom" in statement(primary, 0.05)


def test_bootstrap_resamples_examples_within_a_language():
    frame = simulate_scores(np.random.default_rng(2), effect=0.0, sets=4, seeds=1, targets=3,
                            sd_set=0.0, sd_run=0.0, sd_residual=1e-6, sd_target=0.0)
    rng = np.random.default_rng(3)
    # 20 examples per target, answered independently by each run at the run's accuracy (~0.5).
    examples = pd.DataFrame([{"run": run, "target": target, "example": k, "correct": float(rng.random() < 0.5)}
                             for run in frame["run"].unique() for target in frame["target"].unique()
                             for k in range(20)])
    per_run = examples.groupby(["run", "target"], as_index=False)["correct"].mean()
    frame = frame.drop(columns="score").merge(per_run.rename(columns={"correct": "score"}), on=["run", "target"])
    without = hierarchical_bootstrap(frame, 1000, seed=0)
    with_examples = hierarchical_bootstrap(frame, 1000, seed=0, examples=examples)
    assert with_examples.estimate == pytest.approx(without.estimate)
    # Example-level noise is part of the run-level spread already; resampling examples adds its share again
    # only within runs, so the interval grows but stays of the same order.
    assert with_examples.high - with_examples.low > without.high - without.low


def test_holm_adjusts_step_down_and_keeps_nan():
    rejected, adjusted = holm([0.01, 0.04, 0.03, float("nan")], alpha=0.05)
    assert list(adjusted[:3]) == pytest.approx([0.03, 0.06, 0.06])
    assert list(rejected) == [True, False, False, False] and math.isnan(adjusted[3])


def test_covariate_regression_recovers_a_relatedness_slope():
    rng = np.random.default_rng(4)
    frame = simulate_scores(rng, effect=0.0, sets=12, seeds=1, targets=6, sd_set=0.005, sd_residual=0.005)
    frame["genealogical"] = rng.integers(0, 6, len(frame)).astype(float)
    frame["genealogical"] = frame.groupby(["condition", "language_set", "target"])["genealogical"].transform("first")
    frame["score"] += 0.02 * frame["genealogical"]
    frame["n_families"] = np.where(frame["role"] == "treatment", 3.0, 1.0)  # the condition, restated
    table = covariate_effects(frame, ["genealogical"]).set_index("term")
    assert table.loc["genealogical", "coef"] == pytest.approx(0.02, abs=0.005)
    # 24 sets: p from t with 23 df (not the normal), and n_families left out as the condition itself.
    row = table.loc["genealogical"]
    assert row["p"] == pytest.approx(2 * stats.t.sf(abs(row["coef"] / row["se"]), 23))
    assert "p from t with 23 df" in row["note"] and "n_families left out" in row["note"]
    assert mixed_model(frame, ["genealogical"]).covers(0.0)


def test_bad_tables_are_refused_naming_the_problem():
    with pytest.raises(WeamError, match="lacks columns"):
        check_tidy(pd.DataFrame({"score": [1.0]}))
    frame = simulate_scores(np.random.default_rng(5), effect=0.0, sets=3, seeds=1, targets=2)
    with pytest.raises(WeamError, match="covariate 'subword' is not a column"):
        mixed_model(frame, ["subword"])
    with pytest.raises(WeamError, match="every run scored on every target"):
        hierarchical_bootstrap(frame.iloc[1:], 100)
    assert unit_level_interval(frame, 200).method.startswith("unit-level")


# ---------------------------------------------------------------------------------------------
# Power


def test_contrast_se_matches_simulated_spread_of_the_estimate():
    from weam.study.power import Components, contrast_se

    rng = np.random.default_rng(6)
    design = {"sets": 4, "seeds": 2, "targets": 3, "sd_target": 5.0, "sd_set": 1.0, "sd_run": 0.5, "sd_residual": 2.0}
    diffs = []
    for _ in range(400):
        frame = simulate_scores(rng, 0.0, **design)
        means = frame.groupby("role")["score"].mean()
        diffs.append(means["treatment"] - means["control"])
    expected = contrast_se(Components(1.0, 0.5, 2.0, "test"), 4, 2, 3)
    assert np.std(diffs, ddof=1) == pytest.approx(expected, rel=0.1)
    # Each condition its own deviation per target (targets redrawn per study): 2σ²/T more variance.
    diffs = []
    for _ in range(400):
        frame = simulate_scores(rng, 0.0, **design, sd_condition_target=2.0)
        means = frame.groupby("role")["score"].mean()
        diffs.append(means["treatment"] - means["control"])
    expected = contrast_se(Components(1.0, 0.5, 2.0, "test", sd_condition_target=2.0), 4, 2, 3)
    assert expected**2 == pytest.approx(contrast_se(Components(1.0, 0.5, 2.0, "test"), 4, 2, 3) ** 2 + 2 * 4 / 3)
    assert np.std(diffs, ddof=1) == pytest.approx(expected, rel=0.1)


def test_minimum_detectable_effect_and_runs_needed_are_consistent():
    from weam.study.power import Components, achieved_power, power_for, sets_needed

    c = Components(2.0, 0.5, 2.0, "test")
    planned = power_for(c, sets=4, seeds=1, targets=6)
    assert planned.df == 6
    assert achieved_power(c, 4, 1, 6, planned.mde) == pytest.approx(0.8, abs=0.03)
    needed = sets_needed(c, seeds=1, targets=6, effect=2.0)
    assert power_for(c, needed, 1, 6).mde <= 2.0 < power_for(c, needed - 1, 1, 6).mde
    # Seeds cannot buy what sets buy: σ_set² / S is a floor.
    assert power_for(c, 4, 1000, 6).mde > power_for(c, 8, 1, 6).mde
    assert math.isnan(power_for(c, 1, 3, 6).mde)  # one set per condition: no df


def test_power_cli_prints_mde_and_runs_needed_for_the_demo(tmp_path):
    from typer.testing import CliRunner

    from weam.study.cli import app

    # An empty work dir: a demo finished in this checkout (runs/demo) would otherwise be measured.
    result = CliRunner().invoke(app, ["power", "configs/demo.yaml", "--set", f"work_dir={tmp_path / 'demo'}"],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    # SE = √(2 (1.6² + 0.5² + 2² / 6) / 6 + 2 · 1.5² / 6) = 1.382 (the condition × target term:
    # + 0.75); Satterthwaite df 11.2; MDE = (t.975 + t.80 on 11.2 df) × SE.
    assert "6 language sets per condition × 1 seed(s) × 6 targets" in result.output
    assert "contrast SE = 1.382, df = 11.2" in result.output
    assert "minimum detectable effect (α = 0.05, power 80%): 4.242" in result.output
    # With 6 targets, 2 · 1.5² / 6 alone gives SE 0.87: no number of sets detects 2 points.
    assert ("sets per condition needed for effect 2 (power 80%, 1 seed(s)): none — with 6 targets the "
            "condition × target spread alone leaves MDE 3.02") in result.output
    assert "device-hours unknown" in result.output


def test_power_without_a_condition_by_target_term_gives_sets_for_each_effect():
    from weam.core.config import load_config
    from weam.study.config import StudyConfig
    from weam.study.power import power_statement

    study = load_config(StudyConfig, "configs/demo.yaml", ["power.sd_condition_target=0"])
    lines = power_statement(study)
    # As before the term existed: SE = √(2 (1.6² + 0.5² + 2² / 6) / 6) = 1.077 on 10 df.
    assert any("contrast SE = 1.077, df = 10" in line for line in lines)
    needed = [line for line in lines if line.startswith("sets per condition needed")]
    assert [line.split(" (power")[0].rsplit(" ", 1)[1] for line in needed] == ["0.5", "1", "1.5", "2"]
    assert needed[-1].endswith(": 15 = 30 pre-training runs")


def test_device_hours_come_from_manifests_else_a_benchmark_else_are_said_to_be_assumed(tmp_path):
    import json

    from weam.core.config import load_config
    from weam.study.config import StudyConfig
    from weam.study.power import device_hours_per_run, power_statement

    bench = tmp_path / "bench.json"
    overrides = [f"work_dir={tmp_path / 'work'}", f"power.throughput={bench}", "power.device_hours_per_run=1.0",
                 "power.device=one A100"]
    study = load_config(StudyConfig, "configs/studies/family-diversity-mbert.yaml", overrides)
    hours, device, source = device_hours_per_run(study)
    assert (hours, device) == (1.0, "one A100") and source.startswith("assumed, not measured")
    assert "does not exist yet" in source
    bench.write_text(json.dumps({"device": "NVIDIA H100 80GB HBM3", "devices": 1, "preset": "mbert-base",
                                 "precision": "bf16", "rows": [
                                     {"objective": "weam", "zero": 2, "tokens_per_s": 50_000.0},
                                     {"objective": "weam", "zero": 3, "error": "out of memory"},
                                     {"objective": "mlm", "zero": 2, "tokens_per_s": 90_000.0}]}))
    hours, device, source = device_hours_per_run(study)
    assert hours == pytest.approx(200_000_000 / 50_000 / 3600)  # the template's budget at weam's rate
    assert device == "NVIDIA H100 80GB HBM3" and source.startswith("measured: 50,000 tokens/s of weam, ZeRO-2")
    # Finished pre-training runs win, and name the device they ran on: CPU hours are not called GPU hours.
    run = tmp_path / "work" / "pretrain" / "diverse" / "s1" / "seed0"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"counts": {"tokens": 1_000_000, "wall_seconds": 360.0,
                                                              "world_size": 2, "device": "CPU x86_64 (2 cores)"}}))
    hours, device, source = device_hours_per_run(study)
    assert hours == pytest.approx(360.0 * 2 / 1_000_000 * 200_000_000 / 3600) and device == "CPU x86_64 (2 cores)"
    cost = next(line for line in power_statement(study) if line.startswith("cost:"))
    assert "device-hours on CPU x86_64 (2 cores) (measured: median throughput of 1 finished" in cost
    assert "GPU" not in cost
    bench.write_text(json.dumps({"rows": [{"objective": "mlm", "tokens_per_s": 1.0}]}))
    (run / "manifest.json").unlink()
    with pytest.raises(WeamError, match="no successful weam row"):
        device_hours_per_run(study)


def test_power_reads_a_pilots_variance_components(tmp_path):
    import json

    from weam.core.config import load_config
    from weam.study.config import StudyConfig
    from weam.study.power import components_from, power_statement

    (tmp_path / "variance_components.json").write_text(json.dumps(
        {"study": "pilot", "endpoint": "tatoeba/accuracy/all held-out",
         "variance": {"language_set": 4.0, "run": 0.25, "target": 30.0, "residual": 1.0}}))
    study = load_config(StudyConfig, "configs/demo.yaml")
    c = components_from(study, tmp_path)
    assert (c.sd_set, c.sd_run, c.sd_residual) == (2.0, 0.5, 1.0) and "pilot" in c.source
    assert any("minimum detectable effect" in line for line in power_statement(study, tmp_path))
    with pytest.raises(WeamError, match="no variance components"):
        components_from(study, tmp_path / "nowhere")


def test_one_target_two_sets_gives_an_untested_estimate():
    frame = simulate_scores(np.random.default_rng(7), effect=1.0, sets=1, seeds=1, targets=1)
    result = mixed_model(frame)
    assert not result.testable and "no random effect is estimable" in " ".join(result.notes)
    means = frame.groupby("role")["score"].mean()
    assert result.estimate == pytest.approx(means["treatment"] - means["control"])


def test_subword_overlap_counts_target_tokens_seen_in_the_set(tmp_path):
    from weam.study.covariates import subword_overlap

    class Words:  # a whitespace "tokenizer": one id per distinct word
        def __init__(self):
            self.ids = {}

        def __call__(self, lines, add_special_tokens=False):
            return {"input_ids": [[self.ids.setdefault(w, len(self.ids)) for w in line.split()] for line in lines]}

    (tmp_path / "a.txt").write_text("x y z\nx x\n")
    (tmp_path / "b.txt").write_text("w\n")
    (tmp_path / "t.txt").write_text("x w q q\n")
    # target tokens x, w, q, q: x and w are seen in the set's text → 2 / 4
    assert subword_overlap(Words(), [tmp_path / "a.txt", tmp_path / "b.txt"], tmp_path / "t.txt") == 0.5


def test_plan_balance_table_and_warnings_for_the_demo():
    """Per condition the mean relatedness to each target; a standardised difference beyond the
    threshold is warned about with its figures (the demo: 3 of 6 single-family sets are
    Indo-European and hold mr's relatives, no diverse set does)."""
    from weam.core.config import load_config
    from weam.study.config import StudyConfig
    from weam.study.covariates import covariate_table
    from weam.study.power import BALANCE_THRESHOLD, balance_table, balance_warnings

    study = load_config(StudyConfig, "configs/demo.yaml")
    covariates = covariate_table(study)
    table = balance_table(covariates).set_index(["kind", "target"])
    mr = table.loc[("genealogical", "mr")]
    by_hand = covariates[covariates["target"] == "mr"].groupby("role")["genealogical"].mean()
    assert (mr["treatment"], mr["control"]) == pytest.approx((by_hand["treatment"], by_hand["control"]))
    assert mr["treatment"] == 0 and mr["control"] > 0
    pooled = covariates[covariates["role"].isin(["treatment", "control"])]["genealogical"].std()
    assert mr["standardised"] == pytest.approx((mr["treatment"] - mr["control"]) / pooled)
    assert table.loc[("genealogical", "te"), "standardised"] == 0  # no set holds a Dravidian language
    warnings_ = balance_warnings(balance_table(covariates))
    assert any(line.startswith("warning: genealogical depth to mr: treatment 0 vs control") for line in warnings_)
    assert f"threshold ±{BALANCE_THRESHOLD:g} sd" in warnings_[0]
    assert not any("to te:" in line and "genealogical" in line for line in warnings_)
