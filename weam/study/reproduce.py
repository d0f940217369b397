"""Re-run any logged stage run from what its stage logged (:func:`weam.stages.open_run`): the
resolved config (artifact ``config/<stage>.yaml``), the step (``config/step.json``: inputs beside
the config, such as the model an evaluation scored), the stage named by its ``weam.stage`` tag and
the config class named by its ``weam.stage_config`` tag. Works for every row of the stage table."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from weam.core.config import load_config
from weam.core.errors import WeamError
from weam.core.layout import resolved_study_file
from weam.stages import STAGES, Step, Tracking, execute
from weam.core.tracking import TAG_GIT_COMMIT, TAG_REPRODUCES, TAG_STAGE, TAG_STAGE_CONFIG


def reproduce(run_id: str, tracking_uri: str, out_dir: Path | None = None) -> Path:
    """Run the stage again into ``out_dir`` (default: beside the original, ``-reproduce-<id>``)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    stage = STAGES.get(run.data.tags.get(TAG_STAGE, ""))
    if stage is None or run.data.tags.get(TAG_STAGE_CONFIG) != stage.config:
        raise WeamError(f"run {run_id} was not logged by a stage of the stage table (tags {TAG_STAGE}="
                        f"{run.data.tags.get(TAG_STAGE)!r}, {TAG_STAGE_CONFIG}={run.data.tags.get(TAG_STAGE_CONFIG)!r})")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(client.download_artifacts(run_id, "config", tmp))
        except Exception as exc:  # noqa: BLE001 - MLflow raises several kinds for a missing artifact
            raise WeamError(f"run {run_id} logged no config under artifacts/config ({exc})") from None
        config_file, step_file = local / f"{stage.name}.yaml", local / "step.json"
        if not config_file.is_file() or not step_file.is_file():
            raise WeamError(f"run {run_id} lacks artifacts config/{stage.name}.yaml and config/step.json")
        config = load_config(stage.config_class(), config_file)
        described = json.loads(step_file.read_text(encoding="utf-8"))
    original = Path(described["out_dir"])
    target = Path(out_dir) if out_dir else original.with_name(f"{original.name}-reproduce-{run_id[:8]}")
    if "out_dir" in type(config).model_fields:
        config = config.model_copy(update={"out_dir": target})
    step = Step(described["key"], stage.name, target, config, described.get("condition"), described.get("seed"),
                extra=dict(described.get("extra", {})), language_set=described.get("language_set"))
    # The original's study, condition, seed and role; not its provenance (this run has its own).
    dropped = (TAG_STAGE, TAG_STAGE_CONFIG, TAG_GIT_COMMIT, "weam.input_sha256")
    tags = {k: v for k, v in run.data.tags.items()
            if k.startswith("weam.") and k not in dropped and not k.startswith("weam.version.")}
    tags[TAG_REPRODUCES] = run_id
    experiment = client.get_experiment(run.info.experiment_id).name
    execute(step, Tracking(tracking_uri, experiment, tags=tags))
    return target


# ---------------------------------------------------------------------------------------------
# reproduce --check: the study's steps again, into a scratch folder, compared byte for byte

# What is not a result, so not compared: bookkeeping that names this run (manifests hold times and
# hashes of the inputs, run.json the MLflow run id, logs their wall times), resume state that the
# exported model repeats (checkpoints), and the lock and progress files of a run in flight.
NOT_RESULTS = ("manifest.json", "run.json", "train_log.jsonl", "checkpoints", "costs.json")


@dataclass
class Comparison:
    step: str
    path: str
    """The file, relative to the study's work directory."""
    state: str
    """same | differs | only in the original | only in the re-run"""
    detail: str = ""


def resolved_study(work_dir: Path) -> Path:
    path = resolved_study_file(work_dir)
    if not path.is_file():
        raise WeamError(f"{path}: not found; `weam study run` writes it (a work directory from an older weam "
                        "lacks it: give the study config with --config)")
    return path


def check_reproducible(work_dir: Path, kinds: list[str] | None = None, scratch: Path | None = None,
                       config: Path | None = None, echo=print) -> list[Comparison]:
    """Run the study's steps of these kinds (all by default) again into ``scratch`` and compare
    their result files with ``work_dir``'s, byte for byte. Steps of other kinds that come before
    a chosen one in the plan are copied from ``work_dir`` (they are the chosen steps' inputs)."""
    from weam.study.plan import load_study
    from weam.study.run import StudyRunner

    work_dir = Path(work_dir).resolve()
    unknown = sorted(set(kinds or ()) - set(STAGES))
    if unknown:
        raise WeamError(f"--only: unknown step kind {', '.join(unknown)} (known: {', '.join(STAGES)})")
    scratch = Path(scratch).resolve()
    if scratch.exists() and any(scratch.iterdir()):
        raise WeamError(f"{scratch}: the scratch folder must be new or empty (a finished step there would be skipped)")
    source = config or resolved_study(work_dir)
    # The same study, into scratch, logging to its own store there (never to the original's server).
    study, steps = load_study(source, [f"work_dir={scratch}", "tracking.uri=null", "tracking.buffer_dir=null"])
    _, original_steps = load_study(source, [f"work_dir={work_dir}"])
    originals = {step.key: step for step in original_steps}
    chosen = [step for step in steps if kinds is None or step.stage in kinds]
    if not chosen:
        raise WeamError(f"the study has no step of kind {', '.join(kinds or [])}")
    last = max(steps.index(step) for step in chosen)
    owned = [step.out_dir for step in steps]
    for step in steps[:last]:
        if step not in chosen:
            _copy_step(originals[step.key].out_dir, step.out_dir, work_dir, scratch, owned)
    echo(f"re-running {len(chosen)} steps into {scratch}")
    StudyRunner(study, chosen, echo=echo).run()
    rows = []
    for step in chosen:
        nested = [other.out_dir for other in steps if other is not step and other.out_dir.is_relative_to(step.out_dir)]
        rows += _compare(step.key, originals[step.key].out_dir, step.out_dir, work_dir,
                         [folder.relative_to(step.out_dir) for folder in nested])
    return rows


def _copy_step(original: Path, target: Path, work_dir: Path, scratch: Path, owned: list[Path]) -> None:
    """Copy one step's folder (not the folders of other steps inside it, e.g. data/tatoeba)."""
    inner = {folder.relative_to(scratch) for folder in owned if folder != target and folder.is_relative_to(target)}

    def ignore(folder: str, names: list[str]) -> list[str]:
        here = Path(folder).relative_to(work_dir)
        return [name for name in names if here / name in inner]

    if original.is_dir():
        shutil.copytree(original, target, ignore=ignore, dirs_exist_ok=True)


def _result_files(folder: Path, skip: list[Path]) -> dict[str, Path]:
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if (not path.is_file() or any(part.startswith(".") or part in NOT_RESULTS for part in relative.parts)
                or any(relative.is_relative_to(inner) for inner in skip)):
            continue
        found[str(relative)] = path
    return found


def _compare(key: str, original: Path, again: Path, work_dir: Path, skip: list[Path]) -> list[Comparison]:
    first, second = _result_files(original, skip), _result_files(again, skip)
    prefix = original.relative_to(work_dir)
    rows = []
    for name in sorted(set(first) | set(second)):
        shown = str(prefix / name)
        if name not in second:
            rows.append(Comparison(key, shown, "only in the original"))
        elif name not in first:
            rows.append(Comparison(key, shown, "only in the re-run"))
        else:
            a, b = first[name].read_bytes(), second[name].read_bytes()
            if a == b:
                rows.append(Comparison(key, shown, "same", f"{len(a):,} bytes"))
            else:
                at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                rows.append(Comparison(key, shown, "differs", f"{len(a):,} vs {len(b):,} bytes, first at byte {at:,}"))
    if not rows:
        rows.append(Comparison(key, str(prefix), "only in the original", "no result files in either"))
    return rows


def write_resolved_study(study, work_dir: Path) -> Path:
    """The study as this run resolved it, with its work directory absolute (see resolved_study_file)."""
    from weam.core.config import dump_config
    from weam.core.manifest import atomic_write

    path = resolved_study_file(work_dir)
    with atomic_write(path) as handle:
        handle.write(dump_config(study.model_copy(update={"work_dir": Path(work_dir).resolve()})))
    return path
