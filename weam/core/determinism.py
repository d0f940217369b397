"""Torch's deterministic mode, switched on by every stage that trains (pre-training, fine-tuning).

On CPU it costs nothing measurable here and every run of the same config gives the same bytes
(the seeds come from the configs: data sampling, masking, dropout, initialisation, batch order).
On a GPU, kernels that accumulate with atomics (scatter/index_add backward, some reductions) have
no deterministic variant or a slower one: ``warn_only`` keeps such a run going with a warning
rather than failing, so GPU runs are reproducible only up to those reductions (README)."""

from __future__ import annotations

import os


def deterministic_torch() -> None:
    import torch

    # cuBLAS picks a reduction order per workspace; a fixed workspace makes its matmuls repeatable.
    # It must be set before the first cuBLAS call, hence here, before a model is built.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
