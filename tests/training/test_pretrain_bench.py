"""benchmarks/pretrain_bench.py's rows: the --json records and the levers, in process (seconds), and
on the smallest real run (slow: tiny preset, a few steps of weam's trainer and of the HF Trainer,
about 2 min on a loaded CPU): every row carries the issue-25 keys, both rows use one FLOP formula
that differs only in where the output layer runs, and the ratio is weam's tokens/s over HF's."""

from __future__ import annotations

import json
import os
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEYS = {"preset", "vocab", "objective", "zero", "levers", "tokens_per_s", "hf_tokens_per_s", "ratio", "mfu",
        "flop_formula", "fill_rate", "peak_mem"}


def load_bench():
    spec = importlib.util.spec_from_file_location("pretrain_bench", REPO / "benchmarks" / "pretrain_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_json_rows_ratio_against_hf_at_the_same_zero_stage():
    from transformers import BertConfig

    bench = load_bench()
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ours_levers = bench.levers({"precision": "bf16"}, config, packing="units")
    assert ours_levers["packing"] == "units" and ours_levers["bf16"] is True and ours_levers["compile"] is False
    assert ours_levers["attention"].split("(")[0] in {"eager", "sdpa", "flash_attention_2"}
    measured = {"tokens_per_s": 300.0, "tokens_per_cpu_s": 250.0, "mfu": 0.1, "fill_rate": 0.5, "peak_mem_gb": 1.5, "mem_kind": "RSS",
                "levers": ours_levers, "vocab": 100}
    rows = [("weam", 0, {**measured, "flop_formula": bench.FLOP_FORMULA + bench.OUTPUT_AT["masked"]}),
            ("weam", 2, {**measured, "flop_formula": bench.FLOP_FORMULA + bench.OUTPUT_AT["masked"]}),
            ("hf-trainer", 0, {**measured, "tokens_per_s": 100.0, "tokens_per_cpu_s": 50.0, "fill_rate": 1.0,
                               "flop_formula": bench.FLOP_FORMULA + bench.OUTPUT_AT["all"]}),
            ("hf-trainer", 2, {"error": "RuntimeError: out of memory"})]
    records = bench.json_rows(rows, "tiny", vocab=8000)
    assert [(r["objective"], r["zero"]) for r in records] == [(o, z) for o, z, _ in rows]
    assert KEYS <= set(records[0]) and records[0]["vocab"] == 100  # the model's vocabulary, not the requested one
    assert records[0]["ratio"] == 3.0 and records[0]["hf_tokens_per_s"] == 100.0
    assert records[0]["cpu_ratio"] == 5.0 and records[0]["tokens_per_cpu_s"] == 250.0  # per CPU-second
    assert records[0]["peak_mem"] == {"gb": 1.5, "kind": "RSS"}
    assert records[1]["ratio"] is None and records[1]["hf_tokens_per_s"] is None  # HF failed at ZeRO 2
    assert records[1]["cpu_ratio"] is None
    assert records[3]["error"].startswith("RuntimeError") and "tokens_per_s" not in records[3]


@pytest.mark.slow
@pytest.mark.multiprocess  # the benchmark runs each row in its own process
def test_bench_json_rows_share_one_flop_formula(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "pretrain_bench.py"), "--preset", "tiny", "--objectives", "weam",
         "--zero", "0", "--steps", "2", "--warmup", "1", "--batch", "4", "--seq", "64", "--lines", "60",
         "--vocab", "400", "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = {row["objective"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"weam", "hf-trainer"}, proc.stdout[-2000:]
    ours, hf = rows["weam"], rows["hf-trainer"]
    for row in (ours, hf):
        assert KEYS <= set(row), (KEYS - set(row), row.get("error"))
        assert row["preset"] == "tiny" and row["zero"] == 0 and row["tokens_per_s"] > 0 and row["mfu"] > 0
        assert set(row["levers"]) == {"packing", "attention", "fused_adamw", "compile", "bf16"}
        assert row["levers"]["attention"].split("(")[0] in {"eager", "sdpa", "flash_attention_2"}
        assert row["levers"]["bf16"] is False
    assert ours["levers"]["packing"] == "off" and hf["levers"]["packing"] == "concatenated"
    assert ours["hf_tokens_per_s"] == hf["tokens_per_s"]
    assert abs(ours["ratio"] - ours["tokens_per_s"] / hf["tokens_per_s"]) < 1e-9
    # Tokens per CPU-second (for a loaded machine): the process's CPU time over the same timed steps.
    assert all(row["tokens_per_cpu_s"] > 0 and row["cpu_s_per_step"] > 0 for row in (ours, hf))
    assert abs(ours["cpu_ratio"] - ours["tokens_per_cpu_s"] / hf["tokens_per_cpu_s"]) < 1e-9
    # One formula; only where the output layer runs differs.
    # weam runs the output layer twice at each masked position (L_mp, then L_cp from the exchanged states).
    assert ours["flop_formula"].endswith("(masked positions, twice: L_mp and L_cp)")
    assert hf["flop_formula"].endswith("(every position)")
    assert ours["flop_formula"].rsplit(" (", 1)[0] == hf["flop_formula"].rsplit(" (", 1)[0]
    # HF's rows are full; ours are one unit a row padded to the batch's longest, so not full.
    assert hf["fill_rate"] == 1.0 and 0 < ours["fill_rate"] < 1
    assert ours["padded_per_step"] % 4 == 0 and ours["tokens_per_step"] <= ours["padded_per_step"]
    assert "FLOPs (MFU): flops_per_step" in proc.stdout and "fill" in proc.stdout
