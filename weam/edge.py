"""The command-line edge, shared by every ``weam <stage>`` command.

One shape for every stage: ``weam <stage> run --config FILE [--set key=value]…`` and
``weam <stage> config`` (every key with its default and description, from the stage table's
config class). Environment variables are read here and nowhere else (:class:`Environment`):
MLFLOW_TRACKING_URI, FAST_ALIGN_BIN / ATOOLS_BIN, RAY_ADDRESS, the rendezvous variables of
torchrun / the deepspeed launcher / a Kubernetes pod, and WEAM_PARENT_RUN_ID (a cluster job
nesting its run under a study's condition run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

RENDEZVOUS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="The stage's config YAML (see configs/).")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config key: --set key=value (repeatable; value is YAML, dotted keys nest)."),
]


def with_options(overrides: list[str] | None, **options: Any) -> list[str]:
    """The command's ``--set`` items, then one ``key=value`` item for each alias option given (a
    command's ``--out``, ``--langs`` …). An option left out (None or an empty list) adds nothing; a
    list is written as JSON, so YAML never reads a code such as "no" or "on" as a boolean."""
    items = list(overrides or [])
    for key, value in options.items():
        if value is not None and value != []:
            items.append(f"{key}={json.dumps(value) if isinstance(value, list) else value}")
    return items


def comma_list(text: str | None) -> list[str] | None:
    """``de,fi, sw`` as ``["de", "fi", "sw"]``; None when not given."""
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


@dataclass(frozen=True)
class Environment:
    """What the process environment says, read once."""

    tracking_uri: str | None = None
    fast_align_bin: str | None = None
    atools_bin: str | None = None
    ray_address: str | None = None
    parent_run_id: str | None = None
    rendezvous: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Environment:
        environ = os.environ if environ is None else environ
        return cls(
            tracking_uri=environ.get("MLFLOW_TRACKING_URI") or None,
            fast_align_bin=environ.get("FAST_ALIGN_BIN") or None,
            atools_bin=environ.get("ATOOLS_BIN") or None,
            # Inside `ray job submit` RAY_ADDRESS is set: join the cluster that runs the job.
            ray_address="auto" if environ.get("RAY_ADDRESS") else None,
            parent_run_id=environ.get("WEAM_PARENT_RUN_ID") or None,
            rendezvous={k: environ[k] for k in RENDEZVOUS if k in environ},
        )

    def with_tracking(self, overrides: list[str] | None, key: str = "tracking.uri") -> list[str]:
        """MLFLOW_TRACKING_URI fills ``tracking.uri`` unless the command line names one."""
        named = any(item.startswith(f"{key}=") for item in overrides or [])
        return with_options(overrides, **{key: None if named else self.tracking_uri})

    def distributed(self):
        from weam.training.config import DistributedEnv
        from weam.core.errors import ConfigError

        try:
            return DistributedEnv.from_environ(self.rendezvous)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def environment() -> Environment:
    return Environment.read()


def with_tool_binaries(fast_align, env: Environment | None = None):
    """The one place fast_align's binaries are chosen, for every command (``weam align run``,
    ``weam study run|status|…``): the config's path, else FAST_ALIGN_BIN / ATOOLS_BIN, else PATH
    (atools also beside fast_align; :func:`weam.alignment.engines.find_fast_align`)."""
    env = env or environment()
    chosen = {name: value for name, value in (("binary", env.fast_align_bin), ("atools", env.atools_bin))
              if value and getattr(fast_align, name) is None}
    return fast_align.model_copy(update=chosen) if chosen else fast_align


def with_study_tools(steps: list, env: Environment | None = None) -> list:
    """A study plan whose aligning steps (a config with a ``fast_align`` section) resolve their
    binaries as ``weam align run`` does."""
    env = env or environment()
    for step in steps:
        if getattr(step.config, "fast_align", None) is not None:
            step.config = step.config.model_copy(update={"fast_align": with_tool_binaries(step.config.fast_align, env)})
    return steps


def load_stage_config(stage: str, config: Path | None, overrides: list[str] | None, env: Environment | None = None):
    """The stage's config from file + ``--set`` (+ the tracking URI of the environment)."""
    from weam.core.config import load_config
    from weam.stages import STAGES

    cls = STAGES[stage].config_class()
    env = env or environment()
    path = tracking_path(cls)
    extra = env.with_tracking(overrides, f"{path}.uri") if path else list(overrides or [])
    return load_config(cls, config, extra)


def tracking_path(model_cls) -> str | None:
    """Dotted key of the stage config's TrackingConfig (``tracking``, ``logging.tracking``), if any."""
    from pydantic import BaseModel

    from weam.core.tracking import TrackingConfig

    for name, info in model_cls.model_fields.items():
        inner = info.annotation
        if inner is TrackingConfig:
            return name
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            found = tracking_path(inner)
            if found:
                return f"{name}.{found}"
    return None


def tracking_of(config) -> Any | None:
    path = tracking_path(type(config))
    for part in (path.split(".") if path else []):
        config = getattr(config, part)
    return config if path else None


def run_stage(stage: str, config: Any, *, out_dir: Path | None = None, extra: dict[str, Any] | None = None,
              env: Environment | None = None, is_main: bool = True, key: str | None = None):
    """Run one stage from the command line through the stage table: same skip rule, manifest and
    MLflow run as in a study. Returns the step (its ``out_dir`` holds the result)."""
    from weam.core.tracking import default_buffer_dir
    from weam.stages import Step, Tracking, execute

    env = env or environment()
    out = Path(out_dir if out_dir is not None else config.out_dir)
    step = Step(key or stage, stage, out, config, extra=dict(extra or {}))
    tracking_cfg = tracking_of(config)
    # One buffer for the stage's run and the runs nested in it (eval's per-task runs, training's):
    # beside the output folder, where `weam tracking status|sync --buffer <out>` finds it.
    buffer = default_buffer_dir(out.absolute().parent)
    if tracking_cfg is not None:
        if tracking_cfg.buffer_dir is None:
            tracking_cfg.buffer_dir = buffer
        tracking = Tracking(tracking_cfg.uri or env.tracking_uri, tracking_cfg.experiment, tracking_cfg.enabled,
                            env.parent_run_id, buffer_dir=tracking_cfg.buffer_dir)
    else:
        # A stage without tracking settings (data, align, …) logs where a store is named or already
        # exists (a study's work dir), and creates none of its own.
        uri = env.tracking_uri or _existing_store(out)
        tracking = Tracking(uri, "weam", uri is not None, env.parent_run_id, buffer_dir=buffer)
    skipped = execute(step, tracking, is_main=is_main)
    if skipped and is_main:
        typer.echo(f"{step.key}: up to date in {out}, skipping", err=True)
    return step


def print_fields(model_cls) -> None:
    from weam.core.config import describe_fields

    for key, default, text in describe_fields(model_cls):
        typer.echo(f"{key} = {default}\n    {' '.join(text.split())}")


def _existing_store(out_dir: Path) -> str | None:
    from weam.core.tracking import nearest_store, store_uri

    folder = nearest_store(out_dir)
    return store_uri(folder) if folder else None


def add_config_command(app: typer.Typer, stage: str) -> None:
    """``weam <stage> config``: every key of the stage's config class, default and description."""

    def config_command() -> None:
        from weam.stages import STAGES

        print_fields(STAGES[stage].config_class())

    config_command.__doc__ = f"List every key of the {stage} stage's config with its default and description."
    app.command("config")(config_command)


def stage_app(stage: str, help: str) -> typer.Typer:
    """``weam <stage> run/config`` for a stage whose config says everything (tokenizer, budget, …)."""
    app = typer.Typer(no_args_is_help=True, help=help)

    def run_command(config: ConfigOpt = None, overrides: SetOpt = None) -> None:
        cfg = load_stage_config(stage, config, overrides)
        step = run_stage(stage, cfg)
        typer.echo(f"{stage}: {step.out_dir}")

    run_command.__doc__ = f"Run the {stage} stage (skips when its manifest matches inputs and config)."
    app.command("run")(run_command)
    add_config_command(app, stage)
    return app
