"""Re-run any logged stage run from what its stage logged (:func:`weam.stages.open_run`): the
resolved config (artifact ``config/<stage>.yaml``), the step (``config/step.json``: inputs beside
the config, such as the model an evaluation scored), the stage named by its ``weam.stage`` tag and
the config class named by its ``weam.stage_config`` tag. Works for every row of the stage table."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from weam.core.config import load_config
from weam.core.errors import WeamError
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
