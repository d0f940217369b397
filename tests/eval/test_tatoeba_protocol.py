"""Tatoeba as XTREME runs it: en → xx (the xx sentences are indexed, every English sentence queries),
over the download's sorted English side or LASER's aligned pair; the study's writer makes the download
layout and keeps the gold apart."""

from __future__ import annotations

import json

import pytest

from weam.eval import formats
from weam.eval.api import evaluate
from weam.eval.config import EvalConfig
from weam.eval.runners import TatoebaRunner, retrieve_en_to_xx

# A hub: x0 is nearest to both English sentences (xx → en answers [0, 0]); en → xx answers [0, 1].
VECTORS = {"x0": (1.0, 0.0), "x1": (0.6, 0.8), "e0": (0.9, 0.44), "e1": (0.0, 1.0)}


def _fake_embed(self, sentences):
    import torch

    return torch.nn.functional.normalize(torch.tensor([VECTORS[s] for s in sentences]), dim=-1)


def test_hub_sentence_gets_xtremes_answer(tiny_model_dir, tmp_path, monkeypatch):
    import torch

    x = _fake_embed(None, ["x0", "x1"])
    e = _fake_embed(None, ["e0", "e1"])
    assert (x @ e.T).argmax(-1).tolist() == [0, 0]  # the other direction: e0 is every xx sentence's answer
    assert retrieve_en_to_xx(x, e) == [0, 1]
    del torch

    monkeypatch.setattr(TatoebaRunner, "embed", _fake_embed)
    folder = tmp_path / "data" / "tatoeba"
    formats.write_tatoeba(folder, "de", ["x0", "x1"], ["e0", "e1"])  # gold → data/labels/tatoeba/test-de.tsv
    config = EvalConfig(tasks=["tatoeba"], langs=["de"], data_dir=tmp_path / "data",
                        labels_dir=tmp_path / "data" / "labels", tatoeba_encoder="pretrained",
                        out_dir=tmp_path / "out", tracking={"enabled": False})
    result = evaluate(tiny_model_dir, config)["tatoeba"]
    assert result["split"] == "test" and result["per_language"]["de"]["accuracy"] == pytest.approx(100.0)
    predictions = (tmp_path / "out/tatoeba/seed1/predictions/tatoeba/test-de.tsv").read_text().split()
    assert predictions == ["0", "1"]  # one prediction per English sentence: the xx index it retrieves


def test_writer_makes_the_download_layout_with_gold_kept_apart(tmp_path):
    label = formats.write_tatoeba(tmp_path / "tatoeba", "sw", ["paka  ameketi", "mbwa", "ndege"],
                                  ["the cat sat", "a dog", "bird"])
    assert (tmp_path / "tatoeba/sw-en.sw").read_text() == "paka ameketi\nmbwa\nndege\n"
    assert (tmp_path / "tatoeba/sw-en.en").read_text() == "a dog\nbird\nthe cat sat\n"  # sorted
    assert label == tmp_path / "labels/tatoeba/test-sw.tsv" and label.read_text() == "1\n2\n0\n"
    formats.write_tatoeba(tmp_path / "tatoeba", "zh_Hans", ["猫"], ["cat"])
    assert (tmp_path / "tatoeba/zh-en.zh").is_file()


def test_laser_layout_is_read_and_scored(tiny_model_dir, tmp_path):
    """LASER's aligned tatoeba.<xxx>-eng.* files carry the gold; English against itself is perfect."""
    folder = tmp_path / "data" / "tatoeba"
    folder.mkdir(parents=True)
    sentences = ["the cat sat on the mat .", "a dog ran home .", "birds sing in the tree .", "rain falls ."]
    for suffix in ("swh", "eng"):
        (folder / f"tatoeba.swh-eng.{suffix}").write_text("".join(s + "\n" for s in sentences))
    config = EvalConfig(tasks=["tatoeba"], langs=["sw"], data_dir=tmp_path / "data", tatoeba_encoder="pretrained",
                        out_dir=tmp_path / "out", tracking={"enabled": False})
    result = evaluate(tiny_model_dir, config)["tatoeba"]
    assert result["labels"]["sw"] == "laser" and result["per_language"]["sw"]["accuracy"] == pytest.approx(100.0)
    cell = json.loads((tmp_path / "out/tatoeba/seed1/sw.json").read_text())
    assert cell["split"] == "test" and cell["reason"] is None


def test_changed_settings_recompute_cached_cells(tiny_model_dir, xtreme_dir, tmp_path):
    """A cell computed with other result-affecting settings (encoder, pooling, labels) is never reused."""
    config = EvalConfig(tasks=["tatoeba"], langs=["sw"], data_dir=xtreme_dir, labels_dir=xtreme_dir / "labels",
                        tatoeba_encoder="pretrained", out_dir=tmp_path / "out", tracking={"enabled": False})
    first = evaluate(tiny_model_dir, config)["tatoeba"]["per_language"]["sw"]
    cell = tmp_path / "out/tatoeba/seed1/sw.json"
    stamp = cell.stat().st_mtime_ns
    assert evaluate(tiny_model_dir, config)["tatoeba"]["per_language"]["sw"] == first
    assert cell.stat().st_mtime_ns == stamp  # same settings: reused
    cls = config.model_copy(update={"retrieval_pooling": "cls"})
    evaluate(tiny_model_dir, cls)
    assert cell.stat().st_mtime_ns != stamp and json.loads(cell.read_text())["settings"] != ""
    unlabelled = config.model_copy(update={"labels_dir": None})
    result = evaluate(tiny_model_dir, unlabelled)["tatoeba"]
    assert result["per_language"] == {} and "sorts the English side" in result["unlabeled"]["sw"]
