"""Every task, on official-format files: load, fine-tune 2 steps, predict, score, write the layout."""

from __future__ import annotations

import json

import pytest

from eval.api import evaluate
from eval.config import EvalConfig
from eval.formats import read_leaderboard_file
from eval.tasks import all_tasks, get_task
from tests.eval.conftest import FIXTURE_LANGS


def tiny_config(tmp_path, xtreme_dir, tasks, langs=None, **extra) -> EvalConfig:
    hyper = {t: {"max_steps": 2, "batch_size": 4, "max_seq_len": 64} for t in tasks}
    return EvalConfig(tasks=tasks, langs=langs, data_dir=xtreme_dir, out_dir=tmp_path / "out", hyperparams=hyper,
                      eval_batch_size=8, tracking={"enabled": False}, **extra)


def test_fixture_covers_every_task():
    assert set(FIXTURE_LANGS) == set(all_tasks())


@pytest.mark.parametrize("task", sorted(FIXTURE_LANGS))
def test_task_end_to_end(task, tiny_model_dir, xtreme_dir, tmp_path):
    spec = get_task(task)
    langs = FIXTURE_LANGS[task]
    result = evaluate(tiny_model_dir, tiny_config(tmp_path, xtreme_dir, [task], langs))[task]

    assert list(result["per_language"]) == langs
    for lang, values in result["per_language"].items():
        assert set(values) == set(spec.metrics)
        assert all(0.0 <= v <= 100.0 for v in values.values()), (lang, values)
        cell = json.loads((tmp_path / "out" / task / "seed1" / f"{lang}.json").read_text())
        assert cell["metrics"] == values
        predictions = tmp_path / "out" / task / "seed1" / "predictions" / task / f"test-{lang}.{spec.prediction_ext}"
        assert read_leaderboard_file(predictions, spec.kind)
    scores = [spec.score_of(v) for v in result["per_language"].values()]
    assert result["avg"] == pytest.approx(sum(scores) / len(scores))
    assert result["families"] and set(result["unlabeled"]) == set()
    saved = json.loads((tmp_path / "out" / task / "results.json").read_text())
    assert saved["avg"] == pytest.approx(result["avg"])
    assert (tmp_path / "out" / task / "manifest.json").is_file()


def test_tatoeba_identity_retrieval_is_perfect(tiny_model_dir, tmp_path):
    """English against itself: every sentence's nearest neighbour is itself, whatever the model."""
    import random

    from eval.formats import write_tatoeba
    from tests.conftest import TINY_TEXTS

    words = sorted({w for text in TINY_TEXTS for w in text.split()})
    rng = random.Random(0)
    sentences = sorted({" ".join(rng.sample(words, 6)) for _ in range(30)})
    write_tatoeba(tmp_path / "data" / "tatoeba", "de", sentences, sentences)
    config = EvalConfig(tasks=["tatoeba"], langs=["de"], data_dir=tmp_path / "data", out_dir=tmp_path / "out",
                        tracking={"enabled": False})
    result = evaluate(tiny_model_dir, config)["tatoeba"]
    assert result["per_language"]["de"]["accuracy"] == pytest.approx(100.0)


def test_unlabeled_test_split_gets_predictions_but_no_scores(tiny_model_dir, xtreme_dir, tmp_path):
    """XTREME's download strips test labels: predictions are still written for `weam eval score`."""
    import shutil

    data = tmp_path / "download"
    shutil.copytree(xtreme_dir / "xnli", data / "xnli")
    rows = (data / "xnli" / "test-sw.tsv").read_text().splitlines()
    (data / "xnli" / "test-sw.tsv").write_text("".join(r.rsplit("\t", 1)[0] + "\n" for r in rows))
    result = evaluate(tiny_model_dir, tiny_config(tmp_path, data, ["xnli"], ["sw"]))["xnli"]
    assert result["unlabeled"] == ["sw"] and result["per_language"] == {} and result["avg"] is None
    predictions = (tmp_path / "out/xnli/seed1/predictions/xnli/test-sw.tsv").read_text().split()
    assert len(predictions) == len(rows) and set(predictions) <= set(get_task("xnli").labels)


def test_tatoeba_after_squad_fine_tuning(tiny_model_dir, xtreme_dir, tmp_path):
    """XTREME-R's protocol: the encoder fine-tuned on SQuAD (one run per seed) embeds the sentences."""
    config = tiny_config(tmp_path, xtreme_dir, ["tatoeba"], ["sw"], seeds=[1, 2], tatoeba_after_squad=True)
    config.hyperparams["xquad"] = config.hyperparams["tatoeba"]
    result = evaluate(tiny_model_dir, config)["tatoeba"]
    assert set(result["seeds"]) == {"1", "2"}
    assert 0.0 <= result["per_language"]["sw"]["accuracy"] <= 100.0
