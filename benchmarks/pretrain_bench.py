"""Pre-training throughput: tokens/s, TFLOP/s, MFU and peak memory per objective and ZeRO stage,
through the real ``weam.training.api.pretrain`` path, and the same model and batch trained by the
Hugging Face Trainer with DeepSpeed for comparison. Each configuration runs in its own process
(clean peak memory, no state carried over); the first ``--warmup`` steps are not timed.

    python benchmarks/pretrain_bench.py                      # CPU: tiny preset, seq 128, batch 32
    python benchmarks/pretrain_bench.py --preset mbert-base --precision bf16 --zero 2 3   # GPU
    python benchmarks/pretrain_bench.py --dry-run            # validate every run's config, train nothing
    python benchmarks/pretrain_bench.py --preset mbert-base --precision bf16 --json throughput.json
        # the rows and the device as JSON: a study's power.throughput (weam study power's device-hours)

``--preset mbert-base`` builds mBERT's shape with its 119,547-token vocabulary (a fresh model saved
to the temporary folder, nothing downloaded); the synthetic tokenizer's ids are a subset of it.
Our rows follow the study's setting (one unit per row, padded to the batch's longest row; ``--packing``
packs them); the HF Trainer baseline trains full packed rows of ``--seq`` tokens, its usual MLM set-up.

Every row's MFU uses one formula, training/metrics.py ``flops_per_step``: the encoder's FLOPs per
non-pad token, plus the output layer where it runs (at masked positions in our rows, at every
position under HF's BertForMaskedLM). Each row prints its tokens per step (non-pad and padded), the
fill rate of its rows, and the levers it has on (packing, attention implementation, fused AdamW,
compile, bf16); ``--json`` writes the same per row.

Each row also gives tokens per CPU-second of its process over the same timed steps (``tok/CPU-s``,
JSON ``tokens_per_cpu_s`` and ``cpu_ratio``): on a shared machine wall-clock tokens/s measures the
other jobs too, while with ``OMP_NUM_THREADS=1`` the CPU-time figure is what an idle core gives.

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
sys.path.insert(0, str(REPO))
if not os.path.exists("/dev/nvidia0") and not os.environ.get("CUDA_VISIBLE_DEVICES"):
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # no GPU: DeepSpeed's CPU accelerator
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


def write_model(folder: Path, preset: str, vocab: int | None, tokenizer_dir: str) -> str:
    """A freshly initialised preset model (and the tokenizer) saved as an HF directory."""
    from transformers import AutoTokenizer

    from weam.modeling import build_masked_lm

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = build_masked_lm(preset, vocab_size=vocab or len(tokenizer))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def our_config(spec: dict):
    from weam.training.config import PretrainConfig

    return PretrainConfig.model_validate({
        "model": spec["model"], "tokenizer": spec["tokenizer"], "out_dir": spec["out"],
        "data": {"pairs": spec["pairs"], "batch_size": spec["batch"], "max_seq_len": spec["seq"],
                 "packing": spec["packing"]},
        "objective": {"name": spec["objective"]},
        "optim": {"max_steps": spec["warmup"] + spec["steps"]},
        # torch's AdamW in both trainers: DeepSpeed's FusedAdam would JIT-compile a CUDA op (needs nvcc).
        "parallel": {"zero_stage": spec["zero"], "precision": spec["precision"],
                     "activation_checkpointing": spec["checkpointing"],
                     "deepspeed_overrides": {"optimizer": {"params": {"torch_adam": True}}}},
        "checkpoint": {"every": 10**6},
        "logging": {"tracking": {"enabled": False}, "cpu_peak_flops": spec["cpu_peak"]},
    })


def run_ours(spec: dict) -> dict:
    from weam.training.api import pretrain
    from weam.training.metrics import flops_per_step, peak_flops

    config = our_config(spec)
    cpu_marks = cpu_clock_per_step()
    started = time.time()
    model_dir = pretrain(config)
    wall = time.time() - started
    records = [json.loads(line) for line in (Path(spec["out"]) / "train_log.jsonl").read_text().splitlines()]
    timed = records[spec["warmup"]:]
    seconds = timed[-1]["time"] - records[spec["warmup"] - 1]["time"]
    cpu_seconds = cpu_marks[-1] - cpu_marks[spec["warmup"] - 1]
    tokens = timed[-1]["tokens"] - records[spec["warmup"] - 1]["tokens"]
    from transformers import AutoConfig

    model_config = AutoConfig.from_pretrained(model_dir)
    before = records[spec["warmup"] - 1]["tokens"]
    flops = 0.0
    passes = config.objective.spec.output_passes  # weam: L_mp and L_cp each run it at the masked positions
    for record in timed:  # the output layer runs at the masked positions only (training/objectives.py)
        flops += flops_per_step(model_config, record["tokens"] - before, record["masked"] * passes, record["width"])
        before = record["tokens"]
    if spec["objective"] == "word_aligned":  # the frozen copy's forward over the English half
        flops += flops_per_step(model_config, tokens / 2, 0, spec["seq"]) / 3
    padded = sum(r["padded"] for r in timed)
    return {"steps_per_s": len(timed) / seconds, "tokens_per_s": tokens / seconds, "tflops": flops / seconds / 1e12,
            "tokens_per_cpu_s": tokens / cpu_seconds, "cpu_s_per_step": cpu_seconds / len(timed),
            "mfu": flops / seconds / peak_flops(spec["cpu_peak"]), "flop_formula": FLOP_FORMULA + OUTPUT_AT["masked" if passes == 1 else "masked_twice"],
            "tokens_per_step": tokens / len(timed), "padded_per_step": padded / len(timed),
            "fill_rate": tokens / padded, "levers": levers(spec, model_config, packing="units" if spec["packing"] else "off"),
            "vocab": model_config.vocab_size, "wall_s": wall, **memory()}


def run_hf_trainer(spec: dict) -> dict:
    """The same model, batch and masking rate through transformers.Trainer + DeepSpeed (MLM)."""
    import torch
    from datasets import Dataset
    from transformers import (AutoTokenizer, DataCollatorForLanguageModeling, Trainer, TrainerCallback,
                              TrainingArguments)

    from weam.training.config import DistributedEnv
    from weam.training.metrics import flops_per_step, peak_flops
    from weam.modeling import build_masked_lm

    env = DistributedEnv().resolved()
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(env.master_port))
    from transformers import AutoModelForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(spec["tokenizer"])
    if spec["model"].startswith("preset:"):
        model = build_masked_lm(spec["preset"], vocab_size=len(tokenizer), max_position_embeddings=max(512, spec["seq"]))
    else:
        model = AutoModelForMaskedLM.from_pretrained(spec["model"])
    texts = [line for p in spec["pairs"] for key in ("src_file", "tgt_file") for line in Path(p[key]).read_text().splitlines()]
    ids = [t for row in tokenizer(texts, add_special_tokens=False)["input_ids"] for t in row]
    width = spec["seq"] - 2
    rows = [[tokenizer.cls_token_id, *ids[i : i + width], tokenizer.sep_token_id] for i in range(0, len(ids) - width, width)]
    dataset = Dataset.from_dict({"input_ids": rows})
    times: list[float] = []
    cpu_times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.time())
            cpu_times.append(time.process_time())

    ds_config = {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": 1,
                 "zero_optimization": {"stage": spec["zero"]}, "bf16": {"enabled": "auto"},
                 "optimizer": {"type": "AdamW", "params": {"lr": "auto", "torch_adam": True}}}
    args = TrainingArguments(
        output_dir=spec["out"], per_device_train_batch_size=spec["batch"], max_steps=spec["warmup"] + spec["steps"],
        learning_rate=5e-5, bf16=spec["precision"] == "bf16", deepspeed=ds_config, report_to=[], save_strategy="no",
        logging_strategy="no", dataloader_num_workers=0, use_cpu=not torch.cuda.is_available(),
    )
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3)
    if not torch.cuda.is_available():
        from training.distributed import skip_cpu_inference_op

        skip_cpu_inference_op()  # as our rows: HF's side must not spend its first step compiling it
    started = time.time()
    Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=[Clock()]).train()
    wall = time.time() - started
    seconds = times[-1] - times[spec["warmup"] - 1]
    cpu_seconds = cpu_times[-1] - cpu_times[spec["warmup"] - 1]
    tokens = spec["steps"] * spec["batch"] * spec["seq"]
    # HF's BertForMaskedLM computes vocabulary logits at every position, not only masked ones.
    flops = spec["steps"] * flops_per_step(model.config, spec["batch"] * spec["seq"], spec["batch"] * spec["seq"], spec["seq"])
    return {"steps_per_s": spec["steps"] / seconds, "tokens_per_s": tokens / seconds, "tflops": flops / seconds / 1e12,
            "tokens_per_cpu_s": tokens / cpu_seconds, "cpu_s_per_step": cpu_seconds / spec["steps"],
            "mfu": flops / seconds / peak_flops(spec["cpu_peak"]), "flop_formula": FLOP_FORMULA + OUTPUT_AT["all"],
            "tokens_per_step": tokens / spec["steps"], "padded_per_step": tokens / spec["steps"], "fill_rate": 1.0,
            "levers": levers(spec, model.config, packing="concatenated"), "vocab": model.config.vocab_size,
            "wall_s": wall, **memory()}


def cpu_clock_per_step() -> list[float]:
    """This process's CPU seconds (time.process_time, every thread) after each training step, read
    where train_log.jsonl's wall time is: tokens per CPU-second compares runs on a loaded machine,
    where wall-clock tokens/s measures the other jobs too (with OMP_NUM_THREADS=1 it is the idle
    tokens/s)."""
    from weam.training import api

    marks: list[float] = []
    record = api.Meter.record

    def timed_record(self, *args, **kwargs):
        record(self, *args, **kwargs)
        marks.append(time.process_time())

    api.Meter.record = timed_record
    return marks


# One formula for every row: training/metrics.py flops_per_step, with the output layer counted where it runs.
FLOP_FORMULA = "flops_per_step: 6*N_dense + 12*L*H*width per non-pad token + 6*(H^2+H*V) per output position"
OUTPUT_AT = {"masked": " (masked positions)", "masked_twice": " (masked positions, twice: L_mp and L_cp)",
             "all": " (every position)"}


def levers(spec: dict, model_config, packing: str) -> dict:
    """The speed levers this run has on. packing: units (ours: whole units per row, none split),
    concatenated (HF: text cut into full rows), off. attention: the implementation transformers
    picked for this model (eager | sdpa | flash_attention_2), and under SDPA on CUDA the kernels
    torch allows. Both trainers hand DeepSpeed torch's AdamW (torch_adam) without fused=True, and
    neither compiles the model."""
    import torch
    from transformers import AutoModelForMaskedLM

    with torch.device("meta"):  # no weights: only to read the implementation transformers resolves
        implementation = AutoModelForMaskedLM.from_config(model_config).config._attn_implementation
    attention = implementation or "eager"
    if attention == "sdpa" and torch.cuda.is_available():
        allowed = [name for name, on in (("flash", torch.backends.cuda.flash_sdp_enabled()),
                                         ("mem_efficient", torch.backends.cuda.mem_efficient_sdp_enabled()),
                                         ("math", torch.backends.cuda.math_sdp_enabled())) if on]
        attention += "(" + "|".join(allowed) + ")"
    return {"packing": packing, "attention": attention, "fused_adamw": False, "compile": False,
            "bf16": spec["precision"] == "bf16"}


def levers_text(levers: dict) -> str:
    on = [f"pack={levers['packing']}", f"attn={levers['attention']}"]
    on += [name for name in ("fused_adamw", "compile", "bf16") if levers[name]]
    return " ".join(on)


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
    parser.add_argument("--packing", action="store_true", help="pack several units per row (ours)")
    parser.add_argument("--model-vocab", type=int, default=None,
                        help="vocabulary of the fresh model (default: mBERT's 119547 for mbert-base, else the tokenizer's)")
    parser.add_argument("--dry-run", action="store_true", help="validate every run's config and print the plan")
    parser.add_argument("--json", type=Path, help="write the device and the rows here (a study's power.throughput)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        from weam.training.metrics import device_name

        spec = json.loads(args.one)
        result = run_hf_trainer(spec) if spec["objective"] == "hf-trainer" else run_ours(spec)
        print("RESULT " + json.dumps({**result, "device": device_name()}))
        return
    model_vocab = args.model_vocab or (119547 if args.preset == "mbert-base" else None)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_data(Path(tmp) / "data", args.lines if not args.dry_run else 50, args.vocab)
        if args.dry_run or model_vocab is None:
            model = f"preset:{args.preset}"
        else:
            model = write_model(Path(tmp) / "model", args.preset, model_vocab, data["tokenizer"])
        runs = [(o, z) for o in args.objectives for z in args.zero]
        runs += [] if args.no_hf else [("hf-trainer", z) for z in args.zero]
        rows = []
        device = None  # as the runs report it: the parent imports no torch (seconds of the smallest run)
        for k, (objective, zero) in enumerate(runs):
            spec = {**data, "preset": args.preset, "model": model, "objective": objective, "zero": zero,
                    "seq": args.seq, "batch": args.batch, "precision": args.precision, "steps": args.steps,
                    "warmup": args.warmup, "cpu_peak": args.cpu_peak, "checkpointing": args.checkpointing,
                    "packing": args.packing, "out": str(Path(tmp) / f"run{k}")}
            if args.dry_run:
                print(f"dry-run: {dry_run(spec)}")
                continue
            result = run_child(spec)
            device = result.pop("device", None) or device
            rows.append((objective, zero, result))
    if args.dry_run:
        print(f"dry-run: {len(runs)} runs valid")
        return
    print(f"\npreset={args.preset} seq={args.seq} batch={args.batch} precision={args.precision} "
          f"steps={args.steps} (after {args.warmup} warm-up) vocab={args.vocab}")
    print("tokens/step: non-pad tokens a step (special tokens included, as tokens/s counts them); padded/step: "
          "rows x width; fill: their ratio. x HF: tokens/s over the HF Trainer row at the same ZeRO stage. "
          "tok/CPU-s: tokens over the process's CPU seconds in the timed steps (x HF: its ratio), "
          "for a loaded machine.")
    print(f"{'objective':<13} {'ZeRO':>4} {'steps/s':>8} {'tokens/s':>10} {'x HF':>5} {'tok/CPU-s':>9} {'x HF':>5} "
          f"{'tok/step':>8} {'padded':>7} {'fill':>5} {'TFLOP/s':>8} {'MFU':>7} {'peak mem GB':>12} {'wall s':>7}  levers")
    hf = {zero: r["tokens_per_s"] for objective, zero, r in rows if objective == "hf-trainer" and "error" not in r}
    hf_cpu = {zero: r["tokens_per_cpu_s"] for objective, zero, r in rows if objective == "hf-trainer" and "error" not in r}
    for objective, zero, r in rows:
        if "error" in r:
            print(f"{objective:<13} {zero:>4}  failed: {r['error']}")
            continue
        ratio = f"{r['tokens_per_s'] / hf[zero]:>5.2f}" if zero in hf else f"{'-':>5}"
        cpu_ratio = f"{r['tokens_per_cpu_s'] / hf_cpu[zero]:>5.2f}" if zero in hf_cpu else f"{'-':>5}"
        print(f"{objective:<13} {zero:>4} {r['steps_per_s']:>8.2f} {r['tokens_per_s']:>10,.0f} {ratio} "
              f"{r['tokens_per_cpu_s']:>9,.0f} {cpu_ratio} {r['tokens_per_step']:>8,.0f} {r['padded_per_step']:>7,.0f} {r['fill_rate']:>5.0%} {r['tflops']:>8.4f} "
              f"{r['mfu']:>7.2%} {r['peak_mem_gb']:>8.2f} {r['mem_kind']:<3} {r['wall_s']:>7.1f}  {levers_text(r['levers'])}")
    formulas = sorted({r["flop_formula"] for _, _, r in rows if "error" not in r})
    print("FLOPs (MFU): " + "; ".join(formulas))
    if args.json:
        if device is None:  # every run failed before reporting it
            from weam.training.metrics import device_name

            device = device_name()
        args.json.write_text(json.dumps({
            "device": device, "devices": 1, "preset": args.preset, "seq": args.seq, "batch": args.batch,
            "precision": args.precision, "packing": args.packing,
            "rows": json_rows(rows, args.preset, vocab=model_vocab or args.vocab)}, indent=2) + "\n")


def json_rows(rows: list[tuple[str, int, dict]], preset: str, vocab: int) -> list[dict]:
    """One record per run: the issue-25 keys first, then the rest of the measurement."""
    hf = {zero: r["tokens_per_s"] for objective, zero, r in rows if objective == "hf-trainer" and "error" not in r}
    hf_cpu = {zero: r["tokens_per_cpu_s"] for objective, zero, r in rows
              if objective == "hf-trainer" and "tokens_per_cpu_s" in r}
    out = []
    for objective, zero, r in rows:
        row = {"preset": preset, "vocab": r.get("vocab", vocab), "objective": objective, "zero": zero}
        if "error" not in r:
            row.update({"levers": r["levers"], "tokens_per_s": r["tokens_per_s"], "hf_tokens_per_s": hf.get(zero),
                        "ratio": r["tokens_per_s"] / hf[zero] if zero in hf else None,
                        "cpu_ratio": (r["tokens_per_cpu_s"] / hf_cpu[zero]
                                      if zero in hf_cpu and "tokens_per_cpu_s" in r else None), "mfu": r["mfu"],
                        "flop_formula": r["flop_formula"], "fill_rate": r["fill_rate"],
                        "peak_mem": {"gb": r["peak_mem_gb"], "kind": r["mem_kind"]}})
        out.append({**row, **{k: v for k, v in r.items() if k not in row}})
    return out


def dry_run(spec: dict) -> str:
    """Validate one run's config and its DeepSpeed config without training."""
    from weam.training.distributed import deepspeed_config

    if spec["objective"] == "hf-trainer":
        return f"hf-trainer ZeRO-{spec['zero']} {spec['precision']} batch {spec['batch']} seq {spec['seq']}"
    config = our_config(spec)
    ds = deepspeed_config(config.optim, config.parallel, config.data.batch_size, 1, config.optim.max_steps)
    return (f"{config.objective.name} ZeRO-{ds['zero_optimization']['stage']} bf16={ds['bf16']['enabled']} "
            f"input={config.input_mode()} batch {ds['train_batch_size']} seq {config.data.max_seq_len}")


def run_child(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"error": tail[0][:160]}


if __name__ == "__main__":
    main()
