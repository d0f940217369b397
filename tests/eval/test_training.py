"""The shared fine-tuning loop: effective batch via accumulation, and model selection on English dev."""

from __future__ import annotations

import torch

from weam.eval.config import EvalConfig
from weam.eval.tasks import get_task
from weam.eval.training import Settings, fine_tune, settings_for


def _settings(**kw) -> Settings:
    base = dict(learning_rate=0.1, epochs=3.0, batch_size=4, step_batch_size=2, max_seq_len=16, warmup_steps=0,
                weight_decay=0.0, max_steps=None, max_train_examples=None, selection="best_dev", save_steps=2)
    return Settings(**{**base, **kw})


def test_best_dev_checkpoint_is_restored():
    model = torch.nn.Linear(1, 1, bias=False)
    features = [torch.tensor([1.0])] * 8
    snapshots, scores = [], iter([5.0, 9.0, 1.0])  # epoch 2 is best

    def loss_of(m, batch):
        return (m(torch.stack(batch)) - 10.0).pow(2).mean()

    def dev_score():
        snapshots.append(model.weight.detach().clone())
        return next(scores)

    info = fine_tune(model, features, loss_of, _settings(), seed=0, dev_score=dev_score)
    assert info["steps"] == 6  # 8 examples / effective batch 4 = 2 steps × 3 epochs
    assert info["best_dev"] == 9.0 and info["best_step"] == 4  # evaluated at steps 2, 4, 6
    assert torch.equal(model.weight, snapshots[1])
    assert not torch.equal(snapshots[1], snapshots[2])


def test_registry_settings_and_overrides():
    config = EvalConfig(hyperparams={"panx": {"learning_rate": 1e-4, "max_steps": 3}}, train_batch_size=8,
                        max_seq_len=64)
    panx = settings_for(get_task("panx"), config)
    assert (panx.learning_rate, panx.epochs, panx.batch_size, panx.step_batch_size) == (1e-4, 10.0, 32, 8)
    assert panx.max_seq_len == 64 and panx.max_steps == 3
    qa = settings_for(get_task("xquad"), EvalConfig())
    assert (qa.learning_rate, qa.epochs, qa.max_seq_len, qa.warmup_steps) == (3e-5, 3.0, 384, 500)


def test_selection_every_save_steps_and_last_model_otherwise():
    model = torch.nn.Linear(1, 1, bias=False)
    features = [torch.tensor([1.0])] * 8
    calls = []

    def loss_of(m, batch):
        return (m(torch.stack(batch)) - 10.0).pow(2).mean()

    def dev_score():
        calls.append(1)
        return float(len(calls))

    fine_tune(model, features, loss_of, _settings(save_steps=1), seed=0, dev_score=dev_score)
    assert len(calls) == 6  # every optimizer step, the end included once
    calls.clear()
    fine_tune(model, features, loss_of, _settings(save_steps=5), seed=0, dev_score=dev_score)
    assert len(calls) == 2  # step 5 and the end (step 6)
    calls.clear()
    info = fine_tune(model, features, loss_of, _settings(selection="last"), seed=0, dev_score=dev_score)
    assert calls == [] and info["best_step"] == 6  # QA, XCOPA, Mewsli-X, LAReQA keep the final model


def test_registry_selection_follows_the_train_scripts():
    steps = {name: (get_task(name).selection, get_task(name).save_steps)
             for name in ("xnli", "panx", "udpos", "xquad", "tydiqa", "mewslix")}
    assert steps == {"xnli": ("best_dev", 100), "panx": ("best_dev", 1000), "udpos": ("best_dev", 500),
                     "xquad": ("last", None), "tydiqa": ("last", None), "mewslix": ("last", None)}
    assert settings_for(get_task("xnli"), EvalConfig(hyperparams={"xnli": {"save_steps": 7}})).save_steps == 7
