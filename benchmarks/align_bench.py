"""Benchmark: the raw aligners run by hand vs ``weam align`` (1 shard, N shards), same corpus, same
machine, one run. Prints wall time, peak memory (RSS summed over the whole process tree, sampled
every 20 ms) and AER, for the corpus replicated 1×, 4×, 16×.

    python benchmarks/align_bench.py                       # Django en-de translations (pip package)
    python benchmarks/align_bench.py --src a.en --tgt a.de --gold gold.txt --shards 4 --repeats 3
    FAST_ALIGN_BIN=... ATOOLS_BIN=... python benchmarks/align_bench.py   # adds fast_align rows

Without ``--gold`` (and with the default corpus) the gold is a silver set: an independent eflomal run
by eflomal's own CLI, 3× longer, sure = links both directions agree on, possible = either direction.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from weam.alignment.config import FastAlignConfig
from weam.alignment.django_corpus import django_pairs, write_corpus
from weam.alignment.engines import find_fast_align
from weam.alignment.pharaoh import parse_links
from weam.alignment.scoring import score_alignments

EFLOMAL_ALIGN = str(Path(sys.executable).with_name("eflomal-align"))


def measure(command: list[str] | str, stdout: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of the process tree of ``command``."""
    out = open(stdout, "w") if stdout else subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen(command, shell=isinstance(command, str), stdout=out, stderr=subprocess.PIPE)
    peak = [0]

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    elapsed = time.perf_counter() - started
    sampler.join()
    if stdout:
        out.close()
    if proc.returncode != 0:
        raise SystemExit(f"{command} failed:\n{stderr.decode()[-3000:]}")
    return elapsed, peak[0] / 2**20


def replicate(src: Path, tgt: Path, gold: Path | None, copies: int, folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    outputs = []
    for path in (src, tgt, gold):
        if path is None:
            outputs.append(None)
            continue
        text = path.read_text(encoding="utf-8")
        target = folder / path.name
        target.write_text(text * copies, encoding="utf-8")
        outputs.append(target)
    return outputs


def silver_gold(src: Path, tgt: Path, folder: Path) -> Path:
    fwd, rev, gold = folder / "gold.fwd", folder / "gold.rev", folder / "gold.txt"
    subprocess.run([EFLOMAL_ALIGN, "-s", str(src), "-t", str(tgt), "-f", str(fwd), "-r", str(rev), "-l", "3",
                    "--overwrite"], check=True)
    with open(fwd) as f, open(rev) as r, open(gold, "w") as out:
        for a, b in zip(f, r):
            one, two = set(parse_links(a)), set(parse_links(b))
            out.write(" ".join([f"{i}-{j}" for i, j in sorted(one & two)]
                               + [f"{i}p{j}" for i, j in sorted((one | two) - (one & two))]) + "\n")
    return gold


def shell_step(argv: list[str | Path], stdout: Path, quiet: bool = False) -> str:
    """One step of a timed pipeline as shell text, every word quoted (paths may hold spaces or `;`)."""
    return f"{shlex.join(map(str, argv))} > {shlex.quote(str(stdout))}" + (" 2>/dev/null" if quiet else "")


def symmetrize_by_hand(tools, fwd: Path, rev: Path, out: Path) -> str:
    """atools when present (the upstream way), else weam's symmetrizer, as one shell command."""
    if tools:
        return shell_step([tools.atools, "-i", fwd, "-j", rev, "-c", "grow-diag-final-and"], out)
    code = ("import sys; from weam.alignment.symmetrize import symmetrize; from weam.alignment.pharaoh import *; "
            "[print(format_links(symmetrize(parse_links(a), parse_links(b), 'grow-diag-final-and'))) "
            "for a, b in zip(open(sys.argv[1]), open(sys.argv[2]))]")
    return shell_step([sys.executable, "-c", code, fwd, rev], out)


def raw_command(engine: str, tools, src: Path, tgt: Path, work: Path) -> tuple[str, Path]:
    """The upstream tools run by hand, as one shell pipeline (timed as one process tree)."""
    out = work / f"raw-{engine}.txt"
    if engine == "fast_align":
        joint = work / "corpus.src-tgt"  # fast_align's input format, prepared untimed
        with open(src) as s, open(tgt) as t, open(joint, "w") as j:
            j.writelines(f"{a.strip()} ||| {b.strip()}\n" for a, b in zip(s, t))
        fa = [tools.fast_align, "-i", joint, "-d", "-o", "-v", "-I", "5"]
        return " && ".join([shell_step(fa, work / "fa.fwd", quiet=True), shell_step([*fa, "-r"], work / "fa.rev", quiet=True),
                            symmetrize_by_hand(tools, work / "fa.fwd", work / "fa.rev", out)]), out
    eflomal = [EFLOMAL_ALIGN, "-s", src, "-t", tgt, "-f", work / "ef.fwd", "-r", work / "ef.rev", "--overwrite"]
    cmd = f"{shlex.join(map(str, eflomal))} && " + symmetrize_by_hand(tools, work / "ef.fwd", work / "ef.rev", out)
    return cmd, out


def weam_command(engine: str, tools, src: Path, tgt: Path, out: Path, shards: int, shard_model: str) -> list[str]:
    command = [sys.executable, "-m", "weam", "align", "run", "--src", str(src), "--tgt", str(tgt), "--out", str(out),
               "--engine", engine, "--shards", str(shards), "--set", f"shard_model={shard_model}",
               "--set", f"ray.num_cpus={os.cpu_count()}"]
    if tools:
        command += ["--set", f"fast_align.binary={tools.fast_align}", "--set", f"fast_align.atools={tools.atools}"]
    return command


VARIANTS = ("hand", "one", "sharded", "per_shard")


def run_rows(engine, tools, src, tgt, gold, scale, shards, repeats, work, chosen=VARIANTS):
    variants = {"hand": ("by hand", None, None), "one": ("weam 1 shard", 1, "global"),
                "sharded": (f"weam {shards} shards", shards, "global"),
                "per_shard": (f"weam {shards} shards per-shard model", shards, "per_shard")}
    rows = []
    for label, n, model in (variants[name] for name in chosen):
        times, mems, aers = [], [], []
        for repeat in range(repeats):
            folder = work / f"{engine}-{scale}-{label.replace(' ', '_')}-{repeat}"
            folder.mkdir(parents=True)
            if n is None:
                command, output = raw_command(engine, tools, src, tgt, folder)
            else:
                command = weam_command(engine, tools, src, tgt, folder / "out", n, model)
                output = folder / "out" / "alignment.txt"
            seconds, peak = measure(command)
            times.append(seconds)
            mems.append(peak)
            if gold:
                aers.append(score_alignments(output, gold)["aer"])
        rows.append((engine, f"{scale}x", label, statistics.mean(times), max(mems),
                     statistics.mean(aers) if aers else None, statistics.pstdev(aers) if len(aers) > 1 else None))
        print(_format(rows[-1]), flush=True)
    return rows


HEADER = f"{'engine':<11} {'corpus':>6} {'run':<30} {'wall s':>8} {'peak MiB':>9} {'AER':>7} {'AER sd':>7}"


def _format(row) -> str:
    engine, scale, label, seconds, peak, aer, sd = row
    aer_text = f"{aer:7.4f}" if aer is not None else f"{'-':>7}"
    sd_text = f"{sd:7.4f}" if sd is not None else f"{'-':>7}"
    return f"{engine:<11} {scale:>6} {label:<30} {seconds:8.2f} {peak:9.0f} {aer_text} {sd_text}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path)
    parser.add_argument("--tgt", type=Path)
    parser.add_argument("--gold", type=Path, help="i-j sure, i?j / ipj possible; default: silver gold (see above)")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=1, help="runs per row (eflomal is not seedable)")
    parser.add_argument("--engines", nargs="+", default=["eflomal", "fast_align"])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                        help="hand = the tool by hand; one = weam 1 shard; sharded = weam N shards, global "
                             "model; per_shard = weam N shards, one model per shard")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    tools = find_fast_align(FastAlignConfig(binary=os.environ.get("FAST_ALIGN_BIN"), atools=os.environ.get("ATOOLS_BIN")))
    with tempfile.TemporaryDirectory(prefix="align-bench-") as tmp:
        work = Path(tmp)
        if args.src and args.tgt:
            src, tgt, gold = args.src.resolve(), args.tgt.resolve(), args.gold
        else:
            src, tgt = write_corpus(django_pairs("de"), work / "base")
            gold = args.gold or silver_gold(src, tgt, work / "base")
        n_pairs = sum(1 for _ in open(src))
        print(f"corpus: {src} ({n_pairs} pairs), gold: {gold or 'none'}, cpus: {os.cpu_count()}, "
              f"fast_align: {tools.fast_align if tools else 'not found (rows skipped)'}", flush=True)
        print(HEADER, flush=True)
        rows = []
        for scale in args.scales:
            s_src, s_tgt, s_gold = replicate(src, tgt, gold, scale, work / f"x{scale}")
            for engine in args.engines:
                if engine == "fast_align" and tools is None:
                    continue
                rows += run_rows(engine, tools, s_src, s_tgt, s_gold, scale, args.shards, args.repeats, work,
                                 args.variants)
        print("\n" + HEADER)
        for row in rows:
            print(_format(row))


if __name__ == "__main__":
    main()
