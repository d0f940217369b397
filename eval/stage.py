"""The evaluation stages: tatoeba (held-out retrieval sets in XTREME's layout) and eval (a model
on its XTREME-R or Tatoeba tasks, weam.eval.api)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weam.core.config import StrictModel, result_config
from weam.core.layout import WEIGHT_FILES, model_files
from weam.core.manifest import MANIFEST_NAME, write_manifest
from weam.core.tracking import (TAG_MODEL, TAG_STAGE, TAG_STAGE_CONFIG, TAG_TASK, RunLogger, primary_metric_name,
                                run_name as name_of)
from weam.stages import Stage, Step, one_gpu, work_relative


class TatoebaConfig(StrictModel):
    """Held-out retrieval sets in XTREME's Tatoeba layout, from the held-out split of the data."""

    pivot: str = "en"
    """The retrieval target language."""
    langs: list[str]
    """Held-out languages."""
    data_dir: Path
    """The data stage's folder (``<pivot>-<lang>/heldout.*``)."""
    out_dir: Path
    """``<xx>-en.<xx>`` and ``<xx>-en.en`` files (the download's layout)."""
    labels_dir: Path | None = None
    """Their gold, ``<labels_dir>/tatoeba/test-<xx>.tsv``; None: ``labels/`` beside out_dir."""


def tatoeba_identity(step: Step):
    cfg = step.config
    inputs = {}
    for code in cfg.langs:
        src, tgt = _heldout(cfg.data_dir, cfg.pivot, code)
        inputs[f"{code}/{cfg.pivot}"], inputs[f"{code}/{code}"] = src, tgt
    return inputs, {"pivot": cfg.pivot, "langs": cfg.langs}


def _heldout(data_dir: Path, pivot: str, code: str) -> tuple[Path, Path]:
    folder = Path(data_dir) / f"{pivot}-{code}"
    return folder / f"heldout.{pivot}", folder / f"heldout.{code}"


def run_tatoeba(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.eval.formats import write_tatoeba

    cfg = step.config
    inputs, config = tatoeba_identity(step)
    counts = {}
    outputs = {}
    for code in cfg.langs:
        eng = inputs[f"{code}/{cfg.pivot}"].read_text(encoding="utf-8").splitlines()
        other = inputs[f"{code}/{code}"].read_text(encoding="utf-8").splitlines()
        outputs[f"labels/{code}"] = write_tatoeba(step.out_dir, code, other, eng, labels_dir=cfg.labels_dir)
        counts[code] = len(other)
    for path in sorted(step.out_dir.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.name != MANIFEST_NAME:
            outputs[path.name] = path.name
    write_manifest(step.out_dir, "tatoeba", inputs, config, outputs, counts)


@work_relative
def eval_identity(step: Step):
    cfg = step.config
    model = str(step.extra["model"])
    inputs = model_files("model", model)
    for name, root in (("data", cfg.data_dir), ("labels", cfg.labels_dir)):
        for task in cfg.tasks if root is not None else []:
            folder = Path(root) / task
            if folder.is_dir():
                inputs.update({f"{name}/{p.relative_to(root)}": p
                               for p in sorted(folder.rglob("*"))
                               if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST_NAME})
    config = result_config(cfg)
    if not inputs.keys() & {f"model/{f}" for f in WEIGHT_FILES}:
        config["model"] = model  # a hub id: its name is its identity
    return inputs, config


def run_eval(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.eval.api import evaluate

    child_tags = {k: v for k, v in tags.items() if k not in (TAG_STAGE, TAG_STAGE_CONFIG, TAG_TASK)}
    evaluate(step.extra["model"], step.config, logger=logger, tags=child_tags)
    inputs, config = eval_identity(step)
    outputs = {task: f"{task}/results.json" for task in step.config.tasks}
    write_manifest(step.out_dir, "eval", inputs, config, outputs,
                   {"tasks": len(step.config.tasks), "model": str(step.extra["model"])})


def eval_parts(step: Step) -> list[str]:
    """One part per (task, fine-tuning seed), ``<task>/seed<k>`` (weam.eval.api.parts)."""
    from weam.eval.api import parts

    return [f"{task}/seed{seed}" for task, seed in parts(step.config)]


def run_eval_part(step: Step, part: str) -> None:
    """Compute one part's cells into the step's folder (weam.eval.api.evaluate_part)."""
    from weam.eval.api import evaluate_part

    task, seed = part.rsplit("/seed", 1)
    evaluate_part(step.extra["model"], task, int(seed), step.config)


def eval_run_name(step: Step) -> str:
    who = f"{step.condition}.{step.language_set}" if step.language_set else step.condition
    return name_of("eval", who, step.seed, task="+".join(step.config.tasks))


def eval_tags(step: Step) -> dict[str, Any]:
    return {TAG_TASK: ",".join(step.config.tasks), TAG_MODEL: str(step.extra["model"])}


def eval_costs(step: Step, counts: dict[str, Any]) -> dict[str, float]:
    """The study's primary endpoint as one metric (:func:`weam.core.tracking.primary_metric_name`):
    the task's metric averaged over the held-out targets the plan names (``extra["primary"]``);
    the per-task metrics were logged by ``evaluate`` itself."""
    import json

    metrics = {"eval/tasks": counts.get("tasks", 0)}
    primary = step.extra.get("primary")
    if not primary or primary["task"] not in step.config.tasks:
        return metrics
    results = json.loads((step.out_dir / primary["task"] / "results.json").read_text(encoding="utf-8"))
    values = [cell[primary["metric"]] for lang in primary["langs"]
              if (cell := results["per_language"].get(lang)) and primary["metric"] in cell]
    if values:
        metrics[primary_metric_name(primary["task"], primary["metric"])] = sum(values) / len(values)
    return metrics


TATOEBA = Stage("tatoeba", "weam.eval.stage.TatoebaConfig", run_tatoeba, tatoeba_identity,
                "data/tatoeba/", "data: held-out splits")
EVAL = Stage("eval", "weam.eval.config.EvalConfig", run_eval, eval_identity,
             "eval/<condition>/<set>/seed<k>/ (base: eval/base/seed<k>/)", "a model's weights, tatoeba or XTREME-R data",
             fresh=True, run_name=eval_run_name, tags=eval_tags, costs=eval_costs, resources=one_gpu,
             parts=eval_parts, run_part=run_eval_part)
