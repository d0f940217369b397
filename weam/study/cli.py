"""``weam study``: run a family-diversity study end to end, show its state, report, reproduce."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="Run, inspect and report a family-diversity study.")
console = Console()

ConfigArg = Annotated[Path, typer.Argument(help="Study config YAML (e.g. configs/demo.yaml).")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config key: --set token_budget=200000 (repeatable; value is YAML)."),
]


def _load(config: Path, overrides: list[str] | None):
    from weam.study.run import load_study

    study, steps = load_study(config, _with_env_tracking(overrides or []))
    return study, steps


def _with_env_tracking(overrides: list[str]) -> list[str]:
    """MLFLOW_TRACKING_URI points the study at a server unless the config or --set names one."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri and not any(item.startswith("tracking.uri=") for item in overrides):
        return [*overrides, f"tracking.uri={uri}"]
    return overrides


@app.command("run")
def run_command(
    config: ConfigArg,
    overrides: SetOpt = None,
    only: Annotated[
        Optional[str], typer.Option(help="Run only these step kinds, comma-separated: data,tokenizer,base_init,base,align,pretrain,tatoeba,eval,report.")
    ] = None,
) -> None:
    """Run every stage of the study locally, skipping finished work, then print the held-out scores."""
    from weam.study.run import StudyRunner

    from weam.lock import lock_work_dir

    study, steps = _load(config, overrides)
    console.print(f"study [bold]{study.name}[/]: {len(steps)} steps, work dir {study.work_dir}")
    with lock_work_dir(study.work_dir):  # one study run per work directory (tracking store included)
        runner = StudyRunner(study, steps, study_file=config, echo=console.print)
        runner.run(set(only.split(",")) if only else None)
    print_summary(study)
    console.print(f"MLflow: mlflow ui --backend-store-uri {runner.uri}")


@app.command("status")
def status_command(config: ConfigArg, overrides: SetOpt = None) -> None:
    """Show which steps of the study are done, running or missing."""
    from weam.study.run import step_status

    _, steps = _load(config, overrides)
    table = Table("step", "status", "output")
    colours = {"done": "green", "running": "yellow", "missing": "red"}
    counts: dict[str, int] = {}
    for step in steps:
        status = step_status(step)
        counts[status] = counts.get(status, 0) + 1
        table.add_row(step.key, f"[{colours[status]}]{status}[/]", str(step.out_dir))
    console.print(table)
    console.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


@app.command("plan")
def plan_command(config: ConfigArg, overrides: SetOpt = None) -> None:
    """Validate the study; show its language sets, power and cost, then its steps with resolved stage configs."""
    from weam.config import dump_config
    from weam.study.power import print_design

    study, steps = _load(config, overrides)
    print_design(study, steps, console)
    for step in steps:
        console.rule(step.key)
        if step.config is not None:
            console.print(dump_config(step.config), end="")


@app.command("power")
def power_command(
    config: ConfigArg,
    overrides: SetOpt = None,
    pilot: Annotated[
        Optional[Path], typer.Option(help="variance_components.json (or its report folder) of a finished pilot "
                                          "study; default: power.pilot in the config, else its stated sd_* assumptions.")
    ] = None,
) -> None:
    """Minimum detectable effect of the planned sets, seeds and targets, and the runs a target effect needs."""
    from weam.study.power import power_statement

    study, _ = _load(config, overrides)
    for line in power_statement(study, pilot):
        console.print(line)


@app.command("report")
def report_command(config: ConfigArg, overrides: SetOpt = None) -> None:
    """Write the Markdown report with plots and confidence intervals (reads the runs from MLflow)."""
    from weam import layout
    from weam.study.report import write_report
    from weam.errors import WeamError
    from weam.tracking import probe, resolve_tracking_uri

    study, _ = _load(config, overrides)
    work = study.work_dir.resolve()
    uri = resolve_tracking_uri(study.tracking.uri, work)
    ok, reason = probe(uri)  # one bounded request, not MLflow's minutes of retries
    if not ok:
        raise WeamError(f"{reason}; the report reads the runs from it (buffered runs: `weam tracking sync`)")
    path = write_report(uri, study.name, layout.report_dir(work), config=study)
    console.print(f"report: {path}")


@app.command("reproduce")
def reproduce_command(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a pre-training or evaluation run.")],
    tracking_uri: Annotated[
        Optional[str], typer.Option(help="MLflow store holding the run (default: MLFLOW_TRACKING_URI).")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output directory (default: beside the original).")] = None,
) -> None:
    """Re-run one logged stage run from the resolved config it logged."""
    from weam.study.reproduce import reproduce

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise typer.BadParameter("give --tracking-uri or set MLFLOW_TRACKING_URI")
    result = reproduce(run_id, uri, out)
    console.print(f"reproduced {run_id}: {result}")


def print_summary(study) -> None:
    """Per condition: held-out retrieval accuracy per language, mean ± std over seeds."""
    from weam.languages import get_language

    work = study.work_dir.resolve()
    conditions = ["base"] + [c.name for c in study.conditions]
    table = Table(title="Zero-shot sentence retrieval (Tatoeba accuracy, %) on held-out languages")
    table.add_column("condition")
    for code in study.held_out:
        marker = "*" if get_language(code).low_resource else ""
        table.add_column(f"{code}{marker}", justify="right")
    table.add_column("avg", justify="right")
    for condition in conditions:
        files = sorted((work / "eval" / condition).glob("**/seed*/tatoeba/results.json"))
        if not files:
            continue
        per_lang: dict[str, list[float]] = {}
        for file in files:
            results = json.loads(file.read_text(encoding="utf-8"))
            results = results.get("tatoeba", results)
            for code, metrics in results.get("per_language", {}).items():
                per_lang.setdefault(code, []).append(_first_metric(metrics))
        cells = [_mean_std(per_lang.get(code, [])) for code in study.held_out]
        averages = [statistics.mean(v) for v in zip(*(per_lang[c] for c in study.held_out if c in per_lang))]
        table.add_row(f"{condition} ({len(files)} runs)", *cells, _mean_std(averages))
    console.print(table)
    console.print("* low-resource (Joshi et al. 2020 class ≤ 2)")


def _first_metric(metrics) -> float:
    if isinstance(metrics, dict):
        return float(metrics.get("accuracy", next(iter(metrics.values()))))
    return float(metrics)


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"
