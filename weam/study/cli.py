"""``weam study``: run a family-diversity study end to end, show its state, report, reproduce."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from weam.core.secrets import redact

app = typer.Typer(no_args_is_help=True, help="Run, inspect and report a family-diversity study.")
console = Console()

ConfigArg = Annotated[Optional[Path], typer.Argument(help="Study config YAML (e.g. configs/demo.yaml).")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config key: --set token_budget=200000 (repeatable; value is YAML)."),
]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="Study config YAML (same as the argument).")]


def _config_file(config: Path | None, option: Path | None) -> Path:
    chosen = option or config
    if chosen is None:
        raise typer.BadParameter("give the study config: weam study run FILE (or --config FILE)")
    return chosen


def _load(config: Path, overrides: list[str] | None, check_inputs: bool = False):
    from weam.edge import environment, with_study_tools
    from weam.study.plan import check_inputs as check, load_study

    env = environment()
    # MLFLOW_TRACKING_URI points the study at a server unless the config or --set names one;
    # FAST_ALIGN_BIN / ATOOLS_BIN name fast_align's binaries unless the config does (as for `weam align run`).
    study, steps = load_study(config, env.with_tracking(overrides))
    if check_inputs:  # corpora and gold labels, before any costly step (plan and run)
        check(study, steps, str(config))
    return study, with_study_tools(steps, env)


@app.command("run")
def run_command(
    config: ConfigArg = None,
    overrides: SetOpt = None,
    config_file: ConfigOpt = None,
    only: Annotated[
        Optional[str], typer.Option(help="Run only these step kinds, comma-separated: data,tokenizer,base_init,base,align,pretrain,tatoeba,eval,report.")
    ] = None,
    ray_address: Annotated[
        Optional[str], typer.Option(
            "--ray-address", help="Run the steps as tasks on this Ray cluster (HOST:6379, ray://HOST:10001, or auto: "
                                  "the cluster of `ray job submit`): each asks for its stage's CPUs or GPU and starts "
                                  "once the steps it reads from are done; a lost worker's step is retried from its "
                                  "checkpoint. Every node must see the work directory at the same path.")
    ] = None,
) -> None:
    """Run every stage of the study, skipping finished work, then print the held-out scores: one step
    after another here, or with --ray-address as a DAG of tasks on a Ray cluster."""
    from weam.study.reproduce import write_resolved_study
    from weam.study.run import StudyRunner

    from weam.core.lock import lock_work_dir

    config = _config_file(config, config_file)
    study, steps = _load(config, overrides, check_inputs=True)
    console.print(f"study [bold]{study.name}[/]: {len(steps)} steps, work dir {study.work_dir}")
    kinds = {name.strip() for name in only.split(",") if name.strip()} if only else None
    with lock_work_dir(study.work_dir):  # one study run per work directory (tracking store included)
        write_resolved_study(study, study.work_dir)  # what `reproduce --check` re-runs
        if ray_address:
            from weam.alignment.ray_runtime import RayLocalConfig, ray_session
            from weam.study.ray_run import RayStudyRunner

            with ray_session(ray_address, RayLocalConfig()):
                # a step a line, whatever the console's width (the driver's log is read in `kubectl logs`)
                runner = RayStudyRunner(study, steps, study_file=config,
                                        echo=lambda line: console.print(line, soft_wrap=True))
                runner.run(kinds)
        else:
            runner = StudyRunner(study, steps, study_file=config, echo=console.print)
            runner.run(kinds)
    print_summary(study)
    console.print(f"MLflow: mlflow ui --backend-store-uri {redact(runner.uri)}")


@app.command("status")
def status_command(
    config: ConfigArg = None,
    overrides: SetOpt = None,
    config_file: ConfigOpt = None,
    rehash: Annotated[bool, typer.Option(
        "--rehash", help="Hash every input and output whole. Without it a file whose inode, size and mtime match "
                         "its manifest is checked by a sampled hash only (64 blocks of 64 KiB; files up to 4 MiB "
                         "whole), which misses an in-place edit between the sampled blocks of a bigger file.")] = False,
) -> None:
    """Show which steps are done, stale (and why: the config key or input that changed), running or missing;
    while `weam study run --ray-address` runs, also which are queued and each running step's Ray task.

    A file counts as unchanged when its inode, size and mtime match what the manifest recorded and
    a sampled hash of it matches too; --rehash reads every file whole instead."""
    from weam.core.manifest import rehash_all
    from weam.stages import plan_status

    from weam.study.ray_run import cluster_states

    study, steps = _load(_config_file(config, config_file), overrides)
    table = Table("step", "status", "reason", "output")
    colours = {"done": "green", "running": "yellow", "queued": "cyan", "missing": "red", "stale": "magenta"}
    counts: dict[str, int] = {}
    with rehash_all(rehash):
        states = plan_status(steps)
    states.update(cluster_states(study.work_dir.resolve()))  # a Ray driver's running and queued steps
    for step in steps:
        verdict = states[step.key]
        counts[verdict.state] = counts.get(verdict.state, 0) + 1
        table.add_row(step.key, f"[{colours[verdict.state]}]{verdict.state}[/]", verdict.reason, str(step.out_dir))
    # Reasons are long: piped output (logs, CI) gets a wide table rather than wrapped cells.
    (console if console.is_terminal else Console(width=240)).print(table)
    console.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


@app.command("plan")
def plan_command(config: ConfigArg = None, overrides: SetOpt = None, config_file: ConfigOpt = None) -> None:
    """Validate the study; show its language sets, power and cost, then its steps with resolved stage configs."""
    from weam.core.config import dump_config
    from weam.study.power import print_design

    study, steps = _load(_config_file(config, config_file), overrides, check_inputs=True)
    print_design(study, steps, console)
    for step in steps:
        console.rule(step.key)
        if step.config is not None:
            console.print(dump_config(step.config), end="")


@app.command("power")
def power_command(
    config: ConfigArg = None,
    overrides: SetOpt = None,
    config_file: ConfigOpt = None,
    pilot: Annotated[
        Optional[Path], typer.Option(help="variance_components.json (or its report folder) of a finished pilot "
                                          "study; default: power.pilot in the config, else its stated sd_* assumptions.")
    ] = None,
) -> None:
    """Minimum detectable effect of the planned sets, seeds and targets, and the runs a target effect needs."""
    from weam.study.power import power_statement

    study, _ = _load(_config_file(config, config_file), overrides)
    for line in power_statement(study, pilot):
        console.print(line, soft_wrap=True)  # a statement a line, whatever the console's width (logs, pipes)


@app.command("report")
def report_command(config: ConfigArg = None, overrides: SetOpt = None, config_file: ConfigOpt = None) -> None:
    """Write the Markdown report with plots and confidence intervals (scores from the stage files),
    again even when it is done: the study's report step, so its manifest and MLflow run follow."""
    from weam.core.errors import WeamError
    from weam.core.lock import lock_work_dir
    from weam.stages import execute
    from weam.study.run import StudyRunner
    from weam.study.stage import ReportConfig

    config = _config_file(config, config_file)
    study, steps = _load(config, overrides)
    report = next((step for step in steps if isinstance(step.config, ReportConfig)), None)
    if report is None:
        raise WeamError(f"{config}: the study's plan has no report step")
    with lock_work_dir(study.work_dir):  # not while a study run writes the same folders
        runner = StudyRunner(study, steps, study_file=config, echo=console.print)
        execute(report, runner.tracking(report), force=True)
    console.print(f"report: {report.out_dir / 'report.md'}")


@app.command("config")
def config_command(config: ConfigArg = None, overrides: SetOpt = None) -> None:
    """List every study config key with its default and description, the stage blocks' nested keys
    included (``pretrain.optim.lr``); with a study config, each key the study sets shows its value."""
    from weam.core.config import describe_fields, load_config
    from weam.core.tracking import flatten
    from weam.stages import STAGES
    from weam.study.config import STAGE_BLOCKS, StudyConfig

    study = load_config(StudyConfig, config, overrides or []) if config else None
    values = flatten(study.model_dump(mode="json")) if study else {}
    rows = [row for row in describe_fields(StudyConfig) if row[0] not in STAGE_BLOCKS]
    for block, stage in STAGE_BLOCKS.items():
        rows += describe_fields(STAGES[stage].config_class(), prefix=f"{block}.")
    for key, default, text in rows:
        shown = default.removeprefix("PosixPath(").removesuffix(")") if default.startswith("PosixPath(") else default
        here = f"   (this study: {values[key]!r})" if key in values and repr(values[key]) != shown else ""
        typer.echo(f"{key} = {default}{here}\n    {' '.join(text.split())}")


@app.command("reproduce")
def reproduce_command(
    run_id: Annotated[
        Optional[str], typer.Argument(help="MLflow run id of a pre-training or evaluation run (not with --check).")
    ] = None,
    tracking_uri: Annotated[
        Optional[str], typer.Option(help="MLflow store holding the run (default: MLFLOW_TRACKING_URI).")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output directory (default: beside the original).")] = None,
    check: Annotated[
        Optional[Path], typer.Option(help="A finished study's work directory: re-run its steps into a scratch "
                                          "folder and compare the result files byte for byte.")
    ] = None,
    only: Annotated[
        Optional[str], typer.Option(help="With --check: re-run only these step kinds, comma-separated "
                                         "(rows of `weam stages`: data,tokenizer,align,pretrain,eval,report, …).")
    ] = None,
    scratch: Annotated[
        Optional[Path], typer.Option(help="With --check: where the steps run again (new or empty; default: a "
                                          "new folder beside the work directory, removed unless --keep).")
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="With --check: keep the scratch folder.")] = False,
    config_file: Annotated[
        Optional[Path], typer.Option("--config", "-c", help="With --check: the study config (default: the "
                                                            "work directory's study.resolved.yaml).")
    ] = None,
) -> None:
    """Re-run one logged stage run from the resolved config it logged; or, with --check WORK_DIR,
    re-run a study's steps and say which result files match byte for byte (exit 1 on a difference)."""
    if check is not None:
        if run_id is not None:
            raise typer.BadParameter("give a run id or --check WORK_DIR, not both")
        _check_command(check, only, scratch, keep, config_file)
        return
    if run_id is None:
        raise typer.BadParameter("give the MLflow run id to reproduce (or --check WORK_DIR)")
    from weam.study.reproduce import reproduce

    from weam.edge import environment

    uri = tracking_uri or environment().tracking_uri
    if not uri:
        raise typer.BadParameter("give --tracking-uri or set MLFLOW_TRACKING_URI")
    result = reproduce(run_id, uri, out)
    console.print(f"reproduced {run_id}: {result}")


def _check_command(work_dir: Path, only: str | None, scratch: Path | None, keep: bool, config: Path | None) -> None:
    import shutil
    import tempfile

    from weam.core.errors import WeamError
    from weam.study.reproduce import check_reproducible

    if not work_dir.is_dir():
        raise WeamError(f"{work_dir}: --check needs a study's work directory, and this is not a folder")
    chosen = scratch or Path(tempfile.mkdtemp(prefix=f"{work_dir.resolve().name}-check-", dir=work_dir.resolve().parent))
    try:
        kinds = [name.strip() for name in only.split(",") if name.strip()] if only else None
        rows = check_reproducible(work_dir, kinds, chosen, config, echo=console.print)
    finally:
        if not keep and scratch is None:
            shutil.rmtree(chosen, ignore_errors=True)
    table = Table("step", "file", "result", "detail")
    colours = {"same": "green", "differs": "red"}
    for row in rows:
        table.add_row(row.step, row.path, f"[{colours.get(row.state, 'yellow')}]{row.state}[/]", row.detail)
    (console if console.is_terminal else Console(width=200)).print(table)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    console.print(f"{len(rows)} result files: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    if keep or scratch is not None:
        console.print(f"re-run kept in {chosen}")
    if any(row.state != "same" for row in rows):
        raise typer.Exit(1)


def print_summary(study) -> None:
    """Per condition: held-out retrieval accuracy per language, mean ± std over seeds (the same
    reader as the report: weam.study.results.read_results)."""
    from weam.core.languages import get_language
    from weam.study.config import BASE_CONDITION
    from weam.study.results import read_results

    frame = read_results(study.work_dir.resolve(), "tatoeba")
    frame = frame[frame["metric"] == "accuracy"]
    conditions = [BASE_CONDITION] + [c.name for c in study.conditions]
    table = Table(title="Zero-shot sentence retrieval (Tatoeba accuracy, %) on held-out languages")
    table.add_column("condition")
    for code in study.held_out:
        marker = "*" if get_language(code).low_resource else ""
        table.add_column(f"{code}{marker}", justify="right")
    table.add_column("avg", justify="right")
    for condition in conditions:
        part = frame[frame["condition"] == condition]
        if part.empty:
            continue
        cells = [_mean_std(part.loc[part["language"] == code, "score"].tolist()) for code in study.held_out]
        per_seed = part[part["language"].isin(study.held_out)].groupby(["language_set", "seed"])["score"].mean()
        table.add_row(f"{condition} ({part[['language_set', 'seed']].drop_duplicates().shape[0]} runs)", *cells, _mean_std(per_seed.tolist()))
    console.print(table)
    console.print("* low-resource (Joshi et al. 2020 class ≤ 2)")


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"
