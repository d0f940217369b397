"""``weam tracking``: send runs buffered while the MLflow server was unreachable, and show them."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer

from weam.core.errors import WeamError

app = typer.Typer(
    no_args_is_help=True,
    help="MLflow runs buffered while the tracking server was unreachable: `sync` sends them, `status` lists them.",
)

BufferOpt = Annotated[
    Path,
    typer.Option("--buffer", help="Buffer directory, or the work directory holding tracking-buffer/ (a study's)."),
]
UriOpt = Annotated[
    Optional[str],
    typer.Option("--uri", help="Tracking server (default: MLFLOW_TRACKING_URI, else the URI the runs were meant for)."),
]


def _journal(buffer: Path):
    from weam.core.tracking import Journal, find_buffer

    folder = find_buffer(buffer)
    journal = Journal(folder)
    if not journal.path.is_file():
        raise WeamError(f"{folder}: no tracking buffer here (journal.jsonl missing)")
    return journal


@app.command("sync")
def sync_command(buffer: BufferOpt = Path("."), uri: UriOpt = None) -> None:
    """Replay the buffer to the server: runs (names, tags, parents), params, metrics, artifacts and
    end status. Safe to repeat: what was sent before is not sent again."""
    from weam.core.secrets import redact, strip_credentials
    from weam.core.tracking import probe, replay

    journal = _journal(buffer)
    pending = journal.pending()
    meant = next((r.get("uri") for r in journal.records() if r.get("uri")), None)
    environment_uri = os.environ.get("MLFLOW_TRACKING_URI") or None
    target = uri or environment_uri or meant
    # The buffer and the suggested command name the server without credentials; when the
    # environment's URI is that server with them, it is used (else MLflow reads
    # MLFLOW_TRACKING_USERNAME/PASSWORD, MLFLOW_TRACKING_TOKEN or ~/.mlflow/credentials).
    if target and environment_uri and target != environment_uri and target == strip_credentials(environment_uri):
        target = environment_uri
    if not target:
        raise WeamError("give --uri or set MLFLOW_TRACKING_URI (the buffer names no server)")
    if not pending:
        typer.echo(f"{journal.folder}: nothing to sync (every buffered record was sent)")
        return
    ok, reason = probe(target)
    if not ok:
        raise WeamError(f"{reason}; the {len(pending)} buffered records stay in {journal.folder}")
    counts = replay(journal, target)
    typer.echo(f"synced {counts['records']} records ({counts['runs']} runs created) from {journal.folder} to "
               f"{redact(target)}")


@app.command("status")
def status_command(buffer: BufferOpt = Path(".")) -> None:
    """List what the buffer still holds for the server, by run."""
    journal = _journal(buffer)
    pending = journal.pending()
    names = {r["run"]: r["name"] for r in journal.records() if r["op"] == "create"}
    per_run = Counter(r["run"] for r in pending)
    typer.echo(f"{journal.folder}: {len(pending)} records to send, for {len(per_run)} runs")
    for run, count in per_run.most_common():
        typer.echo(f"  {names.get(run, run)}: {count} records")
