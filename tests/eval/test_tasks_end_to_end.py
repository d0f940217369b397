"""XTREME's protocol details on tiny inputs: QA windows every 128 tokens, dual encoders with the pooler
output and a learnable scale of 100, Tatoeba after SQuAD fine-tuning (XTREME-R) or zero-shot."""

from __future__ import annotations

import pytest

from weam.eval.api import evaluate
from weam.eval.config import EvalConfig
from weam.eval.runners import QARunner
from weam.eval.tasks import get_task


def tiny_config(tmp_path, xtreme_dir, tasks, langs=None, **extra) -> EvalConfig:
    hyper = {t: {"max_steps": 2, "batch_size": 4, "max_seq_len": 64} for t in [*tasks, "xquad"]}
    return EvalConfig(tasks=tasks, langs=langs, data_dir=xtreme_dir, out_dir=tmp_path / "out", hyperparams=hyper,
                      eval_batch_size=8, tracking={"enabled": False}, **extra)


def test_qa_windows_start_every_doc_stride_tokens(tiny_model_dir, tmp_path):
    """run_squad.py's --doc_stride 128 is the step between window starts (HF's stride is the overlap)."""
    import dataclasses

    runner = QARunner(get_task("xquad"), EvalConfig(), tiny_model_dir)
    # The tiny model has 128 positions; the windowing is the tokenizer's, so test it at 200 tokens.
    runner.settings = dataclasses.replace(runner.settings, max_seq_len=200)
    context = " ".join(["the cat sat on the mat"] * 80)  # far longer than one window
    record = {"id": "q", "question": "where did the cat sit ?", "context": context, "answers": []}
    windows = runner.windows([record])
    starts = [next(i for i, s in enumerate(w["sequence_ids"]) if s == 1) for w in windows]
    first_tokens = [w["offsets"][start][0] for w, start in zip(windows, starts)]
    n_context = len(runner.tokenizer(context, add_special_tokens=False)["input_ids"])
    assert len(windows) >= 2
    token_starts = [len(runner.tokenizer(context[:c], add_special_tokens=False)["input_ids"]) for c in first_tokens]
    assert token_starts[:3] == [0, 128, 256][: len(token_starts[:3])]
    assert all(len(w["input_ids"]) <= 200 for w in windows) and token_starts[-1] < n_context
    # A window narrower than the step (max_seq_len 128 here) cannot skip text as run_squad.py would:
    # consecutive windows then touch (overlap 0).
    runner.settings = dataclasses.replace(runner.settings, max_seq_len=128)
    narrow = runner.windows([record])
    ends = [max(o[1] for o, s in zip(w["offsets"], w["sequence_ids"]) if s == 1) for w in narrow]
    begins = [min(o[0] for o, s in zip(w["offsets"], w["sequence_ids"]) if s == 1) for w in narrow]
    assert all(b <= e + 1 for b, e in zip(begins[1:], ends[:-1]))
    long_question = " ".join(["why"] * 100)
    assert len(runner.tokenizer(runner.question(long_question), add_special_tokens=False)["input_ids"]) == 64


def test_dual_encoder_uses_pooler_and_a_learnable_scale(tiny_model_dir, xtreme_dir, tmp_path):
    config = tiny_config(tmp_path, xtreme_dir, ["mewslix"], ["de"])
    runner = get_task("mewslix").kind.runner(get_task("mewslix"), config, tiny_model_dir)
    model = runner.build_model(1)
    assert model.logit_scale.item() == pytest.approx(100.0) and model.logit_scale.requires_grad
    runner.model = model
    enc = runner.tokenizer(["Anna lives in New York"], return_tensors="pt")
    pooled = runner.pool_vectors(model.encoder(**enc), enc)
    assert pooled.shape[-1] == model.config.hidden_size
    import torch

    assert torch.allclose(pooled, model.encoder(**enc).pooler_output)
    lareqa = get_task("lareqa").kind.runner(get_task("lareqa"), config, tiny_model_dir)
    assert (lareqa.query_len, lareqa.answer_len) == (96, 256)
    before = model.logit_scale.item()
    runner.settings = runner.settings.__class__(**{**vars(runner.settings), "learning_rate": 1e-2})
    from weam.eval.training import fine_tune

    fine_tune(model, runner.pairs("train"), runner.loss, runner.settings, seed=1)
    assert model.logit_scale.item() != before  # trained with the encoder


@pytest.mark.parametrize("encoder", ["squad", "pretrained"])
def test_tatoeba_encoders(encoder, tiny_model_dir, xtreme_dir, tmp_path):
    """squad (XTREME-R, run_tatoeba.sh): one SQuAD fine-tuning per seed; pretrained: zero-shot, one run."""
    config = tiny_config(tmp_path, xtreme_dir, ["tatoeba"], ["sw"], seeds=[1, 2], tatoeba_encoder=encoder,
                         labels_dir=xtreme_dir / "labels")
    result = evaluate(tiny_model_dir, config)["tatoeba"]
    assert set(result["seeds"]) == ({"1", "2"} if encoder == "squad" else {"1"})
    assert 0.0 <= result["per_language"]["sw"]["accuracy"] <= 100.0
    assert result["labels"]["sw"] == "labels_dir/tatoeba/test-sw.tsv"
