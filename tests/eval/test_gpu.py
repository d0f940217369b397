"""The same code path on a CUDA device (skipped without one)."""

from __future__ import annotations

import pytest

from weam.eval.api import evaluate
from weam.eval.config import EvalConfig
from tests.eval.conftest import FIXTURE_LANGS


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("task", ["tatoeba", "xnli", "mlqa"])  # labelled here: Tatoeba via labels_dir
def test_task_on_cuda(task, tiny_model_dir, xtreme_dir, tmp_path):
    steps = {"max_steps": 2, "batch_size": 4, "max_seq_len": 64}
    config = EvalConfig(tasks=[task], langs=FIXTURE_LANGS[task], data_dir=xtreme_dir, out_dir=tmp_path / "out",
                        device="cuda", hyperparams={task: steps, "xquad": steps}, labels_dir=xtreme_dir / "labels",
                        tracking={"enabled": False})
    result = evaluate(tiny_model_dir, config)[task]
    assert set(result["per_language"]) == set(FIXTURE_LANGS[task])
