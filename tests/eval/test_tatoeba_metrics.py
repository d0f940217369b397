"""Tatoeba's added figures through eval: the download layout with its labels_dir gold gets MRR,
chance levels and the no-shared-word accuracy beside XTREME's unchanged accuracy; they reach
results.json and the MLflow names without entering any average of a reference figure; the English
side is embedded once per runner."""

from __future__ import annotations

import pytest
import torch

from weam.eval import formats, metrics
from weam.eval.api import evaluate, metric_names
from weam.eval.config import EvalConfig
from weam.eval.runners import TatoebaRunner
from weam.eval.score import score_language
from weam.eval.tasks import get_task
from weam.core.errors import InputError

ENGLISH = ["the cat sat on the mat .", "a dog ran home .", "birds sing in the tree .", "rain falls .",
           "save the file before closing .", "open the window ."]
SWAHILI = ["paka aliketi kwenye mkeka .", "mbwa alikimbia nyumbani .", "ndege wanaimba mtini .",
           "mvua inanyesha .", "hifadhi file kabla ya kufunga .", "fungua dirisha ."]  # one shares "file"
FINNISH = ["kissa istui matolla .", "koira juoksi kotiin .", "linnut laulavat puussa .", "sataa .",
           "tallenna tiedosto ennen kuin suljet .", "avaa ikkuna ."]


def _study_sets(tmp_path):
    folder = tmp_path / "data" / "tatoeba"
    formats.write_tatoeba(folder, "sw", SWAHILI, ENGLISH)  # gold → data/labels/tatoeba/test-sw.tsv
    formats.write_tatoeba(folder, "fi", FINNISH, ENGLISH)
    return EvalConfig(tasks=["tatoeba"], langs=["sw", "fi"], data_dir=tmp_path / "data",
                      labels_dir=tmp_path / "data" / "labels", tatoeba_encoder="pretrained",
                      out_dir=tmp_path / "out", tracking={"enabled": False}, eval_batch_size=4)


def test_labelled_download_layout_scores_every_figure(tiny_model_dir, tmp_path):
    config = _study_sets(tmp_path)
    result = evaluate(tiny_model_dir, config)["tatoeba"]
    spec = get_task("tatoeba")
    sw = result["per_language"]["sw"]
    assert set(sw) == set(spec.metrics)
    assert sw["chance_accuracy"] == pytest.approx(100 / 6)
    assert sw["chance_mrr"] == pytest.approx(100 * sum(1 / k for k in range(1, 7)) / 6)
    assert sw["n_shared_word"] == 1.0 and result["per_language"]["fi"]["n_shared_word"] == 0.0
    assert 100 / 6 <= sw["mrr"] <= 100 and sw["mrr"] >= sw["accuracy"]
    # XTREME's accuracy is what the prediction file scores against the gold file, as before.
    for lang in ("sw", "fi"):
        predictions = tmp_path / f"out/tatoeba/seed1/predictions/tatoeba/test-{lang}.tsv"
        labels = tmp_path / f"data/labels/tatoeba/test-{lang}.tsv"
        assert result["per_language"][lang]["accuracy"] == score_language(spec, predictions, labels, lang)["accuracy"]
        assert result["labels"][lang] == f"labels_dir/tatoeba/test-{lang}.tsv"  # no absolute path in results
    # The score and its aggregates stay accuracy; reference figures are never averaged.
    assert result["avg"] == pytest.approx((sw["accuracy"] + result["per_language"]["fi"]["accuracy"]) / 2)
    assert set(result["avg_metrics"]) == {"accuracy", "mrr", "accuracy_no_shared_word"}
    names = metric_names(spec, result["per_language"])
    assert names["tatoeba/mrr/sw"] == sw["mrr"] and "tatoeba/mrr/avg" in names
    assert names["tatoeba/chance_mrr/sw"] == sw["chance_mrr"] and names["tatoeba/n_shared_word/fi"] == 0.0
    assert not [n for n in names if n.split("/")[1] in metrics.REFERENCE_METRICS and n.split("/")[2] in
                ("avg", "low_resource", "family")]
    assert names["tatoeba/score/avg"] == names["tatoeba/accuracy/avg"] == result["avg"]


def test_a_cell_without_the_new_figures_is_averaged_without_them(tiny_model_dir, tmp_path):
    """A prediction file scored by `weam eval score`, or a cell stored before MRR existed, has accuracy
    only: the per-language figure stays, the partial average is left out."""
    spec = get_task("tatoeba")
    cells = {"sw": {"accuracy": 20.0, "mrr": 30.0}, "fi": {"accuracy": 40.0}}
    names = metric_names(spec, cells)
    assert names["tatoeba/mrr/sw"] == 30.0 and "tatoeba/mrr/avg" not in names
    assert names["tatoeba/accuracy/avg"] == names["tatoeba/score/avg"] == 30.0


def test_a_bad_label_file_is_refused_naming_it(tiny_model_dir, tmp_path):
    config = _study_sets(tmp_path)
    labels = tmp_path / "data/labels/tatoeba/test-sw.tsv"
    labels.write_text("0\n1\n2\n3\n4\n9\n")
    with pytest.raises(InputError, match=r"test-sw.tsv.*6.*not an xx line index 0..5"):
        evaluate(tiny_model_dir, config.model_copy(update={"langs": ["sw"]}))


def _runner(tiny_model_dir, config):
    runner = TatoebaRunner(get_task("tatoeba"), config, tiny_model_dir)
    runner.train(1)
    calls = {"sentences": 0, "forward": 0}
    runner.model.register_forward_hook(lambda *_: calls.__setitem__("forward", calls["forward"] + 1))
    embed = runner.embed

    def counted(sentences):
        calls["sentences"] += len(sentences)
        return embed(sentences)

    runner.embed = counted
    return runner, calls


def test_english_side_is_embedded_once_and_the_result_is_unchanged(tiny_model_dir, tmp_path):
    config = _study_sets(tmp_path)
    uncached, plain_calls = _runner(tiny_model_dir, config)
    uncached.vectors = uncached.embed  # every call embeds again, as before the cache
    cached, cached_calls = _runner(tiny_model_dir, config)
    for lang in ("sw", "fi"):
        before, after = uncached.predict(lang), cached.predict(lang)
        assert before[0] == after[0] and before[1] == pytest.approx(after[1])
    # Uncached: 6 xx + 6 English per language; cached: the 6 English once.
    assert plain_calls["sentences"] == 24 and cached_calls["sentences"] == 18
    assert cached_calls["forward"] < plain_calls["forward"]  # batches of 4: 8 → 6 forward calls
    assert (plain_calls["forward"], cached_calls["forward"]) == (8, 6)
    src, eng, _ = cached.pair("fi")
    assert torch.allclose(cached.vectors(eng), uncached.embed(eng), atol=1e-6)
    assert cached_calls["sentences"] == 18  # all cached now


def test_cached_vectors_are_dropped_when_the_model_changes(tiny_model_dir, tmp_path):
    config = _study_sets(tmp_path)
    runner, calls = _runner(tiny_model_dir, config)
    runner.predict("sw")
    runner.train(2)  # a new model (the squad encoder trains one per seed): re-embed
    runner.predict("sw")
    assert calls["sentences"] == 24


def test_the_retrieval_encoder_loads_quietly_but_refuses_missing_encoder_weights(tiny_model_dir, tmp_path, capfd):
    """A pre-training checkpoint's MLM head and absent pooler are expected (no load report printed);
    a checkpoint without some encoder weight is refused, not filled with random weights."""
    import shutil

    from safetensors.torch import load_file, save_file

    from weam.core.errors import InputError
    from weam.eval.runners import load_encoder

    model = load_encoder(tiny_model_dir)
    assert model.config.num_hidden_layers >= 1
    assert "MISSING" not in capfd.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = load_file(broken / "model.safetensors")
    dropped = next(key for key in weights if "encoder.layer.0.attention.self.query.weight" in key)
    save_file({k: v for k, v in weights.items() if k != dropped}, broken / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(InputError, match="lacks 1 weights"):
        load_encoder(broken)



@pytest.mark.parametrize("head, kwargs", [("AutoModelForSequenceClassification", {"num_labels": 3}),
                                          ("AutoModelForQuestionAnswering", {})])
def test_a_task_model_loads_without_transformers_load_report(tiny_model_dir, tmp_path, head, kwargs):
    """Every fine-tuning seed of every task loads the checkpoint with a new head: transformers' LOAD
    REPORT of the new head, the absent pooler and the unused MLM head is not printed; an encoder
    weight missing from the checkpoint is refused (it would be fine-tuned from random values)."""
    import logging
    import shutil

    from safetensors.torch import load_file, save_file

    from weam.core.errors import InputError
    from weam.eval.runners import load_pretrained

    class Said(logging.Handler):  # transformers' loggers do not propagate to the root (nor to caplog)
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    said = Said()
    logging.getLogger("transformers").addHandler(said)
    try:
        model = load_pretrained(head, tiny_model_dir, **kwargs)
    finally:
        logging.getLogger("transformers").removeHandler(said)
    assert type(model).__name__.startswith("Bert")
    assert not [m for m in said.messages if "LOAD REPORT" in m]
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = load_file(broken / "model.safetensors")
    dropped = next(key for key in weights if "embeddings.word_embeddings.weight" in key)
    save_file({k: v for k, v in weights.items() if k != dropped}, broken / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(InputError, match="lacks 1 weights.*fine-tuning would start from random weights"):
        load_pretrained(head, broken, **kwargs)
