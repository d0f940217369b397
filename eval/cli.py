"""``weam eval``: XTREME-R zero-shot evaluation of any HF encoder.

    weam eval --list
    weam eval --model DIR_OR_HUB_ID --tasks xnli,panx --langs sw,yo --data-dir download/
    weam eval run --config configs/eval/xtreme_r.yaml --model DIR --set seeds=[1,2,3]
    weam eval score --predictions DIR --labels DIR
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                  help="XTREME-R zero-shot evaluation of any HF encoder.")

_LIST = typer.Option(False, "--list", help="Print the task × language table and exit.")
_MODEL = typer.Option(None, "--model", help="HF model directory or hub id.")
_TASKS = typer.Option(None, "--tasks", help="Comma-separated task ids (default: the config's).")
_LANGS = typer.Option(None, "--langs", help="Comma-separated languages (default: each task's XTREME-R list).")
_DATA = typer.Option(None, "--data-dir", help="Root of XTREME's download layout.")
_OUT = typer.Option(None, "--out-dir", help="Where results go (default: the config's out_dir).")
_CONFIG = typer.Option(None, "--config", help="EvalConfig YAML (configs/eval/*.yaml).")
_SET = typer.Option([], "--set", help="Config override KEY=VALUE (repeatable), e.g. seeds=[1,2].")


@app.callback()
def main(
    ctx: typer.Context,
    list_tasks: bool = _LIST,
    model: Optional[str] = _MODEL,
    tasks: Optional[str] = _TASKS,
    langs: Optional[str] = _LANGS,
    data_dir: Optional[Path] = _DATA,
    out_dir: Optional[Path] = _OUT,
    config: Optional[Path] = _CONFIG,
    set_: list[str] = _SET,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    if list_tasks:
        print_task_table()
        return
    if model is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    _run(model, tasks, langs, data_dir, out_dir, config, set_)


@app.command("run")
def run_command(
    model: str = typer.Option(..., "--model", help="HF model directory or hub id."),
    tasks: Optional[str] = _TASKS,
    langs: Optional[str] = _LANGS,
    data_dir: Optional[Path] = _DATA,
    out_dir: Optional[Path] = _OUT,
    config: Optional[Path] = _CONFIG,
    set_: list[str] = _SET,
) -> None:
    """Fine-tune on English (English-dev selection where XTREME's script does it), predict every target
    language; score the split that carries gold labels (split=labelled), write the rest for `weam eval score`."""
    _run(model, tasks, langs, data_dir, out_dir, config, set_)


@app.command("score")
def score_command(
    predictions: Path = typer.Option(..., "--predictions", help="Folder <task>/test-<lang>.<ext>."),
    labels: Path = typer.Option(..., "--labels", help="Labels in the same layout."),
    tasks: Optional[str] = _TASKS,
    output: Optional[Path] = typer.Option(None, "--output", help="Also write the scores as JSON here."),
) -> None:
    """Score a leaderboard-layout prediction folder per task, language, family and group."""
    from eval.score import score_folder
    from weam.manifest import atomic_write_json

    result = score_folder(predictions, labels, _split(tasks))
    if output:
        atomic_write_json(output, result)
    _print_scores(result)


def _split(text: str | None) -> list[str] | None:
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def _run(model, tasks, langs, data_dir, out_dir, config_path, overrides) -> None:
    from eval.api import evaluate
    from eval.config import EvalConfig
    from weam.config import load_config

    overrides = list(overrides)
    if tasks:
        overrides.append(f"tasks={json.dumps(_split(tasks))}")
    if langs:
        overrides.append(f"langs={json.dumps(_split(langs))}")
    if data_dir:
        overrides.append(f"data_dir={data_dir}")
    if out_dir:
        overrides.append(f"out_dir={out_dir}")
    config = load_config(EvalConfig, config_path, overrides)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the per-load weight reports drown the results table
    if config.tracking.uri is None and os.environ.get("MLFLOW_TRACKING_URI"):
        config.tracking.uri = os.environ["MLFLOW_TRACKING_URI"]
    results = evaluate(model, config, parent_run_id=os.environ.get("WEAM_PARENT_RUN_ID"))
    _print_results(results)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _print_results(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="XTREME-R zero-shot results (mean over seeds)")
    for column in ("task", "split", "score", "avg", "low-resource", "families", "languages"):
        table.add_column(column)
    for task, result in results.items():
        families = ", ".join(f"{k} {_fmt(v)}" for k, v in result["families"].items())
        langs = ", ".join(f"{lang} {_fmt(result_score(result, lang))}" for lang in result["per_language"])
        table.add_row(task, result.get("split", "-"), result["score"], _fmt(result["avg"]),
                      _fmt(result["low_resource"]), families, langs)
    console = Console()
    console.print(table)
    for task, result in results.items():  # cells without gold labels: never scored, always explained
        for lang, reason in result.get("unlabeled", {}).items():
            console.print(f"no score {task}/{lang} ({result.get('split')}): {reason}", soft_wrap=True)


def result_score(result: dict, lang: str) -> float:
    from eval.tasks import get_task

    return get_task(result["task"]).score_of(result["per_language"][lang])


def _print_scores(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Leaderboard-layout scores")
    for column in ("task", "avg", "metrics", "low-resource", "per language"):
        table.add_column(column)
    for task, detail in result["tasks"].items():
        table.add_row(task, _fmt(detail["avg"]), ", ".join(f"{m} {_fmt(v)}" for m, v in detail["avg_metrics"].items()),
                      _fmt(detail["low_resource"]),
                      ", ".join(f"{lang} {_fmt(next(iter(m.values())))}" for lang, m in detail["per_language"].items()))
    console = Console()
    console.print(table)
    for group, value in result["groups"].items():
        console.print(f"group {group}: {_fmt(value)}")
    if result["all_tasks"] is not None:
        console.print(f"XTREME-R score (all tasks): {_fmt(result['all_tasks'])}")


def print_task_table() -> None:
    """Languages as rows, tasks as columns (✓ where XTREME-R evaluates the pair), then per-task facts."""
    from rich.console import Console
    from rich.table import Table

    from eval.tasks import all_tasks
    from weam.languages import get_language, xtreme_r_languages

    tasks = all_tasks()
    table = Table(title=f"XTREME-R: {len(tasks)} tasks × {len(xtreme_r_languages())} languages")
    table.add_column("lang")
    table.add_column("family")
    table.add_column("low")
    for spec in tasks.values():
        table.add_column(spec.name, justify="center")
    for language in xtreme_r_languages():
        marks = ["✓" if language.code in spec.languages else "" for spec in tasks.values()]
        table.add_row(language.code, language.family, "✓" if language.low_resource else "", *marks)
    table.add_row("total", "", "", *[str(len(spec.languages)) for spec in tasks.values()])
    console = Console()
    console.print(table)
    facts = Table(title="Tasks")
    for column in ("task", "name", "group", "#langs", "metric (score)", "gold in the download",
                   "English training data", "languages"):
        facts.add_column(column)
    for spec in tasks.values():
        gold = ", ".join(f"{name} {'yes' if info.labelled else 'no'}"
                         + (f" (not {','.join(info.missing)})" if info.missing and info.labelled else "")
                         for name, info in spec.splits.items())
        facts.add_row(spec.name, spec.title, spec.group, str(len(spec.languages)),
                      f"{', '.join(spec.metrics)} ({spec.score})", gold, spec.train_data, ",".join(spec.languages))
    console.print(facts)
    missing = sorted({code for spec in tasks.values() for code in spec.languages} -
                     {get_language(code).code for code in (lang.code for lang in xtreme_r_languages())})
    if missing:
        console.print(f"not marked xtreme_r in weam/languages.tsv: {', '.join(missing)}")
