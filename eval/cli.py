"""``weam eval``: XTREME-R zero-shot evaluation of any HF encoder.

    weam eval --list
    weam eval run --config configs/eval/xtreme_r.yaml --model DIR --set seeds=[1,2,3]
    weam eval --model DIR_OR_HUB_ID --tasks xnli,panx --langs sw,yo --data-dir download/   (= eval run)
    weam eval score --predictions DIR --labels DIR
    weam eval config
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from weam.edge import ConfigOpt, SetOpt, add_config_command, comma_list, load_stage_config, run_stage, with_options


class _RunByDefault(TyperGroup):
    """``weam eval --model M …`` is ``weam eval run --model M …`` (the short form kept as an alias)."""

    def parse_args(self, ctx, args):
        if args and args[0].startswith("-") and args[0] not in ("--list", "--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_RunByDefault, invoke_without_command=True, no_args_is_help=False,
                  help="XTREME-R zero-shot evaluation of any HF encoder.")

_TASKS = typer.Option(None, "--tasks", help="Alias of --set tasks=[…]: comma-separated task ids.")


@app.callback()
def main(
    ctx: typer.Context,
    list_tasks: Annotated[bool, typer.Option("--list", help="Print the task × language table and exit.")] = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    if list_tasks:
        print_task_table()
        return
    typer.echo(ctx.get_help())


@app.command("run")
def run_command(
    model: Annotated[str, typer.Option("--model", help="HF model directory or hub id.")],
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    tasks: Optional[str] = _TASKS,
    langs: Annotated[Optional[str], typer.Option(help="Alias of --set langs=[…]: comma-separated languages.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Alias of --set data_dir=: XTREME's download layout.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(help="Alias of --set out_dir=: where results go.")] = None,
) -> None:
    """Fine-tune on English (English-dev selection where XTREME's script does it), predict every target
    language; score the split that carries gold labels (split=labelled), write the rest for `weam eval score`."""
    overrides = with_options(overrides, tasks=comma_list(tasks), langs=comma_list(langs), data_dir=data_dir,
                             out_dir=out_dir)
    config = load_stage_config("eval", config, overrides)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the per-load weight reports drown the results table
    step = run_stage("eval", config, extra={"model": model}, key=f"eval/{Path(model).name}")
    results = {task: json.loads((step.out_dir / task / "results.json").read_text(encoding="utf-8"))
               for task in config.tasks}
    _print_results(results)


@app.command("score")
def score_command(
    predictions: Path = typer.Option(..., "--predictions", help="Folder <task>/test-<lang>.<ext>."),
    labels: Path = typer.Option(..., "--labels", help="Labels in the same layout."),
    tasks: Optional[str] = _TASKS,
    output: Optional[Path] = typer.Option(None, "--output", help="Also write the scores as JSON here."),
) -> None:
    """Score a leaderboard-layout prediction folder per task, language, family and group."""
    from weam.eval.score import score_folder
    from weam.core.manifest import atomic_write_json

    result = score_folder(predictions, labels, comma_list(tasks))
    if output:
        atomic_write_json(output, result)
    _print_scores(result)


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
    from weam.eval.tasks import get_task

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

    from weam.eval.tasks import all_tasks
    from weam.core.languages import get_language, xtreme_r_languages

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
        console.print(f"not marked xtreme_r in weam/core/languages.tsv: {', '.join(missing)}")


add_config_command(app, "eval")
