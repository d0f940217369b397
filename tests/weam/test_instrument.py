"""The instrument check (weam.study.instrument): its metrics on hand-made vectors, its statistics
on hand-made probes, then a tiny instrument study end to end through `weam study run`'s runner
(2-layer preset, one language, two arms, two seeds, layer 1 frozen)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from weam.study.instrument import (frozen_check, instrument_rows, interval, moving_mean, sentence_retrieval,
                                   warmup_loss_figure, word_retrieval)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_word_retrieval_p_at_1_by_hand():
    """Two xx sentences with 2 and 1 words (candidates c0, c1 | c2). Gold: sentence 0 word 0 ↔ xx
    word 1, word 1 ↔ xx word 0; sentence 1 word 0 ↔ xx word 0. Queries point at c1 (hit), c1 (miss:
    gold is c0) and c2 (hit): P@1 = 2/3; a word cut off (None) is no query and no candidate."""
    e = torch.eye(4)
    xx = [[e[0], e[1]], [e[2], None]]
    english = [[e[1] + 0.1 * e[3], e[1]], [e[2]]]
    out = word_retrieval(english, xx, [[(0, 1), (1, 0)], [(0, 0), (0, 1)]])
    assert out == {"word_p@1": round(100 * 2 / 3, 4), "words": 3}


def test_sentence_retrieval_accuracy_by_hand():
    xx = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    english = torch.tensor([[1.0, 0.1], [1.0, 0.0], [0.9, 1.0]])  # 0 → 0 hit, 1 → 0 miss, 2 → 2 hit
    assert sentence_retrieval(english, xx) == {"sentence_accuracy": round(100 * 2 / 3, 4), "sentences": 3}


def test_interval_is_the_t_interval():
    ci = interval([1.0, 2.0, 3.0])
    half = 4.303 * 1.0 / math.sqrt(3)
    assert ci == {"mean": 2.0, "low": round(2 - half, 4), "high": round(2 + half, 4)}
    assert interval([5.0]) == {"mean": 5.0, "low": 5.0, "high": 5.0}


def probe(own_word, held_word, frozen=50.0):
    layer = {"1": {"word_p@1": frozen, "sentence_accuracy": frozen}}
    return {"own": ["fi"], "held_out": ["sw"], "languages": {
        "fi": {**layer, "2": {"word_p@1": own_word, "sentence_accuracy": 10.0}},
        "sw": {**layer, "2": {"word_p@1": held_word, "sentence_accuracy": 20.0}}}}


def test_rows_differences_and_frozen_check_by_hand():
    probes = {"base": {0: probe(10.0, 5.0)},
              "mlm": {0: probe(12.0, 5.0), 1: probe(14.0, 7.0)},
              "weam": {0: probe(20.0, 6.0), 1: probe(26.0, 9.0)}}
    rows = instrument_rows(probes, [1, 2])
    assert len(rows) == 3 * 2 * 2 * 2  # arms × metrics × layers × language groups
    row = next(r for r in rows if (r["arm"], r["metric"], r["layer"], r["languages"]) == ("weam", "word_p@1", 2, "own"))
    assert row["mean"] == 23.0 and row["seeds"] == [0, 1]
    assert row["diff_vs_base"]["mean"] == 13.0  # (10 + 16) / 2
    assert row["diff_vs_mlm"]["mean"] == 10.0  # paired by seed: (8 + 12) / 2
    half = 12.706 * math.sqrt(8) / math.sqrt(2)  # the differences 8 and 12: sd √8, df 1
    assert row["diff_vs_mlm"]["low"] == pytest.approx(10 - half, abs=1e-3)
    base = next(r for r in rows if r["arm"] == "base" and r["metric"] == "word_p@1" and r["layer"] == 2)
    assert base["diff_vs_base"] == {"mean": 0.0, "low": 0.0, "high": 0.0} and base["diff_vs_mlm"] is None
    assert frozen_check(probes, 1) == (True, 0.0)
    probes["weam"][1] = probe(26.0, 9.0, frozen=50.5)
    assert frozen_check(probes, 1) == (False, 0.5)


def test_moving_mean_by_hand():
    assert moving_mean([4.0, 2.0, 6.0, 0.0], 2) == [4.0, 3.0, 4.0, 3.0]


def test_warmup_loss_figure(tmp_path):
    """A PNG of the base's logged steps; no figure when the base logged none."""
    assert warmup_loss_figure(tmp_path, tmp_path / "none.png", 100) is None
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "train_log.jsonl").write_text(
        "".join(json.dumps({"step": i + 1, "loss": 5.0 - 0.01 * i}) + "\n" for i in range(30)), encoding="utf-8")
    path = warmup_loss_figure(tmp_path, tmp_path / "report" / "curve.png", 100, window=5)
    assert path == tmp_path / "report" / "curve.png" and path.read_bytes()[:4] == b"\x89PNG"


STUDY = """
name: tiny-instrument
work_dir: {work}
instrument: {{languages: [fi], arms: [mlm, weam], layers: [1, 2], word_layer: 2}}
held_out: [sw]
token_budget: 2000
seeds: [0, 1]
base:
  model: "preset:tiny"
  vocab_size: 1500
  token_budget: 8000
  pretrain: {{_base_: {configs}/pretrain/tiny.yaml, optim: {{max_steps: null, plateau_window: 3}},
             checkpoint: {{every: 50}}, data: {{max_seq_len: 32}}}}
data: {{_base_: {configs}/data/demo.yaml, heldout_fraction: 0.1}}
align: {{_base_: {configs}/align/default.yaml, engine: eflomal}}
pretrain: {{_base_: {configs}/pretrain/tiny.yaml, optim: {{max_steps: null, freeze_layers: 1}},
           checkpoint: {{every: 50}}, data: {{max_seq_len: 32}}}}
eval: {{max_seq_len: 32}}
tracking: {{enabled: false}}
"""


@pytest.mark.e2e
@pytest.mark.slow  # 408 s wall measured on 2 cores under a load average near 10 (other jobs)
def test_tiny_instrument_study_end_to_end(tmp_path):
    """The plan has the arms, word-gold and probe steps; the report's rows match the probes; layer
    1 is frozen in every arm, so its scores are identical across arms (the evaluator's check)."""
    from weam.study.plan import load_study
    from weam.study.run import StudyRunner

    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(work=tmp_path / "work", configs=CONFIGS), encoding="utf-8")
    study, steps = load_study(path)
    keys = [step.key for step in steps]
    assert [k for k in keys if k.startswith("pretrain/")] == [
        "pretrain/mlm/s1/seed0", "pretrain/mlm/s1/seed1", "pretrain/weam/s1/seed0", "pretrain/weam/s1/seed1"]
    assert [s.config.objective.name for s in steps if s.stage == "pretrain"] == ["mlm", "mlm", "weam", "weam"]
    assert "word-gold/en-fi" in keys and "word-gold/en-sw" in keys and keys[-1] == "report"
    StudyRunner(study, steps, echo=lambda line: None).run()
    work = tmp_path / "work"
    base_manifest = json.loads((work / "base" / "manifest.json").read_text())
    assert base_manifest["counts"]["stopped"] in ("plateau", "budget")
    rows = json.loads((work / "report" / "instrument.json").read_text())
    assert {r["arm"] for r in rows} == {"base", "mlm", "weam"}
    assert {(r["metric"], r["layer"], r["languages"]) for r in rows} == {
        (m, layer, g) for m in ("word_p@1", "sentence_accuracy") for layer in (1, 2) for g in ("own", "held-out")}
    probes = {arm: [json.loads(p.read_text()) for p in sorted(work.glob(f"probe/{arm}/**/probe.json"))]
              for arm in ("base", "mlm", "weam")}
    assert len(probes["mlm"]) == len(probes["weam"]) == 2
    word = probes["weam"][0]["languages"]["fi"]["2"]
    assert word["words"] > 20 and 0 <= word["word_p@1"] <= 100 and word["sentences"] > 10
    weam_own = next(r for r in rows if (r["arm"], r["metric"], r["layer"], r["languages"])
                    == ("weam", "word_p@1", 2, "own"))
    by_seed = [p["languages"]["fi"]["2"]["word_p@1"] for p in probes["weam"]]
    assert weam_own["mean"] == pytest.approx(sum(by_seed) / 2, abs=1e-3)
    assert weam_own["diff_vs_base"]["mean"] == pytest.approx(
        sum(by_seed) / 2 - probes["base"][0]["languages"]["fi"]["2"]["word_p@1"], abs=1e-3)
    frozen = {json.dumps({code: scores["1"] for code, scores in p["languages"].items()}, sort_keys=True)
              for arm in ("base", "mlm", "weam") for p in probes[arm]}
    trained = {json.dumps({code: scores["2"] for code, scores in p["languages"].items()}, sort_keys=True)
               for arm in ("base", "mlm", "weam") for p in probes[arm]}
    assert len(frozen) == 1 and len(trained) > 1  # layer 1 frozen in every arm (one set of scores), 2 not
    report = (work / "report" / "instrument.md").read_text()
    assert "## Evaluator check: layer 1 is frozen in every arm" in report and "passed" in report
    assert "## Base model MLM warm-up" in report and "- weam: vs base" in report
    assert "![warm-up loss](base_warmup_loss.png)" in report
    assert (work / "report" / "base_warmup_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
