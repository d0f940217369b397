"""weam.study.results reads the plan's layout (eval/<condition>/<set>/seed<k>, eval/base/seed<k>)
and the budget stage checks each (condition, set) under the pair sampling rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from weam.core.manifest import write_manifest


def _eval_folder(work: Path, folder: str, scores: dict[str, float]) -> None:
    out = work / "eval" / folder
    (out / "tatoeba").mkdir(parents=True)
    results = {"task": "tatoeba", "per_language": {code: {"accuracy": v} for code, v in scores.items()}}
    (out / "tatoeba" / "results.json").write_text(json.dumps(results), encoding="utf-8")
    write_manifest(out, "eval", {}, {}, {"tatoeba": "tatoeba/results.json"}, {"model": f"/m/{folder}"})


def _pretrain_folder(work: Path, folder: str, pairs: dict[str, int]) -> None:
    out = work / "pretrain" / folder
    out.mkdir(parents=True)
    write_manifest(out, "pretrain", {}, {}, {}, {"tokens": sum(pairs.values()), "steps": 3, "wall_seconds": 36.0,
                                                 "tokens_per_pair": pairs, "passes_per_pair": {p: 1.5 for p in pairs},
                                                 "world_size": 2, "device": "CPU x86_64 (2 cores)"})


def test_read_results_has_a_row_per_condition_set_seed_and_language(tmp_path):
    from weam.study.results import read_costs, read_results

    _eval_folder(tmp_path, "base/seed0", {"sw": 10.0, "fi": 20.0})
    _eval_folder(tmp_path, "diverse/s1/seed0", {"sw": 30.0, "fi": 40.0})
    _eval_folder(tmp_path, "diverse/s2/seed0", {"sw": 50.0})
    (tmp_path / "eval/single/s1/seed1").mkdir(parents=True)  # unfinished: no manifest, not read
    _pretrain_folder(tmp_path, "diverse/s1/seed0", {"en-fi": 100, "en-tr": 120})
    _pretrain_folder(tmp_path, "diverse/s2/seed0", {"en-ja": 90})

    frame = read_results(tmp_path, "tatoeba")
    rows = {(r.condition, r.language_set, r.seed, r.language): (r.score, r.languages) for r in frame.itertuples()}
    assert rows == {
        ("base", "", 0, "sw"): (10.0, ""), ("base", "", 0, "fi"): (20.0, ""),
        ("diverse", "s1", 0, "sw"): (30.0, "fi,tr"), ("diverse", "s1", 0, "fi"): (40.0, "fi,tr"),
        ("diverse", "s2", 0, "sw"): (50.0, "ja"),
    }
    assert set(frame["model"]) == {"/m/base/seed0", "/m/diverse/s1/seed0", "/m/diverse/s2/seed0"}

    costs = read_costs(tmp_path).set_index("language_set")
    assert costs.loc["s1", "tokens"] == 220 and costs.loc["s1", "tokens/en-tr"] == 120
    assert costs.loc["s2", "passes/en-ja"] == 1.5 and costs.loc["s1", "device_hours"] == pytest.approx(0.02)
    assert costs.loc["s1", "device"] == "CPU x86_64 (2 cores)" and "cpu_hours" not in costs.columns



def test_a_pretrain_run_logs_device_hours_as_its_manifest_counts_them():
    """train/device_hours (MLflow) and the cost table's device_hours are the same figure: wall time ×
    processes (a GPU rank or a CPU process each); no "cpu_hours" for what may be GPU time."""
    from weam.training.stage import training_costs

    counts = {"tokens": 10, "wall_seconds": 36.0, "world_size": 2, "device": "CPU x86_64 (2 cores)"}
    metrics = training_costs(None, counts)
    assert metrics["train/device_hours"] == pytest.approx(0.02) and metrics["train/wall_seconds"] == 36.0
    assert not [name for name in metrics if "cpu" in name]


@pytest.fixture()
def budget_config(tmp_path):
    from weam.modeling import train_wordpiece_tokenizer
    from weam.training.stage import BudgetConfig

    big = [f"word{i} text{i % 7} sentence" for i in range(200)]
    small = big[:10]
    files = {}
    for code, lines in (("fi", big), ("tr", small)):
        for side, text in (("en", lines), (code, lines)):
            path = tmp_path / f"en-{code}.{side}"
            path.write_text("\n".join(text) + "\n", encoding="utf-8")
            files[(code, side)] = path
    train_wordpiece_tokenizer(big, vocab_size=200).save_pretrained(tmp_path / "tok")

    def make(token_budget: int, sampling: str) -> BudgetConfig:
        return BudgetConfig(tokenizer=str(tmp_path / "tok"), token_budget=token_budget, max_epochs=2,
                            sampling=sampling, conditions=[{
                                "name": "diverse", "language_set": "s1", "languages": ["fi", "tr"],
                                "files": [files[("fi", "en")], files[("fi", "fi")],
                                          files[("tr", "en")], files[("tr", "tr")]]}])
    return make


def test_budget_is_checked_per_set_and_per_pair_under_uniform_sampling(budget_config):
    from weam.core.errors import WeamError
    from weam.training.stage import check_budgets

    proportional = check_budgets(budget_config(1000, "proportional"))
    total = proportional["diverse/s1"]["tokens"]
    assert set(proportional) == {"diverse/s1"} and total > 1000
    # Proportional sampling: every pair gets the same number of passes, budget / total.
    assert {round(p, 6) for p in proportional["diverse/s1"]["passes"].values()} == {round(1000 / total, 6)}
    # Uniform sampling gives the small pair half the budget: more passes over it than max_epochs.
    budget = int(total * 0.8)
    assert check_budgets(budget_config(budget, "proportional"))
    with pytest.raises(WeamError, match=r"set s1: under uniform sampling pair en-tr gets .* more than max_epochs=2"):
        check_budgets(budget_config(budget, "uniform"))


def test_every_per_language_figure_of_a_cell_is_a_row(tmp_path):
    """Tatoeba's MRR, chance levels and shared-word figures reach the tidy frame beside accuracy."""
    from weam.study.results import read_results

    out = tmp_path / "eval" / "base" / "seed0"
    (out / "tatoeba").mkdir(parents=True)
    cell = {"accuracy": 12.5, "mrr": 20.0, "chance_accuracy": 0.25, "chance_mrr": 1.7, "n_shared_word": 8.0}
    (out / "tatoeba" / "results.json").write_text(json.dumps({"task": "tatoeba", "per_language": {"sw": cell}}))
    write_manifest(out, "eval", {}, {}, {"tatoeba": "tatoeba/results.json"}, {"model": "/m/base"})
    frame = read_results(tmp_path, "tatoeba")
    assert dict(zip(frame["metric"], frame["score"])) == cell and set(frame["language"]) == {"sw"}
