"""Commands of this stage (filled in by the stage's issue)."""

import typer

app = typer.Typer(no_args_is_help=True)
