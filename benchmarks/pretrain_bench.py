"""Pre-training throughput: tokens/s, TFLOP/s, MFU and peak memory per objective and ZeRO stage,
through the real ``training.api.pretrain`` path, and the same model and batch trained by the
Hugging Face Trainer with DeepSpeed for comparison. Each configuration runs in its own process
(clean peak memory, no state carried over); the first ``--warmup`` steps are not timed.

    python benchmarks/pretrain_bench.py                      # CPU: tiny preset, seq 128, batch 32
    python benchmarks/pretrain_bench.py --preset mbert-base --seq 512 --precision bf16 --zero 0 1 2 3

On CPU the MFU is against ``--cpu-peak`` FLOP/s; on CUDA against the bf16 peak table in
training/metrics.py. Synthetic parallel data (a toy lexicon, exact alignments) is written to a
temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))


def write_data(folder: Path, lines: int, vocab: int) -> dict:
    """Two synthetic pairs; the target reverses word order and suffixes words (exact links)."""
    from weam.modeling import train_wordpiece_tokenizer

    rng = random.Random(0)
    lexicon = ["".join(rng.choice("abcdefghiklmnoprstuvz") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    pairs = []
    for tgt, suffix in (("de", "en"), ("sw", "ni")):
        src_lines, tgt_lines, links = [], [], []
        for _ in range(lines):
            words = [rng.choice(lexicon) for _ in range(rng.randint(5, 30))]
            src_lines.append(" ".join(words))
            tgt_lines.append(" ".join(w + suffix for w in reversed(words)))
            links.append(" ".join(f"{i}-{len(words) - 1 - i}" for i in range(len(words)) if i % 5))
        base = folder / f"en-{tgt}"
        base.mkdir(parents=True)
        for name, content in ((f"train.en", src_lines), (f"train.{tgt}", tgt_lines), ("alignment.txt", links)):
            (base / name).write_text("\n".join(content) + "\n", encoding="utf-8")
        pairs.append({"src": "en", "tgt": tgt, "src_file": str(base / "train.en"),
                      "tgt_file": str(base / f"train.{tgt}"), "alignment": str(base / "alignment.txt")})
    texts = [line for p in pairs for key in ("src_file", "tgt_file") for line in Path(p[key]).read_text().splitlines()]
    train_wordpiece_tokenizer(texts, vocab_size=vocab).save_pretrained(folder / "tokenizer")
    return {"pairs": pairs, "tokenizer": str(folder / "tokenizer")}


def run_ours(spec: dict) -> dict:
    from training.api import pretrain
    from training.config import PretrainConfig
    from training.metrics import flops_per_step, peak_flops

    config = PretrainConfig.model_validate({
        "model": f"preset:{spec['preset']}", "tokenizer": spec["tokenizer"], "objective": spec["objective"],
        "pairs": spec["pairs"], "batch_size": spec["batch"], "max_seq_len": spec["seq"],
        "max_steps": spec["warmup"] + spec["steps"], "zero_stage": spec["zero"], "precision": spec["precision"],
        "checkpoint_every": 10**6, "out_dir": spec["out"], "tracking": {"enabled": False},
        "activation_checkpointing": spec["checkpointing"], "cpu_peak_flops": spec["cpu_peak"],
    })
    started = time.time()
    model_dir = pretrain(config)
    wall = time.time() - started
    records = [json.loads(line) for line in (Path(spec["out"]) / "train_log.jsonl").read_text().splitlines()]
    timed = records[spec["warmup"]:]
    seconds = timed[-1]["time"] - records[spec["warmup"] - 1]["time"]
    tokens = timed[-1]["tokens"] - records[spec["warmup"] - 1]["tokens"]
    from transformers import AutoConfig

    model_config = AutoConfig.from_pretrained(model_dir)
    flops = sum(flops_per_step(model_config, 0, r["masked"], spec["seq"]) for r in timed)
    flops += flops_per_step(model_config, tokens, 0, spec["seq"])
    return {"steps_per_s": len(timed) / seconds, "tokens_per_s": tokens / seconds, "tflops": flops / seconds / 1e12,
            "mfu": flops / seconds / peak_flops(spec["cpu_peak"]), "wall_s": wall, **memory()}


def run_hf_trainer(spec: dict) -> dict:
    """The same model, batch and masking rate through transformers.Trainer + DeepSpeed (MLM)."""
    import torch
    from datasets import Dataset
    from transformers import (AutoTokenizer, DataCollatorForLanguageModeling, Trainer, TrainerCallback,
                              TrainingArguments)

    from training.config import DistributedEnv
    from training.metrics import flops_per_step, peak_flops
    from weam.modeling import build_masked_lm

    env = DistributedEnv().resolved()
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(env.master_port))
    tokenizer = AutoTokenizer.from_pretrained(spec["tokenizer"])
    model = build_masked_lm(spec["preset"], vocab_size=len(tokenizer), max_position_embeddings=max(512, spec["seq"]))
    texts = [line for p in spec["pairs"] for key in ("src_file", "tgt_file") for line in Path(p[key]).read_text().splitlines()]
    ids = [t for row in tokenizer(texts, add_special_tokens=False)["input_ids"] for t in row]
    width = spec["seq"] - 2
    rows = [[tokenizer.cls_token_id, *ids[i : i + width], tokenizer.sep_token_id] for i in range(0, len(ids) - width, width)]
    dataset = Dataset.from_dict({"input_ids": rows})
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.time())

    ds_config = {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": 1,
                 "zero_optimization": {"stage": spec["zero"]}, "bf16": {"enabled": "auto"},
                 "optimizer": {"type": "AdamW", "params": {"lr": "auto", "torch_adam": not torch.cuda.is_available()}}}
    args = TrainingArguments(
        output_dir=spec["out"], per_device_train_batch_size=spec["batch"], max_steps=spec["warmup"] + spec["steps"],
        learning_rate=5e-5, bf16=spec["precision"] == "bf16", deepspeed=ds_config, report_to=[], save_strategy="no",
        logging_strategy="no", dataloader_num_workers=0, use_cpu=not torch.cuda.is_available(),
    )
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3)
    started = time.time()
    Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=[Clock()]).train()
    wall = time.time() - started
    seconds = times[-1] - times[spec["warmup"] - 1]
    tokens = spec["steps"] * spec["batch"] * spec["seq"]
    # HF's BertForMaskedLM computes vocabulary logits at every position, not only masked ones.
    flops = spec["steps"] * flops_per_step(model.config, spec["batch"] * spec["seq"], spec["batch"] * spec["seq"], spec["seq"])
    return {"steps_per_s": spec["steps"] / seconds, "tokens_per_s": tokens / seconds, "tflops": flops / seconds / 1e12,
            "mfu": flops / seconds / peak_flops(spec["cpu_peak"]), "wall_s": wall, **memory()}


def memory() -> dict:
    import torch

    if torch.cuda.is_available():
        return {"peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30, "mem_kind": "GPU"}
    return {"peak_mem_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "mem_kind": "RSS"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", help="tiny | small | mbert-base (mBERT's shape)")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--objectives", nargs="+", default=["mlm", "tlm", "word_aligned", "weam"])
    parser.add_argument("--zero", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps")
    parser.add_argument("--vocab", type=int, default=8000, help="WordPiece vocabulary trained on the synthetic data")
    parser.add_argument("--lines", type=int, default=4000, help="sentence pairs per language pair")
    parser.add_argument("--cpu-peak", type=float, default=1e11, help="peak FLOP/s of one CPU process (MFU)")
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing")
    parser.add_argument("--no-hf", action="store_true", help="skip the HF Trainer comparison")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        spec = json.loads(args.one)
        result = run_hf_trainer(spec) if spec["objective"] == "hf-trainer" else run_ours(spec)
        print("RESULT " + json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = write_data(Path(tmp) / "data", args.lines, args.vocab)
        runs = [(o, z) for o in args.objectives for z in args.zero]
        runs += [] if args.no_hf else [("hf-trainer", z) for z in args.zero]
        rows = []
        for k, (objective, zero) in enumerate(runs):
            spec = {**data, "preset": args.preset, "objective": objective, "zero": zero, "seq": args.seq,
                    "batch": args.batch, "precision": args.precision, "steps": args.steps, "warmup": args.warmup,
                    "cpu_peak": args.cpu_peak, "checkpointing": args.checkpointing, "out": str(Path(tmp) / f"run{k}")}
            rows.append((objective, zero, run_child(spec)))
    print(f"\npreset={args.preset} seq={args.seq} batch={args.batch} precision={args.precision} "
          f"steps={args.steps} (after {args.warmup} warm-up) vocab={args.vocab}")
    print(f"{'objective':<13} {'ZeRO':>4} {'steps/s':>8} {'tokens/s':>10} {'TFLOP/s':>8} {'MFU':>7} {'peak mem GB':>12} {'wall s':>7}")
    for objective, zero, r in rows:
        if "error" in r:
            print(f"{objective:<13} {zero:>4}  failed: {r['error']}")
            continue
        print(f"{objective:<13} {zero:>4} {r['steps_per_s']:>8.2f} {r['tokens_per_s']:>10,.0f} {r['tflops']:>8.4f} "
              f"{r['mfu']:>7.2%} {r['peak_mem_gb']:>8.2f} {r['mem_kind']:<3} {r['wall_s']:>7.1f}")


def run_child(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"error": tail[0][:160]}


if __name__ == "__main__":
    main()
