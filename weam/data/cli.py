"""``weam data``: fetch and clean OPUS corpora, build the demo corpora (``run``, or ``demo`` with short
options), list the demo languages, check a corpus, list the config keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional, get_args

import typer
from rich.console import Console
from rich.table import Table

from weam.core.config import load_config
from weam.core.corpus import CorpusFormat, read_parallel
from weam.data.config import DemoDataConfig
from weam.edge import ConfigOpt, SetOpt, add_config_command, comma_list, load_stage_config, run_stage, with_options
from weam.core.languages import get_language

app = typer.Typer(no_args_is_help=True)

SUMMARY_COLUMNS = (
    "code", "name", "family", "genus", "train pairs", "held-out pairs", "train words en", "train words xx",
)


def _console() -> Console:
    return Console(width=120)


@app.command("run")
def run_command(config: ConfigOpt = None, overrides: SetOpt = None) -> None:
    """Build the demo corpora of a DemoDataConfig (skips when catalogs and config are unchanged)."""
    _build(load_stage_config("data", config, overrides))


@app.command()
def demo(
    config: ConfigOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Alias of --set out_dir=: output folder.")] = None,
    langs: Annotated[Optional[str], typer.Option(help="Alias of --set languages=[…]: de,fi,sw.")] = None,
    set_: SetOpt = None,
) -> None:
    """Build English–X corpora from translations shipped in Django, pycountry and babel (= data run)."""
    _build(load_stage_config("data", config, with_options(set_, out_dir=out, languages=comma_list(langs))))


def _build(settings: DemoDataConfig) -> None:
    from weam.core.manifest import read_manifest

    console = _console()
    with console.status("building demo corpora"):
        step = run_stage("data", settings)
    summary = read_manifest(step.out_dir) or {"counts": {}}
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
def languages(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """List the languages the demo data can cover, with family and usable pair counts."""
    from weam.data.demo import available_languages

    settings = load_stage_config("data", config, set_)
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


FetchConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="A FetchConfig YAML file.")]
CleanConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="A CleanConfig YAML file.")]
ShowOption = Annotated[bool, typer.Option(
    "--show-config", help="Print the resolved config (YAML) and every key's meaning, then exit.")]


def _show(model_cls, config: Optional[Path], overrides: list[str]) -> None:
    """The resolved config (or why it does not validate yet), then every key's default and meaning."""
    from weam.core.config import describe_fields, dump_config
    from weam.core.errors import ConfigError

    try:
        typer.echo(dump_config(load_config(model_cls, config, overrides)))
    except ConfigError as exc:
        typer.echo(f"# not valid yet: {exc}")
    for key, default, description in describe_fields(model_cls):
        typer.echo(f"# {key} (default {default}): {description}")


@app.command()
def fetch(
    config: FetchConfigOption = None,
    langs: Annotated[Optional[str], typer.Option(help="Target languages, comma-separated: fi,tr,de.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (overrides out_dir).")] = None,
    set_: SetOpt = None,
    show_config: ShowOption = False,
) -> None:
    """Fetch English–X OPUS corpora (OPUS-100, CCMatrix, …) as Moses pairs with a manifest.

    OPUS-100 is read with Hugging Face datasets, OPUS releases with opustools; the manifest names each
    source's version, licence and counts."""
    from weam.data.config import FetchConfig
    from weam.data.fetch import fetch as run_fetch, summary_rows

    overrides = with_options(set_, out_dir=out, languages=comma_list(langs))
    if show_config:
        _show(FetchConfig, config, overrides)
        return
    settings = load_config(FetchConfig, config, overrides)
    summary = run_fetch(settings)
    table = Table(title=f"fetched corpora in {settings.out_dir}")
    for column in ("pair", "source", "version", "licence", "pairs", "words en", "words xx"):
        table.add_column(column, justify="right" if column in ("pairs", "words en", "words xx") else "left")
    for pair, name, version, licence, pairs, src_words, tgt_words in summary_rows(summary):
        table.add_row(pair, name, version, licence, f"{pairs:,}", f"{src_words:,}", f"{tgt_words:,}")
    console = _console()
    console.print(table)
    for pair, manifest in summary["pairs"].items():
        for name, reason in manifest.get("skipped", {}).items():
            console.print(f"[yellow]{pair}: source {name} skipped: {reason}", highlight=False)


@app.command()
def clean(
    config: CleanConfigOption = None,
    in_dir: Annotated[Optional[Path], typer.Option("--in", help="A `weam data fetch` output folder (in_dir).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (overrides out_dir).")] = None,
    xtreme: Annotated[Optional[Path], typer.Option(help="XTREME-R download folder (xtreme_data_dir).")] = None,
    set_: SetOpt = None,
    show_config: ShowOption = False,
) -> None:
    """Filter fetched corpora and remove pairs overlapping XTREME-R dev/test sets, counted per filter.

    Filters: empty, contamination, length, length ratio, copies, language id, duplicates; prints the
    counts per pair and the evaluation files each overlap came from."""
    from weam.data.clean import FILTERS, clean as run_clean, missing_eval_files, report_rows
    from weam.data.config import CleanConfig

    overrides = with_options(set_, in_dir=in_dir, out_dir=out, xtreme_data_dir=xtreme)
    if show_config:
        _show(CleanConfig, config, overrides)
        return
    settings = load_config(CleanConfig, config, overrides)
    report = run_clean(settings)
    console = _console()
    table = Table(title=f"cleaned corpora in {settings.out_dir} (pairs removed by each filter, in order)")
    for column in ("pair", "input", *FILTERS, "kept"):
        table.add_column(column, justify="left" if column == "pair" else "right")
    for row in report_rows(report):
        table.add_row(*row)
    console.print(table)
    for pair, result in report["pairs"].items():
        found = result["contamination"]
        if not found.get("checked"):
            console.print(f"{pair}: overlap with evaluation sets not checked (decontaminate=false)")
            continue
        console.print(f"{pair}: {found['pairs_removed']:,} pairs overlapped evaluation sets", highlight=False)
        for row in found["overlaps"]:
            console.print(f"  {row['side']} side = {row['task']} {row['split']} ({row['lang']}): "
                          f"{row['pairs_removed']:,} pairs, file {row['file']}", highlight=False)
    missing = missing_eval_files(report)
    if missing:
        console.print(f"[yellow]{len(missing)} evaluation file(s) not found, so not checked; first: {missing[0]}")
    console.print(f"report: {Path(settings.out_dir) / 'report.json'}, {Path(settings.out_dir) / 'contamination.tsv'}")


add_config_command(app, "data")
