"""``align_corpus``: the alignment stage as one call (the CLI and the study orchestrator use it).

Output directory::

    <out_dir>/alignment.txt    Pharaoh ``i-j`` (0-based source-target word links), one line per pair
    <out_dir>/manifest.json    written last; its presence means the run finished
    <out_dir>/.work-<hash>/    shard outputs of an unfinished run (removed when the run finishes)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from alignment.config import AlignConfig
from alignment.engines import make_engine
from alignment.sharded import run_shards, shard_path
from weam.manifest import MANIFEST_NAME, atomic_write, fingerprint, is_up_to_date, write_manifest

ALIGNMENT_NAME = "alignment.txt"
STAGE = "align"
RUNTIME_ONLY = {"ray_address", "ray", "max_retries"}
"""Settings that change where and how robustly the work runs, not its result: a run resumes or
skips across them (e.g. started locally, finished on a cluster)."""


def align_corpus(src: Path, tgt: Path, out_dir: Path, config: AlignConfig,
                 report: Callable[[str], None] | None = None) -> Path:
    """Align a Moses pair (one sentence per line, space-separated tokens); return alignment.txt.

    Skips when ``out_dir`` already holds a finished run of the same inputs and config. Raises
    :class:`~weam.errors.WeamError` (InputError for bad data) and then leaves no manifest, so
    nothing unfinished looks finished; a re-run resumes from the shards already done.
    """
    src, tgt, out_dir = Path(src).resolve(), Path(tgt).resolve(), Path(out_dir).resolve()
    inputs = {"src": src, "tgt": tgt}
    engine = make_engine(config)  # fails early when fast_align is asked for but missing
    recorded = {**config.model_dump(mode="json", exclude=RUNTIME_ONLY), "resolved_engine": engine.name}
    output = out_dir / ALIGNMENT_NAME
    if is_up_to_date(out_dir, inputs, recorded):
        _say(report, f"align: {output} is up to date, skipping")
        return output
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    output.unlink(missing_ok=True)
    key = fingerprint({"src": _signature(src), "tgt": _signature(tgt)}, recorded)[:16]
    work = out_dir / f".work-{key}"
    work.mkdir(parents=True, exist_ok=True)
    stats = run_shards(engine, config, src, tgt, work, report)
    _concatenate([shard_path(work, index) for index in range(stats.shards)], output)
    n_pairs = stats.pairs
    counts = {"pairs": n_pairs, "shards": stats.shards, "shards_run": len(stats.shards_run),
              "shards_reused": len(stats.shards_reused), "global_model": stats.global_model,
              "seconds": round(stats.seconds, 3)}
    write_manifest(out_dir, STAGE, inputs, recorded, {"alignment": ALIGNMENT_NAME}, counts)
    shutil.rmtree(work, ignore_errors=True)
    return output


def _concatenate(shards: list[Path], output: Path) -> None:
    """The shards, in corpus order, as one file that appears only when complete."""
    if len(shards) == 1:
        os.replace(shards[0], output)
        return
    with atomic_write(output) as handle:
        for path in shards:
            with open(path, encoding="utf-8") as shard:
                shutil.copyfileobj(shard, handle)


def _signature(path: Path) -> dict:
    """Cheap identity of an input for naming the resume directory (size and mtime, not a hash)."""
    info = path.stat()
    return {"sha256": f"{path}:{info.st_size}:{info.st_mtime_ns}"}


def _say(report: Callable[[str], None] | None, text: str) -> None:
    if report is not None:
        report(text)
    else:
        import sys

        print(text, file=sys.stderr, flush=True)
