"""``weam pretrain``: thin commands over training.api.pretrain. The rendezvous variables (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and MLFLOW_TRACKING_URI are read here and
nowhere else, so torchrun, the deepspeed launcher and a Kubernetes pod start training alike."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from weam.errors import ConfigError

app = typer.Typer(
    no_args_is_help=True,
    epilog=(
        "Pre-train an encoder on word-aligned parallel data under DeepSpeed. Objectives: weam "
        "(L_mlm + λ·L_cross, Yang et al. 2021), mlm, tlm (XLM), word_aligned (Cao et al. 2020). Config sections: "
        "data, objective, optim, parallel, checkpoint, logging. One process: "
        "`weam pretrain run --config FILE`; several: `torchrun --nproc_per_node=G -m weam.cli pretrain run "
        "--config FILE`, or set RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT per process. "
        "Outputs: <out_dir>/model (HF), checkpoints/ (resume), manifest.json. `weam pretrain config` lists every key."
    ),
)

ConfigArg = Annotated[Path, typer.Option("--config", "-c", help="Pre-training config (YAML, see configs/pretrain/).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a key, e.g. --set optim.lr=1e-4 (repeatable).")]


@app.command("run")
def run_command(
    config: ConfigArg,
    overrides: SetOpt = None,
    local_rank: Annotated[Optional[int], typer.Option("--local_rank", "--local-rank", hidden=True)] = None,
) -> None:
    """Train (or resume from the latest checkpoint, or skip when finished) and export the HF model.

    ``--local_rank`` is accepted for the deepspeed launcher, which appends it; LOCAL_RANK (which it
    also sets) is what counts."""
    from training.api import pretrain
    from training.config import DistributedEnv, PretrainConfig
    from weam.config import load_config
    from weam.tracking import sigterm_as_exception

    overrides = list(overrides or [])
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri and not any(item.startswith("logging.tracking.uri=") for item in overrides):
        overrides.append(f"logging.tracking.uri={uri}")
    cfg = load_config(PretrainConfig, config, overrides)
    try:
        dist = DistributedEnv.from_environ(os.environ)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    from weam.lock import lock_output

    # SIGTERM (a pod deleted, torchrun stopping) ends the MLflow run KILLED; one writer per out_dir.
    with sigterm_as_exception(), (lock_output(cfg.out_dir) if dist.is_main else contextlib.nullcontext()):
        model_dir = pretrain(cfg, dist)
    if dist.is_main:
        typer.echo(f"model: {model_dir}")


@app.command("config")
def config_command() -> None:
    """List every config key with its default and description."""
    from training.config import PretrainConfig
    from weam.config import describe_fields

    for key, default, text in describe_fields(PretrainConfig):
        typer.echo(f"{key} = {default}\n    {' '.join(text.split())}")
