"""The alignment stage's config (``configs/align/*.yaml``, ``weam align run --config/--set``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from weam.alignment.ray_runtime import RayLocalConfig
from weam.core.config import StrictModel, not_result


class FastAlignConfig(StrictModel):
    """fast_align (upstream C++ binary, github.com/clab/fast_align) run as a subprocess."""

    binary: str | None = not_result(None)
    """Path of the fast_align binary; None = $FAST_ALIGN_BIN or `fast_align` on PATH (every command
    resolves them the same way: weam.edge.with_tool_binaries). Where the tool lives is no setting
    of the result (the engine used is: ``resolved_engine``), so setting FAST_ALIGN_BIN re-runs nothing."""
    atools: str | None = not_result(None)
    """Path of atools (symmetrization); None = $ATOOLS_BIN, beside fast_align, or PATH."""
    favor_diagonal: bool = True
    """-d: favour alignment points close to the diagonal."""
    optimize_tension: bool = True
    """-o: optimise the diagonal tension."""
    variational_bayes: bool = True
    """-v: Dirichlet prior on lexical translation distributions."""
    iterations: int = Field(5, ge=1)
    """-I: EM iterations."""
    threads: int = Field(1, ge=1)
    """OpenMP threads per fast_align process (forward and reverse already run side by side). 1 keeps
    the output deterministic; with more, fast_align sums floats in varying order and a few links
    can change from run to run."""
    extra_args: list[str] = []
    """Further fast_align flags, passed to both directions as given (e.g. ["-a", "0.01"])."""


class EflomalConfig(StrictModel):
    """eflomal (pip package) through its Python API. eflomal seeds itself from /dev/urandom:
    runs are not bit-reproducible, only statistically."""

    model: Literal[1, 2, 3] = 3
    """1 = IBM1, 2 = IBM1+HMM, 3 = IBM1+HMM+fertility."""
    n_samplers: int = Field(3, ge=1)
    """Independent Gibbs samplers whose counts are averaged."""
    length: float = Field(1.0, gt=0)
    """Number of sampling iterations relative to eflomal's default."""
    null_prior: float = Field(0.2, ge=0, le=1)
    """Prior probability of a NULL alignment."""


class ThotConfig(StrictModel):
    """eflomal's algorithm as sil-thot implements it (pip package ``sil-thot``, ``EflomalAlignmentModel``):
    the same Bayesian IBM1 → HMM → fertility cascade sampled by collapsed Gibbs sampling, with the
    same corpus-scaled iteration schedule, but every sampler chain seeded from ``seed`` (the alignment
    config's): the same corpus, config and seed give the same links, byte for byte."""

    n_samplers: int = Field(3, ge=1)
    """Independent Gibbs chains (seeded seed, seed + 2654435761, …) whose marginals are summed."""
    length: float = Field(1.0, gt=0)
    """Number of sampling iterations relative to eflomal's default (max(2, round(5000/sqrt(pairs))))."""
    null_prior: float = Field(0.2, ge=0, le=1)
    """Prior probability of a NULL alignment (thot's p0)."""


class AlignConfig(StrictModel):
    """Word alignment of a parallel corpus, optionally sharded on Ray."""

    engine: Literal["auto", "thot", "eflomal", "fast_align"] = "auto"
    """auto = fast_align when its binary is found, else thot (eflomal's sampler, seeded: both give the
    same output for the same seed). eflomal (the original C program) seeds itself from /dev/urandom:
    two runs differ."""
    symmetrization: Literal["grow-diag-final-and", "intersection", "union"] = "grow-diag-final-and"
    """How the two directions are combined (atools semantics)."""
    shards: int = Field(1, ge=1)
    """Number of shards (Ray tasks); 1 = the whole corpus in one task."""
    shard_model: Literal["global", "per_shard"] = "global"
    """global = one model trained on a corpus sample (fast_align -p params, eflomal priors) and used to
    align every shard; per_shard = each shard trains its own model (loses quality on small shards)."""
    global_sample_pairs: int = Field(200_000, ge=1)
    """Pairs (a seeded random sample) the global model is trained on; whole corpus when smaller."""
    ray_address: str | None = not_result(None)
    """Ray cluster address ("auto", "ray://head:10001"); None = start a local Ray for this run."""
    ray: RayLocalConfig = not_result(RayLocalConfig())
    """Settings of the local Ray started when ray_address is None."""
    max_retries: int = not_result(2, ge=0)
    """Ray retries of a shard whose worker died; a re-run redoes any shard still unfinished."""
    seed: int = 0
    """Seed of the global model's training sample and of thot's sampler (every shard's too: a shard's
    links depend on its pairs and the seed only, not on which worker runs it or when)."""
    fast_align: FastAlignConfig = FastAlignConfig()
    """fast_align settings."""
    eflomal: EflomalConfig = EflomalConfig()
    """eflomal settings."""
    thot: ThotConfig = ThotConfig()
    """thot (seeded eflomal) settings."""
