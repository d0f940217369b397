"""Issue 26, item 7: a full disk, a read-only folder: an `error:` line naming the folder (and, for a
full disk, the space free and needed), exit 2, no traceback, and nothing a re-run trusts."""

from __future__ import annotations

import errno
import sys

import pytest

from weam.cli import main
from weam.core.errors import StorageError


def _weam(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["weam", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code, capsys.readouterr().err


def _corpus(tmp_path):
    src, tgt = tmp_path / "a.en", tmp_path / "a.de"
    src.write_text("the cat sleeps\na dog runs\n", encoding="utf-8")
    tgt.write_text("die katze schläft\nein hund läuft\n", encoding="utf-8")
    return src, tgt


def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_aligning_is_an_error_line_naming_the_folder(tmp_path, monkeypatch, capsys):
    from weam.alignment import api

    src, tgt = _corpus(tmp_path)
    out = tmp_path / "align"
    monkeypatch.setattr(api, "_concatenate", _full)
    code, err = _weam(monkeypatch, capsys, "align", "run", "--src", str(src), "--tgt", str(tgt), "--out", str(out),
                      "--engine", "eflomal")
    assert code == 2 and "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith(f"error: {out}: disk full writing the alignments (") and " free there; about 26 B needed)" in last
    assert not (out / "manifest.json").exists() and not (out / "alignment.txt").exists()


def test_read_only_output_is_an_error_line_naming_the_file(tmp_path, monkeypatch, capsys):
    from weam.core import manifest

    src, tgt = _corpus(tmp_path)
    out = tmp_path / "align"

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(dir))

    monkeypatch.setattr(manifest.tempfile, "mkstemp", read_only)
    code, err = _weam(monkeypatch, capsys, "align", "run", "--src", str(src), "--tgt", str(tgt), "--out", str(out),
                      "--engine", "eflomal")
    assert code == 2 and "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith(f"error: {out}") and "read-only file system" in last
    assert not (out / "manifest.json").exists()


def test_disk_full_saving_a_checkpoint_names_the_folder_and_the_space_needed(tmp_path):
    import torch

    from weam.training import distributed

    class Engine:
        module = torch.nn.Linear(100, 10)  # 1,010 fp32 parameters: 4 + 12 bytes each
        global_rank = 0
        save_checkpoint = staticmethod(_full)

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    with pytest.raises(StorageError, match=rf"{folder}: disk full writing a checkpoint \(.* free there; about 16.2 KB needed\)"):
        distributed.save_checkpoint(Engine(), folder, 4, {}, keep=2)
    assert not (folder / distributed.LATEST).exists()  # a resume never loads the cut-short save


def test_disk_full_exporting_the_model_leaves_no_model_folder(tmp_path, tiny_model_dir, monkeypatch):
    from types import SimpleNamespace

    from transformers import AutoTokenizer, BertForMaskedLM

    from weam.training import distributed

    mlm = BertForMaskedLM.from_pretrained(tiny_model_dir)
    engine = SimpleNamespace(module=SimpleNamespace(mlm=mlm), global_rank=0, zero_optimization_stage=lambda: 0)
    monkeypatch.setattr(BertForMaskedLM, "save_pretrained", _full)
    out = tmp_path / "run" / "model"
    out.parent.mkdir()
    needed = sum(v.numel() * 4 for v in mlm.state_dict().values())
    with pytest.raises(StorageError, match=rf"{out}: disk full writing the exported model \(.* free there; about "):
        distributed.export_hf(engine, AutoTokenizer.from_pretrained(tiny_model_dir), out)
    assert not out.exists() and list(out.parent.iterdir()) == []
    assert needed > 0
