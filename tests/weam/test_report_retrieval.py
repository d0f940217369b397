"""The report's retrieval tables (Tatoeba's MRR, chance levels, shared-word figures per language) on
the synthetic study of test_report, written as the eval stage's results.json files; the tested
comparisons are exactly those of the same study scored with accuracy alone."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.weam.test_report import BASE, OWN_BASE, OWN_GAIN, SCORES, SEEDS, SETS, STUDY, TARGETS, row, study_config
from weam.core.manifest import write_manifest
from weam.study.report import write_report

POOL = {"sw": 400, "yo": 300, "wo": 200, "ta": 480, "te": 350}
SHARED = {"sw": 80, "yo": 6, "wo": 10, "ta": 0, "te": 3}


def figures(accuracy: float, target: str, pool: int | None = None) -> dict[str, float]:
    """The eval stage's Tatoeba cell: MRR 10 points over accuracy, 2 points lost without shared words."""
    n = pool or POOL.get(target, 250)
    return {"accuracy": accuracy, "mrr": accuracy + 10.0, "accuracy_no_shared_word": accuracy - 2.0,
            "chance_accuracy": 100.0 / n, "chance_mrr": 100.0 * sum(1 / k for k in range(1, n + 1)) / n,
            "n_shared_word": float(SHARED.get(target, 1))}


def _eval(work, folder: str, per_language: dict[str, float], full: bool) -> None:
    out = work / "eval" / folder
    (out / "tatoeba").mkdir(parents=True)
    cells = {code: figures(v, code) if full else {"accuracy": v} for code, v in per_language.items()}
    (out / "tatoeba" / "results.json").write_text(json.dumps({"task": "tatoeba", "per_language": cells}))
    write_manifest(out, "eval", {}, {}, {"tatoeba": "tatoeba/results.json"}, {"model": f"/m/{folder}"})


def write_study(work, full: bool) -> None:
    """test_report's synthetic study in the stage files' layout (eval results, pretrain manifests)."""
    own_languages = sorted({code for c in SETS.values() for s in c.values() for code in s})
    _eval(work, "base/seed0", {**BASE, **dict.fromkeys(own_languages, OWN_BASE)}, full)
    for name, condition_sets in SETS.items():
        for set_id, languages in condition_sets.items():
            for seed in SEEDS:
                scores = dict(SCORES[(name, set_id, seed)])
                scores.update(dict.fromkeys(own_languages, OWN_BASE + 1.0))
                scores.update(dict.fromkeys(languages, OWN_BASE + OWN_GAIN))
                _eval(work, f"{name}/{set_id}/seed{seed}", scores, full)
                out = work / "pretrain" / name / set_id / f"seed{seed}"
                out.mkdir(parents=True)
                write_manifest(out, "pretrain", {}, {}, {}, {
                    "tokens": 100_000, "steps": 3, "wall_seconds": 60.0,
                    "tokens_per_pair": {f"en-{code}": 100_000 // 3 for code in languages}})


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = {}
    for full in (False, True):
        root = tmp_path_factory.mktemp("full" if full else "accuracy")
        config = study_config(root)
        write_study(root / "work", full)
        path = write_report("", STUDY, root / "report", config=config, work_dir=root / "work", log_to_mlflow=False)
        out[full] = (path.read_text(encoding="utf-8"), pd.read_csv(root / "report" / "endpoints.csv"), root)
    return out


def test_tested_comparisons_are_those_of_accuracy_alone(reports):
    (plain, plain_endpoints, _), (full, full_endpoints, root) = reports[False], reports[True]
    pd.testing.assert_frame_equal(plain_endpoints, full_endpoints)
    assert set(full_endpoints["metric"]) == {"accuracy"}
    def section(text, title):
        return text.split(f"\n## {title}\n")[1].split("\n## ")[0]

    for title in ("Primary endpoint", "All comparisons", "tatoeba — accuracy per language"):
        assert section(plain, title) == section(full, title), title
    # The controls gain the per-language retrieval table and are otherwise unchanged.
    own_table = section(full, "Controls").split("\nPer language, retrieval figures")[1].split("\n**High")[0]
    assert section(full, "Controls").replace("\nPer language, retrieval figures" + own_table, "") == \
        section(plain, "Controls")
    assert "## tatoeba — mrr per language" not in full and "chance_accuracy per language" not in full
    assert sorted(p.name for p in (root / "report").glob("*.png")) == ["endpoints.png", "tatoeba_accuracy_languages.png"]
    assert "retrieval per language" not in plain  # accuracy alone: no table of absent figures


def test_held_out_table_reads_every_figure_against_chance(reports):
    text = reports[True][0]
    section = text.split("## tatoeba — retrieval per language, against chance")[1].split("\n## ")[0]
    header = row(section, "| language |")
    assert header == ["language", "condition", "sets", "accuracy", "MRR", "chance accuracy", "chance MRR",
                      "accuracy, no shared word", "pairs sharing a word"]
    h400 = sum(1 / k for k in range(1, 401)) / 400
    assert row(section, "| sw* | base |") == ["sw*", "base", "—", "20.00", "30.00", "0.25", f"{100 * h400:.2f}",
                                              "18.00", "80 / 400"]
    # A condition: the mean over its 3 sets of each set's mean over 2 seeds.
    diverse = np.mean([np.mean([SCORES[("diverse", s, seed)]["ta"] for seed in SEEDS]) for s in SETS["diverse"]])
    cells = row(section, "| ta | diverse |")
    assert cells[2] == "3" and cells[3] == f"{diverse:.2f}" and cells[4] == f"{diverse + 10:.2f}"
    assert cells[5] == f"{100 / 480:.2f}" and cells[7] == f"{diverse - 2:.2f}" and cells[8] == "0 / 480"
    languages = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ") and
                 not line.startswith("| language")]
    assert len(languages) == 3 * len(TARGETS)  # base, single, diverse per held-out target
    assert [line.split("|")[2].strip() for line in section.splitlines() if line.startswith("| sw* ")] == \
        ["base", "single", "diverse"]


def test_positive_control_gains_a_per_language_retrieval_table(reports):
    text = reports[True][0]
    controls = text.split("## Controls")[1].split("\n## ")[0]
    assert "| tatoeba | accuracy | diverse | treatment | 18 | 55.0000 | 50.0000 | 5.0000 |" in controls
    own = controls.split("Per language, retrieval figures")[1].split("High-resource check")[0]
    # fi is trained by diverse set s1 only: its two seeds there; the base model beside it.
    assert row(own, "| fi | base |")[3:6] == ["50.00", "60.00", "0.40"]
    assert row(own, "| fi | diverse |")[2:5] == ["1", "55.00", "65.00"]
    assert not [line for line in own.splitlines() if line.startswith("| fi | single")]  # not its own language
    assert "| sw*" not in own  # held-out targets are not the positive control
