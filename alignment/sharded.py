"""Sharded alignment on Ray, resumable shard by shard.

The driver streams the corpus once, cuts it into contiguous shards and sends each shard's lines
to a Ray task (so workers need no shared filesystem and no paths). Each finished shard is written
atomically to ``<work>/shard-NNNNN.txt``; a re-run after a killed worker or driver skips shards
whose file exists and redoes the rest. The global model (when used) is cached the same way, as
JSON (never a pickle: the work folder may sit on a shared volume, and loading a pickle runs code).
The work folder's name is a content hash of the inputs and config (see ``weam.alignment.api``), so
nothing cached there outlives a change of either.
"""

from __future__ import annotations

import base64
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from weam.alignment.config import AlignConfig
from weam.core.corpus import SentencePair, read_parallel
from weam.core.errors import InputError, WeamError
from weam.core.manifest import atomic_write


@dataclass
class ShardStats:
    """What one run did; recorded in the manifest's counts."""

    pairs: int = 0
    shards: int = 0
    shards_run: list[int] = field(default_factory=list)
    shards_reused: list[int] = field(default_factory=list)
    global_model: str = "none"
    seconds: float = 0.0


def shard_bounds(n_pairs: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) pair ranges of near-equal size (fewer shards than asked if tiny)."""
    shards = max(1, min(shards, n_pairs))
    size, extra = divmod(n_pairs, shards)
    bounds, start = [], 0
    for index in range(shards):
        end = start + size + (index < extra)
        bounds.append((start, end))
        start = end
    return bounds


def checked_pairs(src: Path, tgt: Path, forbid_separator: bool = False) -> Iterator[SentencePair]:
    """The corpus's pairs; InputError (file:line) on a count mismatch, an empty side, bad UTF-8, a
    line over the corpus line-length limit shared by every stage, or, for fast_align, a ``|||``
    token (its field separator)."""
    for pair in read_parallel(src, tgt, fmt="moses"):
        if forbid_separator:
            for path, text in ((src, pair.src), (tgt, pair.tgt)):
                if "|||" in text:
                    raise InputError(path, "contains '|||', fast_align's field separator", pair.line)
        yield pair


def count_pairs(src: Path, tgt: Path, forbid_separator: bool = False) -> int:
    n_pairs = sum(1 for _ in checked_pairs(src, tgt, forbid_separator))
    if n_pairs == 0:
        raise InputError(src, "no sentence pairs")
    return n_pairs


def iter_shards(src: Path, tgt: Path, bounds: list[tuple[int, int]]) -> Iterator[tuple[int, list[str], list[str]]]:
    pairs = read_parallel(src, tgt, fmt="moses", max_chars=0)
    for index, (start, end) in enumerate(bounds):
        chunk = [next(pairs) for _ in range(end - start)]
        yield index, [p.src for p in chunk], [p.tgt for p in chunk]


def sample_pairs(src: Path, tgt: Path, n_pairs: int, k: int, seed: int) -> tuple[list[str], list[str]]:
    chosen = set(random.Random(seed).sample(range(n_pairs), k)) if k < n_pairs else None
    picked = [p for n, p in enumerate(read_parallel(src, tgt, fmt="moses", max_chars=0))
              if chosen is None or n in chosen]
    return [p.src for p in picked], [p.tgt for p in picked]


def shard_path(work: Path, index: int) -> Path:
    return work / f"shard-{index:05d}.txt"


def _task_error(exc: Exception, what: str) -> WeamError:
    import ray

    cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) else exc
    if isinstance(cause, WeamError):
        return WeamError(f"{what}: {cause}")
    return WeamError(f"{what} failed ({type(exc).__name__}): {str(exc)[-2000:]}; re-run to resume")


def global_model(engine, config: AlignConfig, src: Path, tgt: Path, n_pairs: int, work: Path):
    """Train (or reuse the cached) model every shard is aligned with, or None for per-shard models."""
    if config.shards == 1 or config.shard_model == "per_shard" or n_pairs <= 1:
        return None
    import ray

    cache = work / GLOBAL_MODEL_NAME
    if cache.is_file():
        try:
            return load_model(cache, engine.name)
        except (ValueError, KeyError, TypeError):
            cache.unlink()  # a cut-off or foreign file: train again rather than trust it
    sample_src, sample_tgt = sample_pairs(src, tgt, n_pairs, config.global_sample_pairs, config.seed)
    task = ray.remote(num_cpus=1, max_retries=config.max_retries)(_train_task)
    try:
        model = ray.get(task.remote(engine, sample_src, sample_tgt))
    except (ray.exceptions.RayError, WeamError) as exc:
        raise _task_error(exc, "training the global alignment model") from None
    save_model(cache, engine.name, model)
    return model


GLOBAL_MODEL_NAME = "global-model.json"


def save_model(path: Path, engine_name: str, model) -> None:
    """A global model as JSON: plain data only (fast_align's params as base64, eflomal's priors as text)."""
    with atomic_write(path) as handle:
        json.dump({"engine": engine_name, "model": _encode(model)}, handle)


def load_model(path: Path, engine_name: str):
    """The model :func:`save_model` wrote; ValueError when the file is not one (or is another engine's)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("engine") != engine_name:
        raise ValueError(f"{path}: a {data.get('engine')!r} model, not {engine_name!r}")
    return _decode(data["model"])


def _encode(value):
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {"dict": {str(k): _encode(v) for k, v in value.items()}}
    if isinstance(value, str | int | float) or value is None:
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a global model file")


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {"base64"}:
            return base64.b64decode(value["base64"], validate=True)
        return {k: _decode(v) for k, v in value["dict"].items()}
    return value


def _train_task(engine, src: list[str], tgt: list[str]):
    return engine.train_global(src, tgt)


def _align_task(engine, src: list[str], tgt: list[str], model) -> list[str]:
    return engine.align(src, tgt, model)


def run_shards(engine, config: AlignConfig, src: Path, tgt: Path, work: Path,
               report: Callable[[str], None] | None = None) -> ShardStats:
    """Check the corpus and align every unfinished shard (on Ray when sharded or given a cluster);
    shard files land in ``work``."""
    started = time.perf_counter()
    separator = engine.name == "fast_align"
    if not uses_ray(config):  # one shard here: one pass reads and checks the corpus, no cluster
        pairs = list(checked_pairs(src, tgt, separator))
        if not pairs:
            raise InputError(src, "no sentence pairs")
        stats = ShardStats(pairs=len(pairs), shards=1)
        progress = Progress(len(pairs), 1, report)
        if not _reuse(work, 0, len(pairs), stats, progress):
            lines = engine.align([p.src for p in pairs], [p.tgt for p in pairs], None)
            _save(work, 0, lines, len(pairs), stats, progress)
    else:
        from weam.alignment.ray_runtime import ray_session

        n_pairs = count_pairs(src, tgt, separator)
        bounds = shard_bounds(n_pairs, config.shards)
        stats = ShardStats(pairs=n_pairs, shards=len(bounds))
        progress = Progress(n_pairs, len(bounds), report)
        with ray_session(config.ray_address, config.ray):
            _run_on_ray(engine, config, src, tgt, n_pairs, work, bounds, stats, progress)
    stats.seconds = time.perf_counter() - started
    return stats


def uses_ray(config: AlignConfig) -> bool:
    return config.shards > 1 or config.ray_address is not None


def _reuse(work: Path, index: int, size: int, stats: ShardStats, progress: "Progress") -> bool:
    if not shard_path(work, index).is_file():
        return False
    stats.shards_reused.append(index)
    progress.done(size, reused=True)
    return True


def _save(work: Path, index: int, lines: list[str], size: int, stats: ShardStats, progress: "Progress") -> None:
    if len(lines) != size:
        raise WeamError(f"shard {index}: the aligner returned {len(lines)} lines for {size} pairs")
    with atomic_write(shard_path(work, index)) as handle:
        handle.writelines(line + "\n" for line in lines)
    stats.shards_run.append(index)
    progress.done(size)


def _run_on_ray(engine, config, src, tgt, n_pairs, work, bounds, stats, progress) -> None:
    import ray

    model = global_model(engine, config, src, tgt, n_pairs, work)
    stats.global_model = "none" if model is None else f"trained on {min(n_pairs, config.global_sample_pairs)} pairs"
    model_ref, engine_ref = ray.put(model), ray.put(engine)
    task = ray.remote(num_cpus=1, max_retries=config.max_retries)(_align_task)
    in_flight: dict = {}
    limit = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))  # bounds the driver's memory
    for index, shard_src, shard_tgt in iter_shards(src, tgt, bounds):
        if _reuse(work, index, len(shard_src), stats, progress):
            continue
        while len(in_flight) >= limit:
            _collect(in_flight, work, stats, progress)
        in_flight[task.remote(engine_ref, shard_src, shard_tgt, model_ref)] = (index, len(shard_src))
    while in_flight:
        _collect(in_flight, work, stats, progress)


def _collect(in_flight: dict, work: Path, stats: ShardStats, progress: "Progress") -> None:
    """Save the next finished shard; on a failure keep what the others finish, then raise."""
    import ray

    ready, _ = ray.wait(list(in_flight), num_returns=1)
    index, size = in_flight.pop(ready[0])
    try:
        lines = ray.get(ready[0])
    except (ray.exceptions.RayError, WeamError) as exc:
        for ref, (other, other_size) in list(in_flight.items()):
            try:
                _save(work, other, ray.get(ref), other_size, stats, progress)
            except (ray.exceptions.RayError, WeamError):
                continue
        in_flight.clear()
        raise _task_error(exc, f"shard {index}") from None
    _save(work, index, lines, size, stats, progress)


class Progress:
    """One line per finished shard: shards done, sentence pairs per second, ETA."""

    def __init__(self, pairs: int, shards: int, report: Callable[[str], None] | None):
        self.total_pairs, self.total_shards = pairs, shards
        self.pairs_done = self.shards_done = self.pairs_aligned = 0
        self.started = time.perf_counter()
        self.report = report or (lambda text: print(text, file=sys.stderr, flush=True))

    def done(self, pairs: int, reused: bool = False) -> None:
        self.shards_done += 1
        self.pairs_done += pairs
        if not reused:
            self.pairs_aligned += pairs
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = self.pairs_aligned / elapsed
        left = self.total_pairs - self.pairs_done
        eta = f"{left / rate:.0f}s" if rate > 0 else "?"
        note = " (reused)" if reused else ""
        self.report(f"align: shard {self.shards_done}/{self.total_shards} done{note} · "
                    f"{self.pairs_done}/{self.total_pairs} pairs · {rate:,.0f} pairs/s · ETA {eta}")
