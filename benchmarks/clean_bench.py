"""Throughput of `weam data clean` per filter set, on synthetic pairs (no download): prints a table.

    python benchmarks/clean_bench.py --pairs 20000
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from weam.data.clean import PairCleaner, build_index, normal_form
from weam.data.config import CleanConfig

WORDS = ("the cat sat on a mat and the dog ran to the house while birds sang in old green trees "
         "kissa istui matolla ja koira juoksi taloon kun linnut lauloivat vanhoissa vihreissä puissa").split()


def pairs(n: int, seed: int = 0):
    rng = random.Random(seed)
    half = len(WORDS) // 2
    for _ in range(n):
        k = rng.randint(4, 20)
        yield (" ".join(rng.choice(WORDS[:half]) for _ in range(k)),
               " ".join(rng.choice(WORDS[half:]) for _ in range(k)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=20000)
    args = parser.parse_args()
    normal_form("warm up")  # builds the punctuation table once (about 1 s), not timed
    with tempfile.TemporaryDirectory() as tmp:
        xtreme = Path(tmp) / "xtreme" / "tatoeba"
        xtreme.mkdir(parents=True)
        (xtreme / "tatoeba.fin-eng.fin").write_text("kissa istui matolla\n", encoding="utf-8")
        (xtreme / "tatoeba.fin-eng.eng").write_text("the cat sat on a mat\n", encoding="utf-8")
        rows = []
        for label, settings in (("length+ratio+copy+dedup", {"langid": False, "decontaminate": False}),
                                ("+ contamination", {"langid": False, "xtreme_data_dir": xtreme.parent}),
                                ("+ langid (all filters)", {"xtreme_data_dir": xtreme.parent})):
            config = CleanConfig(**settings)
            index = build_index(config, ["fi"]) if config.decontaminate else None
            cleaner = PairCleaner(config, "fi", index)
            started = time.perf_counter()
            kept = sum(cleaner.keep(src, tgt) for src, tgt in pairs(args.pairs))
            seconds = time.perf_counter() - started
            rows.append((label, args.pairs, kept, seconds, args.pairs / seconds))
    print(f"{'filters':<26} {'pairs':>8} {'kept':>8} {'seconds':>8} {'pairs/s':>10}")
    for label, n, kept, seconds, rate in rows:
        print(f"{label:<26} {n:>8,} {kept:>8,} {seconds:>8.2f} {rate:>10,.0f}")


if __name__ == "__main__":
    main()
