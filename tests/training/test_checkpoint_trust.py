"""Checkpoints on the shared volume are loaded only when they match the hashes written at save
time (an altered or planted file is refused before it is read; an untouched one resumes as
before), and only as weights (torch.load weights_only=True in place of DeepSpeed's
weights_only=False): a planted pickle whose hashes were rewritten too runs no code (issue 26, item 9)."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest

from tests.training.conftest import tiny_config
from weam.training import distributed
from weam.training.api import pretrain
from weam.core.errors import WeamError


class Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_tampered_checkpoint_is_refused_before_it_is_unpickled(corpus, tmp_path):
    config = tiny_config(corpus, tmp_path / "run", zero_stage=0, max_steps=6, checkpoint_every=3)
    pretrain(config)
    checkpoint = tmp_path / "run" / "checkpoints" / (tmp_path / "run" / "checkpoints" / "latest").read_text()
    assert (checkpoint / distributed.CHECKSUMS).is_file()
    saved = tmp_path / "saved"
    shutil.copytree(checkpoint, saved)

    def unfinished():  # as if killed after the last checkpoint: the next run resumes from it
        (tmp_path / "run" / "manifest.json").unlink()
        shutil.rmtree(tmp_path / "run" / "model")

    unfinished()
    pretrain(config)  # the untouched checkpoint resumes
    assert (tmp_path / "run" / "manifest.json").is_file()

    unfinished()
    shutil.rmtree(checkpoint)
    shutil.copytree(saved, checkpoint)
    marker = tmp_path / "pwned"
    states = sorted(checkpoint.rglob("*.pt"))[0]
    states.write_bytes(pickle.dumps(Exploit(marker)))
    with pytest.raises(WeamError, match=f"{states.name}: differs from the checkpoint this run saved"):
        pretrain(config)
    assert not marker.exists()
    # Someone who can write the volume rewrites SHA256SUMS as well: the payload is still not run.
    distributed.write_checksums(checkpoint)
    with pytest.raises(WeamError, match=f"{states.name}: holds more than weights"):
        pretrain(config)
    assert not marker.exists()


def test_checksums_cover_added_missing_and_changed_files(tmp_path):
    folder = tmp_path / "step00000003"
    folder.mkdir()
    (folder / "a.pt").write_bytes(b"a")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.pt").write_bytes(b"b")
    distributed.write_checksums(folder)
    distributed.verify_checksums(folder)
    for change in ("added", "missing", "changed"):
        broken = tmp_path / change
        shutil.copytree(folder, broken)
        if change == "added":
            (broken / "c.pt").write_bytes(b"c")
        elif change == "missing":
            (broken / "sub" / "b.pt").unlink()
        else:
            (broken / "a.pt").write_bytes(b"A")
        with pytest.raises(WeamError, match="differs"):
            distributed.verify_checksums(broken)
    (folder / distributed.CHECKSUMS).unlink()
    with pytest.raises(WeamError, match="cannot be verified"):
        distributed.verify_checksums(folder)


def test_checkpoint_files_load_as_weights_only(tmp_path):
    """What DeepSpeed's ZeRO 1/2 optimizer states hold (loss scaler, ZeRO stage, fragment
    addresses) loads; anything else a pickle names is refused without being built."""
    import torch
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum

    states = tmp_path / "optim_states.pt"
    torch.save({"optimizer_state_dict": {"loss_scaler": LossScaler(1.0), "zero_stage": ZeroStageEnum.gradients,
                                         "state": {0: {"exp_avg": torch.zeros(3)}}}, "ds_version": "0"}, states)
    loaded = distributed.load_weights_only(str(states), map_location="cpu")
    assert loaded["optimizer_state_dict"]["zero_stage"] == ZeroStageEnum.gradients
    marker = tmp_path / "pwned"
    planted = tmp_path / "planted.pt"
    torch.save({"x": Exploit(marker)}, planted)
    with pytest.raises(WeamError, match="planted.pt: holds more than weights"):
        distributed.load_weights_only(str(planted))
    assert not marker.exists()
