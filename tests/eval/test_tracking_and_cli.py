"""MLflow runs per (task, seed), cached cells, and the `weam eval` command line."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from weam.eval.api import evaluate
from weam.eval.config import EvalConfig
from weam.cli import app
from weam.core.errors import InputError
from weam.core.tracking import RunLogger


def test_logs_into_the_run_it_is_handed_seeds_as_named_children_and_caches(tiny_model_dir, xtreme_dir, tmp_path):
    """evaluate() logs into the caller's run and never ends it; a task fine-tuned with several
    seeds logs each seed to a child run ``<run>/<task>/ft<seed>``; finished cells are reused."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = RunLogger(uri, "study", "eval/tatoeba+xnli/a/seed0", tags={"weam.condition": "a"})
    config = EvalConfig(tasks=["tatoeba", "xnli"], langs=["sw", "ur", "ja"], data_dir=xtreme_dir, seeds=[1, 2],
                        labels_dir=xtreme_dir / "labels", tatoeba_encoder="pretrained",
                        out_dir=tmp_path / "out", hyperparams={"xnli": {"max_steps": 2, "batch_size": 4}},
                        tracking={"uri": uri, "experiment": "study"})
    results = evaluate(tiny_model_dir, config, logger=parent, tags={"weam.study": "demo"})

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("study")
    assert client.get_run(parent.run_id).info.status == "RUNNING"  # the caller ends its run
    runs = [r for r in client.search_runs([experiment.experiment_id]) if r.info.run_id != parent.run_id]
    # Tatoeba has no fine-tuning (one seed: logged in the parent run); XNLI's two seeds are children.
    assert sorted(r.info.run_name for r in runs) == ["eval/tatoeba+xnli/a/seed0/xnli/ft1",
                                                      "eval/tatoeba+xnli/a/seed0/xnli/ft2"]
    assert sorted(r.data.tags["weam.finetune_seed"] for r in runs) == ["1", "2"]
    for run in runs:
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == parent.run_id
        assert tags["weam.stage"] == "eval" and tags["weam.study"] == "demo" and tags["weam.task"] == "xnli"
        assert tags["weam.model"] == str(tiny_model_dir)
        assert run.info.status == "FINISHED"
        assert {"xnli/accuracy/sw", "xnli/accuracy/ur", "xnli/accuracy/low_resource"} <= set(run.data.metrics)
        assert "xnli/accuracy/ja" not in run.data.metrics  # ja is not an XNLI language: skipped
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "predictions/xnli")]
        assert sorted(artifacts) == ["predictions/xnli/test-sw.tsv", "predictions/xnli/test-ur.tsv"]
    logged = client.get_run(parent.run_id).data
    assert logged.metrics["tatoeba/accuracy/sw"] == pytest.approx(results["tatoeba"]["per_language"]["sw"]["accuracy"])
    assert {"tatoeba/accuracy/avg", "tatoeba/accuracy/family/Atlantic-Congo",
            "tatoeba/accuracy/family/Indo-European", "tatoeba/accuracy/family/Japonic",
            "tatoeba/accuracy/low_resource"} <= set(logged.metrics)
    # The parent holds each task's mean over its fine-tuning seeds, and the tasks' params apart.
    assert logged.metrics["xnli/accuracy/sw"] == pytest.approx(results["xnli"]["per_language"]["sw"]["accuracy"])
    assert logged.params["tatoeba.seed"] == "1" and "task" not in logged.params
    assert set(results["xnli"]["seeds"]) == {"1", "2"}
    assert not list((tmp_path / "out").rglob("journal.jsonl"))  # nothing failed to reach MLflow

    # Re-running skips every finished cell: even a model path that no longer exists is never loaded.
    again = evaluate(tmp_path / "no-such-model", config)
    assert again["xnli"]["per_language"] == results["xnli"]["per_language"]

    # A deleted cell is recomputed, and only that one.
    (tmp_path / "out/xnli/seed2/ur.json").unlink()
    evaluate(tiny_model_dir, config)
    assert (tmp_path / "out/xnli/seed2/ur.json").is_file()
    assert not list((tmp_path / "out").rglob("journal.jsonl"))


def test_cli_list_shows_every_task_and_language():
    result = CliRunner().invoke(app, ["eval", "--list"], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    for task in ("xnli", "xcopa", "udpos", "panx", "xquad", "mlqa", "tydiqa", "mewslix", "lareqa", "tatoeba"):
        assert task in result.output
    assert "10 tasks × 50 languages" in result.output
    assert "│ total │" in result.output and "not marked xtreme_r" not in result.output


@pytest.mark.parametrize("subcommand", [[], ["run"]])
def test_cli_evaluates_a_model(subcommand, tiny_model_dir, xtreme_dir, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["eval", *subcommand, "--model", str(tiny_model_dir), "--tasks", "tatoeba",
                                      "--langs", "sw,de", "--data-dir", str(xtreme_dir), "--out-dir", str(out),
                                      "--set", "tracking.enabled=false", "--set", f"labels_dir={xtreme_dir / 'labels'}",
                                      "--set", "tatoeba_encoder=pretrained"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "tatoeba" / "results.json").read_text())
    assert set(saved["per_language"]) == {"sw", "de"} and "tatoeba" in result.output


def _leaderboard(root, task, lang, ext, text):
    path = root / task / f"test-{lang}.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_cli_score_leaderboard_layout(tmp_path):
    labels, preds = tmp_path / "labels", tmp_path / "preds"
    _leaderboard(labels, "xnli", "sw", "tsv", "entailment\nneutral\ncontradiction\nneutral\n")
    _leaderboard(preds, "xnli", "sw", "tsv", "entailment\nneutral\nneutral\nneutral\n")  # 75
    _leaderboard(labels, "xnli", "de", "tsv", "neutral\nneutral\n")
    _leaderboard(preds, "xnli", "de", "tsv", "neutral\nentailment\n")  # 50
    _leaderboard(labels, "panx", "yo", "tsv", "Anna\tB-PER\nlives\tO\n\nNew\tB-LOC\nYork\tI-LOC\n")
    _leaderboard(preds, "panx", "yo", "tsv", "B-PER\nO\n\nB-LOC\nO\n")  # P = R = 1/2
    squad = {"data": [{"paragraphs": [{"context": "The Eiffel Tower", "qas": [
        {"id": "a", "question": "?", "answers": [{"text": "Eiffel Tower", "answer_start": 4}]},
        {"id": "b", "question": "?", "answers": [{"text": "Tower", "answer_start": 11}]}]}]}]}
    _leaderboard(labels, "tydiqa", "sw", "json", json.dumps(squad))
    _leaderboard(preds, "tydiqa", "sw", "json", json.dumps({"a": "the Eiffel Tower.", "b": "Eiffel Tower"}))
    _leaderboard(labels, "mewslix", "de", "json", json.dumps({"m1": ["Q1"], "m2": ["Q2"]}))
    _leaderboard(preds, "mewslix", "de", "json", json.dumps({"m1": ["Q1", "Q2"], "m2": ["Q1", "Q2"]}))
    output = tmp_path / "scores.json"
    result = CliRunner().invoke(app, ["eval", "score", "--predictions", str(preds), "--labels", str(labels),
                                      "--output", str(output)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    scores = json.loads(output.read_text())["tasks"]
    assert scores["xnli"]["per_language"] == {"sw": {"accuracy": 75.0}, "de": {"accuracy": 50.0}}
    assert scores["xnli"]["avg"] == pytest.approx(62.5)
    assert scores["xnli"]["families"] == {"Atlantic-Congo": 75.0, "Indo-European": 50.0}
    assert scores["xnli"]["low_resource"] == pytest.approx(75.0)
    assert scores["panx"]["per_language"]["yo"]["f1"] == pytest.approx(50.0)
    # TyDiQA: a EM 1 F1 1; b EM 0, F1 2·(1/2·1)/(3/2) = 2/3 → EM 50, F1 83.3; score = their mean.
    tydiqa = scores["tydiqa"]
    assert tydiqa["per_language"]["sw"]["exact_match"] == pytest.approx(50.0)
    assert tydiqa["per_language"]["sw"]["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert tydiqa["avg"] == pytest.approx((50.0 + 100 * (1 + 2 / 3) / 2) / 2)
    assert scores["mewslix"]["avg"] == pytest.approx(75.0)


def test_score_names_a_missing_prediction_file(tmp_path):
    from weam.eval.score import score_folder

    labels, preds = tmp_path / "labels", tmp_path / "preds"
    _leaderboard(labels, "xnli", "sw", "tsv", "neutral\n")
    _leaderboard(labels, "xnli", "ur", "tsv", "neutral\n")
    _leaderboard(preds, "xnli", "sw", "tsv", "neutral\n")
    with pytest.raises(InputError, match=r"preds/xnli/test-ur\.tsv: missing file"):
        score_folder(preds, labels)
    _leaderboard(preds, "xnli", "ur", "tsv", "neutral\nneutral\n")
    with pytest.raises(InputError, match=r"2 predictions but .* has 1 labels"):
        score_folder(preds, labels)


def test_own_predictions_score_like_the_run(tiny_model_dir, xtreme_dir, tmp_path):
    """The predictions a run writes, scored against labels in the leaderboard layout, give the run's numbers."""
    from weam.eval.score import score_folder

    config = EvalConfig(tasks=["panx"], langs=["yo"], data_dir=xtreme_dir, out_dir=tmp_path / "out",
                        hyperparams={"panx": {"max_steps": 2, "batch_size": 4}}, tracking={"enabled": False})
    result = evaluate(tiny_model_dir, config)["panx"]
    labels = tmp_path / "labels" / "panx"
    labels.mkdir(parents=True)
    assert result["split"] == "dev"  # the labelled split: PAN-X test tags are withheld by the download
    shutil.copy(xtreme_dir / "panx" / "dev-yo.tsv", labels / "test-yo.tsv")
    scored = score_folder(tmp_path / "out/panx/seed1/predictions", tmp_path / "labels")
    assert scored["tasks"]["panx"]["per_language"]["yo"] == pytest.approx(result["per_language"]["yo"])
