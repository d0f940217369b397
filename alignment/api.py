"""``align_corpus``: the alignment stage as one call (the CLI and the study orchestrator use it).

Output directory::

    <out_dir>/alignment.txt    Pharaoh ``i-j`` (0-based source-target word links), one line per pair
    <out_dir>/manifest.json    written last; its presence means the run finished
    <out_dir>/.work-<hash>/    shard outputs of an unfinished run; <hash> is of the inputs' contents
                               and the config (removed, with any older ones, when a run finishes)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from weam.alignment.config import AlignConfig
from weam.alignment.engines import make_engine
from weam.alignment.sharded import run_shards, shard_path
from weam.core.errors import InputError, WeamError, writing_to
from weam.core.config import result_config
from weam.core.lock import lock_output
from weam.core.manifest import (MANIFEST_NAME, atomic_write, describe_inputs, fingerprint, is_up_to_date,
                           write_manifest)

ALIGNMENT_NAME = "alignment.txt"
STAGE = "align"
WORK_PREFIX = ".work-"


def align_corpus(src: Path, tgt: Path, out_dir: Path, config: AlignConfig,
                 report: Callable[[str], None] | None = None) -> Path:
    """Align a Moses pair (one sentence per line, space-separated tokens); return alignment.txt.

    Skips when ``out_dir`` already holds a finished run of the same inputs (by content hash) and
    config. Raises :class:`~weam.core.errors.WeamError` (InputError for bad data) and then leaves no
    manifest, so nothing unfinished looks finished; a re-run of the same inputs and config resumes
    from the shards already done. One process at a time may write ``out_dir`` (weam.core.lock).
    """
    src, tgt, out_dir = Path(src).resolve(), Path(tgt).resolve(), Path(out_dir).resolve()
    inputs = {"src": src, "tgt": tgt}
    for name, path in inputs.items():
        if not path.is_file():
            raise InputError(path, f"--{name}: " + ("is a directory, not a file" if path.is_dir() else "file not found"))
    if out_dir.exists() and not out_dir.is_dir():
        raise WeamError(f"{out_dir}: --out must be a directory (alignment.txt and manifest.json go inside), "
                        "and this is a file")
    engine = make_engine(config)  # fails early when fast_align is asked for but missing
    # Fields marked not_result (Ray address, retries) change where the work runs, not its result: a
    # run resumes or skips across them (e.g. started locally, finished on a cluster).
    recorded = fingerprint_config(config, engine.name)
    output = out_dir / ALIGNMENT_NAME
    with lock_output(out_dir):
        if is_up_to_date(out_dir, inputs, recorded):
            _say(report, f"align: {output} is up to date, skipping")
            return output
        (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
        output.unlink(missing_ok=True)
        described = describe_inputs(inputs)  # content hashes: what the resume folder and the manifest key on
        key = fingerprint({name: info["sha256"] for name, info in described.items()}, recorded)[:16]
        work = out_dir / f"{WORK_PREFIX}{key}"
        # The alignments take about as much as the source side (one link per word, "i-j ").
        with writing_to(out_dir, src.stat().st_size, "the alignments"):
            work.mkdir(parents=True, exist_ok=True)
            stats = run_shards(engine, config, src, tgt, work, report)
            if describe_inputs(inputs) != described:
                raise WeamError(f"{src} or {tgt} changed while it was being aligned; run again to align the new "
                                "version (the shards already done are kept only for the old one)")
            _concatenate([shard_path(work, index) for index in range(stats.shards)], output)
        counts = {"pairs": stats.pairs, "shards": stats.shards, "shards_run": len(stats.shards_run),
                  "shards_reused": len(stats.shards_reused), "global_model": stats.global_model,
                  "seconds": round(stats.seconds, 3)}
        write_manifest(out_dir, STAGE, described, recorded, {"alignment": ALIGNMENT_NAME}, counts)
        # This run's shards and any earlier, failed runs' (other inputs or config) are no longer needed.
        for stale in out_dir.glob(f"{WORK_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)
    return output


def fingerprint_config(config: AlignConfig, engine_name: str) -> dict:
    """The result-affecting config, with the engine ``auto`` resolved to."""
    return {**result_config(config), "resolved_engine": engine_name}


def _concatenate(shards: list[Path], output: Path) -> None:
    """The shards, in corpus order, as one file that appears only when complete."""
    if len(shards) == 1:
        os.replace(shards[0], output)
        return
    with atomic_write(output) as handle:
        for path in shards:
            with open(path, encoding="utf-8") as shard:
                shutil.copyfileobj(shard, handle)


def _say(report: Callable[[str], None] | None, text: str) -> None:
    if report is not None:
        report(text)
    else:
        import sys

        print(text, file=sys.stderr, flush=True)
