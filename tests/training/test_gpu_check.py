"""benchmarks/gpu_check.sh, the prepared check for a lent GPU machine, passes its dry run on CPU
(every run's config and DeepSpeed config validated, the GPU tests collected); on a GPU, the frozen
copy of word_aligned sits on the device in bf16 next to a ZeRO-3 engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training.conftest import TORCH_ADAM, tiny_config

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_dry_run_passes_on_cpu():
    env = {**os.environ, "PYTHON": sys.executable, "DS_ACCELERATOR": "cpu"}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    for objective in ("mlm", "tlm", "word_aligned", "weam"):
        for zero in (0, 2):  # the single-GPU default and the multi-node one (was 2 and 3)
            assert f"dry-run: {objective} ZeRO-{zero} bf16=True" in out, (objective, zero)
    assert "dry-run: hf-trainer ZeRO-2 bf16 batch 32 seq 128" in out and "test_gpu_bf16_smoke" in out
    assert "10 benchmark runs" in out and "total at most 480 s (8 min)" in out  # the plan and its time bound
    assert "gpu_check dry run: ok" in out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_word_aligned_zero3_frozen_copy_on_device_in_bf16(corpus, tmp_path, monkeypatch):
    from weam.training import api, distributed

    engines = []
    monkeypatch.setattr(distributed, "teardown_engine", lambda engine: engines.append(engine))
    config = tiny_config(corpus, tmp_path / "wa", objective="word_aligned", precision="bf16", zero_stage=3,
                         max_steps=4, checkpoint_every=4, deepspeed_overrides=TORCH_ADAM)
    api.pretrain(config)
    frozen = engines[0].module.frozen
    params = list(frozen.parameters())
    assert all(p.device.type == "cuda" and p.dtype == torch.bfloat16 and not p.requires_grad for p in params)
    assert all(p.numel() > 0 for p in params)  # a full replica, not a ZeRO-3 shard
