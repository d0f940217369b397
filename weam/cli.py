"""The ``weam`` command: one subcommand per stage. Each stage's commands live beside its code.

Entry points stay thin: they parse options, load and validate the stage config once, and run the
stage through the stage table (weam/stages.py). Environment variables are read at the edge
(weam/edge.py) and nowhere deeper.
"""

from __future__ import annotations

import sys

import typer

from weam.alignment.cli import app as align_app
from weam.eval.cli import app as eval_app
from weam.training.cli import app as pretrain_app
from weam.data.cli import app as data_app
from weam.edge import stage_app
from weam.core.errors import WeamError, storage_error
from weam.core.secrets import redact
from weam.core.progress import quiet_library_noise
from weam.study.cli import app as study_app
from weam.tracking_cli import app as tracking_app

app = typer.Typer(
    name="weam",
    help=(
        "WEAM intermediate pre-training on word-aligned parallel data, and XTREME-R zero-shot "
        "evaluation, for studies of language-family diversity. Stages: data → align → pretrain "
        "→ eval; `weam study` runs them all from one config. Every stage: `weam <stage> run --config "
        "FILE [--set key=value]…` and `weam <stage> config`; `weam stages` prints the stage table."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data_app, name="data", help="Build and inspect parallel corpora (demo data from shipped translations).")
app.add_typer(align_app, name="align", help="Word-align parallel corpora (fast_align, seeded eflomal via thot, or eflomal), sharded on Ray.")
app.add_typer(pretrain_app, name="pretrain", help="Pre-train WEAM or a baseline objective under DeepSpeed.")
app.add_typer(eval_app, name="eval", help="XTREME-R zero-shot evaluation of any HF encoder.")
app.add_typer(study_app, name="study", help="Run, inspect and report a family-diversity study.")
app.add_typer(tracking_app, name="tracking", help="Send MLflow runs buffered while the tracking server was unreachable.")
# The stages without a package of their own get the generic run/config pair (weam/stages.py).
app.add_typer(stage_app("tokenizer", "Train the WordPiece tokenizer of a preset base model."), name="tokenizer")
app.add_typer(stage_app("budget", "Check that every condition can meet the token budget."), name="budget")
app.add_typer(stage_app("tatoeba", "Build held-out retrieval sets in XTREME's Tatoeba layout."), name="tatoeba")
app.add_typer(stage_app("word_gold", "Gold word links of a held-out split (the instrument check's word retrieval)."),
              name="word_gold")
app.add_typer(stage_app("probe", "Word and sentence retrieval of one model at several layers (instrument check)."),
              name="probe")
app.add_typer(stage_app("report", "Write a study's report from its stage files."), name="report")


@app.command("stages")
def stages_command() -> None:
    """Print the stage table: each stage's config class, function, output folder and inputs."""
    from rich.console import Console
    from rich.table import Table

    from weam.stages import table_rows

    table = Table("stage", "config", "function", "output", "inputs", title="weam stages (weam/stages.py)")
    for row in table_rows():
        table.add_row(*row)
    Console(width=200).print(table)


def main() -> None:
    quiet_library_noise()  # the one place library noise is filtered (list in weam/core/progress.py)
    try:
        app()
    except WeamError as exc:
        typer.secho(f"error: {redact(exc)}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except OSError as exc:  # disk full, read-only or forbidden output anywhere: an error line, not a traceback
        error = storage_error(exc)
        if error is None:
            raise
        typer.secho(f"error: {redact(error)}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
