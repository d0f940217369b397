"""Re-run a logged stage run from what it logged: its resolved config (artifact ``config/``),
the config class named by its ``weam.stage_config`` tag, and the same seed and inputs."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from weam.config import load_config
from weam.errors import WeamError

RUNNERS = {
    "training.config.PretrainConfig": ("training.api", "pretrain"),
    "eval.config.EvalConfig": ("eval.api", "evaluate"),
}


def reproduce(run_id: str, tracking_uri: str, out_dir: Path | None = None) -> Path:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    class_path = run.data.tags.get("weam.stage_config")
    if class_path not in RUNNERS:
        raise WeamError(f"run {run_id} has no reproducible stage config (tag weam.stage_config={class_path!r})")
    module_name, class_name = class_path.rsplit(".", 1)
    config_cls = getattr(importlib.import_module(module_name), class_name)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(client.download_artifacts(run_id, "config", tmp))
        files = sorted(local.glob("*.yaml")) if local.is_dir() else [local]
        if not files:
            raise WeamError(f"run {run_id} logged no config YAML under artifacts/config")
        config = load_config(config_cls, files[0])
    target = out_dir or Path(config.out_dir).with_name(Path(config.out_dir).name + f"-reproduce-{run_id[:8]}")
    config = config.model_copy(update={"out_dir": Path(target)})
    module_name, function_name = RUNNERS[class_path]
    runner = getattr(importlib.import_module(module_name), function_name)
    tags = {k: v for k, v in run.data.tags.items() if k.startswith("weam.") and k != "weam.stage_config"}
    tags["weam.reproduces"] = run_id
    if class_path.endswith("EvalConfig"):
        runner(tags.get("weam.model"), config, tags=tags)
    else:
        runner(config, tags=tags)
    return Path(target)
