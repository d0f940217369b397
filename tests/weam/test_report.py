"""The study report on a real MLflow SQLite store holding a synthetic study in the run structure
weam.study.run writes (condition parents, pretrain and eval runs per seed)."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from weam.errors import WeamError
from weam.languages import get_language
from weam.study.report import write_report
from weam.tracking import TAG_CONDITION, TAG_OBJECTIVE, TAG_SEED, TAG_STAGE, TAG_STUDY, TAG_TASK, RunLogger

STUDY = "synthetic-study"
HELD_OUT = ["sw", "yo", "ta"]  # sw, yo: Atlantic-Congo, low-resource; ta: Dravidian, not low-resource
# Tatoeba accuracy per condition, language, and seed (index = seed rank).
SCORES = {
    "diverse": {"sw": [0.50, 0.52, 0.54], "yo": [0.40, 0.42, 0.44], "ta": [0.60, 0.61, 0.62]},
    "single": {"sw": [0.45, 0.46, 0.47], "yo": [0.35, 0.37, 0.39], "ta": [0.61, 0.60, 0.62]},
}
CONDITIONS = {
    "diverse": {"role": "treatment", "languages": ["de", "fi", "tr"]},
    "single": {"role": "control", "languages": ["de", "fr", "hi"]},
}
TOKENS = {"diverse": 100_000, "single": 100_500}


def log_synthetic_study(uri: str, study: str = STUDY, seeds: dict[str, list[int]] | None = None,
                        skip_eval: tuple[str, ...] = (), eval_seeds: tuple[int, ...] = (1,),
                        drop: tuple[str, int, str] | None = None) -> dict[str, list[str]]:
    """Log the synthetic study through RunLogger, as weam.study.run and eval.api do; returns run ids
    by stage. Several ``eval_seeds`` (fine-tuning seeds) spread ±0.01 around SCORES, mean unchanged;
    ``drop=(condition, seed rank, lang)`` leaves one language out of one eval run."""
    seeds = seeds or {"diverse": [0, 1, 2], "single": [0, 1, 2]}
    ids: dict[str, list[str]] = {"condition": [], "pretrain": [], "eval": []}
    for name, spec in CONDITIONS.items():
        families = sorted({get_language(code).family for code in spec["languages"]})
        parent = RunLogger(uri, study, name, tags={
            TAG_STUDY: study, TAG_STAGE: "condition", TAG_CONDITION: name, "weam.role": spec["role"],
            "weam.families": ",".join(families), "weam.n_families": len(families)})
        ids["condition"].append(parent.run_id)
        for rank, seed in enumerate(seeds[name]):
            common = {TAG_STUDY: study, TAG_CONDITION: name, TAG_SEED: seed}
            with RunLogger(uri, study, f"pretrain-{name}-seed{seed}", parent_run_id=parent.run_id,
                           tags={**common, TAG_STAGE: "pretrain", TAG_OBJECTIVE: "weam"}) as pretrain:
                per_pair = TOKENS[name] // len(spec["languages"])
                pretrain.log_metrics({"train/loss": 3.0 - rank, "train/tokens": TOKENS[name],
                                      "train/wall_seconds": 3600.0, "train/cpu_hours": 1.0,
                                      **{f"train/tokens/en-{code}": per_pair for code in spec["languages"]}})
            ids["pretrain"].append(pretrain.run_id)
            if name in skip_eval:
                continue
            for k, eval_seed in enumerate(eval_seeds):
                shift = 0.01 * (2 * k - (len(eval_seeds) - 1)) if len(eval_seeds) > 1 else 0.0
                values = {code: SCORES[name][code][rank] + shift for code in HELD_OUT
                          if drop != (name, rank, code)}
                with RunLogger(uri, study, f"eval-{name}-seed{seed}-tatoeba-ft{eval_seed}",
                               parent_run_id=pretrain.run_id,
                               tags={TAG_STAGE: "eval", TAG_TASK: "tatoeba", "weam.eval_seed": eval_seed,
                                     **common}) as evaluation:
                    for metric in ("accuracy", "score"):  # eval.api logs the task score beside its metrics
                        evaluation.log_metrics({
                            **{f"tatoeba/{metric}/{code}": value for code, value in values.items()},
                            f"tatoeba/{metric}/avg": float(np.mean(list(values.values()))),
                            f"tatoeba/{metric}/low_resource": (values["sw"] + values["yo"]) / 2,
                            f"tatoeba/{metric}/family/Atlantic-Congo": (values["sw"] + values["yo"]) / 2,
                            f"tatoeba/{metric}/family/Dravidian": values["ta"],
                        } if drop is None else {f"tatoeba/{metric}/{c}": v for c, v in values.items()})
                ids["eval"].append(evaluation.run_id)
        parent.end()
    return ids


def make_store(root, study: str = STUDY) -> str:
    """A SQLite store (reused when it exists) with an experiment for ``study`` whose artifacts stay
    under ``root`` (not in ./mlruns of the working directory, MLflow's default for SQLite stores)."""
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
def report(store_root):
    uri = make_store(store_root)
    ids = log_synthetic_study(uri)
    path = write_report(uri, STUDY, store_root / "report")
    return uri, ids, path, path.read_text(encoding="utf-8")


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.4f} ± {std:.4f}"


def test_condition_table_matches_hand_computed_means(report):
    _, _, _, text = report
    # diverse: per-seed means over sw, yo, ta = 0.5, 0.51667, 0.53333; low-resource (sw, yo) 0.45, 0.47, 0.49
    assert "| diverse | treatment | 3 | 0.5167 ± 0.0167 | 0.4700 ± 0.0200 | 0.4700 ± 0.0200 | 0.6100 ± 0.0100 |" in text
    # single: per-seed means 0.47, 0.47667, 0.49333 (std 0.01202); low-resource 0.40, 0.415, 0.43
    assert "| single | control | 3 | 0.4800 ± 0.0120 | 0.4150 ± 0.0150 | 0.4150 ± 0.0150 | 0.6100 ± 0.0100 |" in text


def test_language_table_marks_low_resource_and_has_seed_means(report):
    _, _, _, text = report
    sw = SCORES["diverse"]["sw"], SCORES["single"]["sw"]
    expected = f"| sw* (Swahili) | Atlantic-Congo | yes | {_fmt(np.mean(sw[0]), np.std(sw[0], ddof=1))} | " \
               f"{_fmt(np.mean(sw[1]), np.std(sw[1], ddof=1))} |"
    assert expected in text
    assert "| ta (Tamil) | Dravidian | no | 0.6100 ± 0.0100 | 0.6100 ± 0.0100 |" in text


def test_difference_rows_and_significance(report):
    _, _, path, text = report
    diffs = {code: np.subtract(SCORES["diverse"][code], SCORES["single"][code]) for code in HELD_OUT}
    overall = np.mean(np.concatenate(list(diffs.values())))  # (0.18 + 0.15 + 0.00) / 9
    assert math.isclose(overall, 0.33 / 9)
    row = next(line for line in text.splitlines() if line.startswith("| all held-out | seed × language |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2] == "9" and cells[3] == f"{overall:.4f}"
    # Low-resource diffs are all ≥ 0.05: every bootstrap resample is positive, and with 6 positive
    # sign-flip units the exact permutation p is 2 / 2**6.
    low = next(line for line in text.splitlines() if line.startswith("| low-resource | seed × language |"))
    low_cells = [cell.strip() for cell in low.strip("|").split("|")]
    assert low_cells[2] == "6" and low_cells[3] == "0.0550"
    assert low_cells[5] == "0.0312" and "treatment better than control" in low_cells[6]
    dravidian = next(line for line in text.splitlines() if line.startswith("| family: Dravidian | seed × language |"))
    assert "| 3 | 0.0000 |" in dravidian and "too few for a bootstrap CI" in dravidian  # ta diffs -0.01, +0.01, 0
    assert "0 ↔ 0, 1 ↔ 1, 2 ↔ 2" in text
    seed_row = next(line for line in text.splitlines() if "| seed (mean over languages) |" in line)
    assert "| 0.2500 |" in seed_row and "too few for a bootstrap CI" in seed_row  # 2 of 2**3 sign patterns


def test_cost_table_and_ui_section(report):
    _, ids, _, text = report
    # columns: runs, tokens, tokens en-de, en-fi, en-fr, en-hi, en-tr, cpu hours (sum), wall seconds (sum)
    assert "| diverse | 3 | 100,000 | 33,333 | 33,333 | — | — | 33,333 | 3.000 | 10,800 |" in text
    assert "| single | 3 | 100,500 | 33,500 | — | 33,500 | 33,500 | — | 3.000 | 10,800 |" in text
    assert "Token budgets differ by 0.50%" in text
    assert "tatoeba/accuracy/low_resource" in text and "weam.role" in text
    for run_id in ids["eval"]:
        assert run_id in text  # the compare-view link names every eval run


def test_plots_are_valid_pngs_and_logged_to_report_run(report):
    uri, _, path, _ = report
    pngs = sorted(path.parent.glob("*.png"))
    assert [p.name for p in pngs] == ["tatoeba_accuracy_difference.png", "tatoeba_accuracy_languages.png"]
    assert all(is_png(p) for p in pngs)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(STUDY)
    runs = client.search_runs([experiment.experiment_id], "tags.`weam.stage` = 'report'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    logged = {a.path for a in client.list_artifacts(runs[0].info.run_id, "report")}
    assert logged == {"report/report.md", "report/differences.csv", *(f"report/{p.name}" for p in pngs)}
    assert math.isclose(runs[0].data.metrics["tatoeba/accuracy/diff/low_resource"], 0.055)


def test_seeds_pair_by_rank_when_values_differ(store_root, tmp_path):
    study = "rank-study"
    uri = make_store(store_root, study)
    log_synthetic_study(uri, study, seeds={"diverse": [7, 8, 9], "single": [10, 2, 1]})
    text = write_report(uri, study, tmp_path / "report", log_to_mlflow=False).read_text(encoding="utf-8")
    assert "7 ↔ 1, 8 ↔ 2, 9 ↔ 10" in text and "no partner" not in text
    assert "| all held-out | seed (mean over languages) | 3 | 0.0367 |" in text
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(study).experiment_id
    assert not client.search_runs([experiment_id], "tags.`weam.stage` = 'report'")  # log_to_mlflow=False


def test_fine_tuning_seeds_are_averaged_per_pretraining_seed(store_root, tmp_path):
    study = "ft-study"
    uri = make_store(store_root, study)
    ids = log_synthetic_study(uri, study, eval_seeds=(1, 2))
    assert len(ids["eval"]) == 12
    text = write_report(uri, study, tmp_path / "report", log_to_mlflow=False).read_text(encoding="utf-8")
    # ±0.01 around the same scores: the same tables as with one fine-tuning seed
    assert "| diverse | treatment | 3 | 0.5167 ± 0.0167 | 0.4700 ± 0.0200 |" in text
    assert "mean over 2 fine-tuning seeds" in text
    assert "tatoeba/score repeats tatoeba/accuracy" in text and "## tatoeba — score" not in text


def test_unpaired_seed_is_left_out_of_differences_and_said(store_root, tmp_path):
    study = "unpaired-study"
    uri = make_store(store_root, study)
    log_synthetic_study(uri, study, seeds={"diverse": [0, 1, 2], "single": [0, 1]})
    text = write_report(uri, study, tmp_path / "report", log_to_mlflow=False).read_text(encoding="utf-8")
    assert "diverse: seeds 2 have no partner" in text and "0 ↔ 0, 1 ↔ 1." in text
    assert "| diverse | treatment | 3 | 0.5167 ± 0.0167 |" in text  # all 3 seeds in its own table
    # differences over 2 seeds × 3 languages: sw .05 .06, yo .05 .05, ta -.01 .01 → 0.21 / 6
    row = next(line for line in text.splitlines() if line.startswith("| all held-out | seed × language |"))
    assert "| 6 | 0.0350 |" in row


def test_missing_language_names_the_run(store_root, tmp_path):
    study = "missing-lang-study"
    uri = make_store(store_root, study)
    ids = log_synthetic_study(uri, study, drop=("single", 1, "yo"))
    missing_run = ids["eval"][4]  # diverse ranks 0-2, then single rank 0, 1
    with pytest.raises(WeamError, match=f"condition single seed 1 .*eval run {missing_run} has no "
                                        "tatoeba/accuracy score for yo"):
        write_report(uri, study, tmp_path / "report", log_to_mlflow=False)


def test_missing_eval_runs_and_experiment_are_named(store_root, tmp_path):
    study = "missing-eval-study"
    uri = make_store(store_root, study)
    log_synthetic_study(uri, study, skip_eval=("single",))
    with pytest.raises(WeamError, match="condition single has no eval runs for task tatoeba"):
        write_report(uri, study, tmp_path / "report", log_to_mlflow=False)
    with pytest.raises(WeamError, match="no eval runs for task ner"):
        write_report(uri, study, tmp_path / "report", task="ner", log_to_mlflow=False)
    with pytest.raises(WeamError, match="no MLflow experiment named 'other'"):
        write_report(uri, "other", tmp_path / "report", log_to_mlflow=False)
