"""``weam pretrain``: thin commands over the stage table's pre-training stage. The rendezvous
variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and MLFLOW_TRACKING_URI are read
at the CLI edge (weam.edge), so torchrun, the deepspeed launcher and a Kubernetes pod start
training alike."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Optional

import typer

from weam.edge import ConfigOpt, SetOpt, add_config_command, environment, load_stage_config, run_stage

app = typer.Typer(
    no_args_is_help=True,
    epilog=(
        "Pre-train an encoder on word-aligned parallel data under DeepSpeed. Objectives: weam "
        "(L_mlm + λ·L_cross, Yang et al. 2021), mlm, tlm, word_aligned. One process: "
        "`weam pretrain run --config FILE`; several: `torchrun --nproc_per_node=G -m weam.cli pretrain run "
        "--config FILE`, or set RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT per process. "
        "Outputs: <out_dir>/model (HF), checkpoints/ (resume), manifest.json. `weam pretrain config` lists every key."
    ),
)


@app.command("run")
def run_command(
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    local_rank: Annotated[Optional[int], typer.Option("--local_rank", "--local-rank", hidden=True)] = None,
) -> None:
    """Train (or resume from the latest checkpoint, or skip when finished) and export the HF model.

    ``--local_rank`` is accepted for the deepspeed launcher, which appends it; LOCAL_RANK (which it
    also sets) is what counts."""
    from weam.core.lock import lock_output
    from weam.core.tracking import sigterm_as_exception

    env = environment()
    cfg = load_stage_config("pretrain", config, overrides, env)
    dist = env.distributed()
    # SIGTERM (a pod deleted, torchrun stopping) ends the MLflow run KILLED; one writer per out_dir.
    with sigterm_as_exception(), (lock_output(cfg.out_dir) if dist.is_main else contextlib.nullcontext()):
        step = run_stage("pretrain", cfg, extra={"dist": dist}, env=env, is_main=dist.is_main)
    if dist.is_main:
        typer.echo(f"model: {Path(step.out_dir) / 'model'}")


add_config_command(app, "pretrain")
