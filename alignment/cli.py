"""``weam align run`` and ``weam align score``. Environment variables are read here only:
FAST_ALIGN_BIN / ATOOLS_BIN (fast_align's binaries) and RAY_ADDRESS (set by ``ray job submit``)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from weam.config import load_config

app = typer.Typer(no_args_is_help=True, help="Word-align parallel corpora (fast_align or eflomal), sharded on Ray.")


def build_config(config: Path | None, overrides: list[str], engine: str | None, shards: int | None,
                 ray_address: str | None, environ=os.environ):
    """The AlignConfig from file + --set overrides + options, with binaries from the environment."""
    from alignment.config import AlignConfig

    extra = list(overrides)
    if engine is not None:
        extra.append(f"engine={engine}")
    if shards is not None:
        extra.append(f"shards={shards}")
    if ray_address is None and environ.get("RAY_ADDRESS"):
        ray_address = "auto"  # inside `ray job submit`: join the cluster that runs the job
    if ray_address is not None:
        extra.append(f"ray_address={ray_address}")
    loaded = load_config(AlignConfig, config, extra)
    for field, variable in (("binary", "FAST_ALIGN_BIN"), ("atools", "ATOOLS_BIN")):
        if getattr(loaded.fast_align, field) is None and environ.get(variable):
            setattr(loaded.fast_align, field, environ[variable])
    return loaded


@app.command()
def run(
    src: Path = typer.Option(..., help="Source side: one sentence per line, space-separated tokens."),
    tgt: Path = typer.Option(..., help="Target side, line-parallel to --src."),
    out: Path = typer.Option(..., help="Output directory (alignment.txt + manifest.json)."),
    engine: str = typer.Option(None, help="auto | eflomal | fast_align (overrides the config)."),
    shards: int = typer.Option(None, help="Number of Ray shards (overrides the config)."),
    ray_address: str = typer.Option(None, help="Ray cluster address, e.g. auto; default: a local Ray."),
    config: Path = typer.Option(None, help="AlignConfig YAML (see configs/align/)."),
    overrides: list[str] = typer.Option([], "--set", help="KEY=VALUE override, e.g. eflomal.n_samplers=2."),
) -> None:
    """Align SRC/TGT and write OUT/alignment.txt (Pharaoh i-j, 0-based); skips finished work."""
    from alignment.api import align_corpus

    cfg = build_config(config, overrides, engine, shards, ray_address)
    typer.echo(align_corpus(src, tgt, out, cfg))


@app.command()
def score(
    pred: Path = typer.Option(..., help="Predicted Pharaoh file."),
    gold: Path = typer.Option(..., help="Gold file: i-j sure, i?j or ipj possible, 0-based."),
) -> None:
    """Print precision, recall and alignment error rate (Och & Ney 2003)."""
    from alignment.scoring import score_alignments

    result = score_alignments(pred, gold)
    for name in ("precision", "recall", "aer"):
        typer.echo(f"{name}\t{result[name]:.4f}")


@app.command("config")
def show_config() -> None:
    """List every AlignConfig key with its default and description."""
    from alignment.config import AlignConfig
    from weam.config import describe_fields

    for key, default, text in describe_fields(AlignConfig):
        typer.echo(f"{key} = {default}\n    {text}")
