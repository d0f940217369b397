"""``weam data``: build the demo corpora, list the demo languages, check a corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional, get_args

import typer
from rich.console import Console
from rich.table import Table

from weam.config import load_config
from weam.corpus import CorpusFormat, read_parallel
from weam.data.config import DemoDataConfig
from weam.languages import get_language

app = typer.Typer(no_args_is_help=True)

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="A DemoDataConfig YAML file.")]
SetOption = Annotated[list[str], typer.Option("--set", help="Override a config key: KEY=VALUE (repeatable).")]
SUMMARY_COLUMNS = (
    "code", "name", "family", "genus", "train pairs", "held-out pairs", "train words en", "train words xx",
)


def _console() -> Console:
    return Console(width=120)


@app.command()
def demo(
    config: ConfigOption = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (overrides out_dir).")] = None,
    langs: Annotated[Optional[str], typer.Option(help="Target languages, comma-separated: de,fi,sw.")] = None,
    set_: SetOption = [],
) -> None:
    """Build English–X corpora from translations shipped in Django, pycountry and babel."""
    from weam.data.demo import build_demo

    overrides = list(set_)
    if out is not None:
        overrides.append(f"out_dir={out}")
    if langs is not None:
        # JSON-quoted, so YAML never reads a code such as "no" or "on" as a boolean.
        overrides.append(f"languages={json.dumps([code.strip() for code in langs.split(',') if code.strip()])}")
    settings = load_config(DemoDataConfig, config, overrides)
    console = _console()
    with console.status("building demo corpora") as status:
        summary = build_demo(settings, progress=status.update)
    table = Table(title=f"demo corpora in {settings.out_dir}")
    for column in SUMMARY_COLUMNS:
        table.add_column(column, justify="right" if "pairs" in column or "words" in column else "left")
    for code, row in summary["counts"].items():
        table.add_row(
            code, row["name"], row["family"], row["genus"], f"{row['pairs']:,}", f"{row['heldout_pairs']:,}",
            f"{row['src_words']:,}", f"{row['tgt_words']:,}",
        )
    console.print(table)


@app.command()
def languages(
    config: ConfigOption = None,
    set_: SetOption = [],
) -> None:
    """List the languages the demo data can cover, with family and usable pair counts."""
    from weam.data.demo import available_languages

    settings = load_config(DemoDataConfig, config, list(set_))
    counts = available_languages(settings)
    table = Table(title=f"demo languages (train + held-out pairs; min_pairs={settings.min_pairs})")
    for column in ("code", "name", "family", "genus", "resource", "XTREME-R", "pairs"):
        table.add_column(column, justify="right" if column == "pairs" else "left")
    for code, pairs in sorted(counts.items(), key=lambda item: (get_language(item[0]).family, item[0])):
        language = get_language(code)
        table.add_row(
            code, language.name, language.family, language.genus, language.resource_level,
            "yes" if language.xtreme_r else "", f"{pairs:,}",
        )
    _console().print(table)


@app.command()
def check(
    src: Annotated[Path, typer.Option(help="Source file (Moses), or the single TSV/fast_align file.")],
    tgt: Annotated[Optional[Path], typer.Option(help="Target file of a Moses pair.")] = None,
    format: Annotated[str, typer.Option("--format", help="auto, moses, tsv or fast_align.")] = "auto",
) -> None:
    """Validate a parallel corpus: prints its counts, or the first error with file and line."""
    if format not in get_args(CorpusFormat):
        choices = ", ".join(get_args(CorpusFormat))
        raise typer.BadParameter(f"expected one of {choices}", param_hint="--format")
    pairs = src_words = tgt_words = 0
    for pair in read_parallel(src, tgt, fmt=format):
        pairs += 1
        src_words += len(pair.src.split())
        tgt_words += len(pair.tgt.split())
    typer.echo(f"{src}: {pairs:,} pairs, {src_words:,} source words, {tgt_words:,} target words")
