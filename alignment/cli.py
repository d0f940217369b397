"""``weam align run`` and ``weam align score``. The environment (FAST_ALIGN_BIN / ATOOLS_BIN for
fast_align's binaries, RAY_ADDRESS set by ``ray job submit``) is read at the CLI edge
(:class:`weam.edge.Environment`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Optional

import typer

from weam.edge import ConfigOpt, Environment, SetOpt, add_config_command, run_stage, with_options, with_tool_binaries

app = typer.Typer(no_args_is_help=True, help="Word-align parallel corpora (fast_align, seeded eflomal via thot, or eflomal), sharded on Ray.")


def build_config(config: Path | None, overrides: list[str], engine: str | None, shards: int | None,
                 ray_address: str | None, environ: Mapping[str, str] | None = None):
    """The AlignConfig from file + --set overrides + options, with binaries from the environment."""
    from weam.edge import load_stage_config

    env = Environment.read(environ)
    extra = with_options(overrides, engine=engine, shards=shards, ray_address=ray_address or env.ray_address)
    loaded = load_stage_config("align", config, extra, env)
    return loaded.model_copy(update={"fast_align": with_tool_binaries(loaded.fast_align, env)})


@app.command()
def run(
    src: Annotated[Path, typer.Option(help="Source side: one sentence per line, space-separated tokens.")],
    tgt: Annotated[Path, typer.Option(help="Target side, line-parallel to --src.")],
    out: Annotated[Path, typer.Option(help="Output directory (alignment.txt + manifest.json).")],
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    engine: Annotated[Optional[str], typer.Option(help="Alias of --set engine=: auto | thot | eflomal | fast_align.")] = None,
    shards: Annotated[Optional[int], typer.Option(help="Alias of --set shards=N (Ray shards).")] = None,
    ray_address: Annotated[Optional[str], typer.Option(help="Alias of --set ray_address=, e.g. auto; default: a local Ray.")] = None,
) -> None:
    """Align SRC/TGT and write OUT/alignment.txt (Pharaoh i-j, 0-based); skips finished work."""
    cfg = build_config(config, overrides or [], engine, shards, ray_address)
    step = run_stage("align", cfg, out_dir=out, extra={"src": src.resolve(), "tgt": tgt.resolve()},
                     key=f"align/{out.resolve().name}")
    typer.echo(step.out_dir / "alignment.txt")


@app.command()
def score(
    pred: Path = typer.Option(..., help="Predicted Pharaoh file."),
    gold: Path = typer.Option(..., help="Gold file: i-j sure, i?j or ipj possible, 0-based."),
    src: Annotated[Optional[Path], typer.Option(help="Source side of the corpus: every link is checked against its sentence's length.")] = None,
    tgt: Annotated[Optional[Path], typer.Option(help="Target side of the corpus (with --src).")] = None,
) -> None:
    """Print precision, recall and alignment error rate (Och & Ney 2003). With --src/--tgt, a link
    past the end of its sentence (in either file) is refused: it would lower recall silently."""
    from weam.alignment.scoring import score_alignments

    if src is None and tgt is None:  # the corpus `weam align run` recorded beside its output
        src, tgt = _recorded_corpus(pred)
    result = score_alignments(pred, gold, src, tgt)
    for name in ("precision", "recall", "aer"):
        typer.echo(f"{name}\t{result[name]:.4f}")


def _recorded_corpus(pred: Path) -> tuple[Path | None, Path | None]:
    """The src/tgt files named by the manifest beside ``pred`` (an align stage's output), if still there."""
    from weam.core.manifest import read_manifest

    inputs = (read_manifest(pred.parent) or {}).get("inputs", {})
    paths = [Path(inputs[side]["path"]) if isinstance(inputs.get(side), dict) and inputs[side].get("path") else None
             for side in ("src", "tgt")]
    return (paths[0], paths[1]) if all(p is not None and p.is_file() for p in paths) else (None, None)


add_config_command(app, "align")
