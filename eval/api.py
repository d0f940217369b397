"""``evaluate(model, config)``: every (task, seed) fine-tuned once on English, every language predicted.

On disk (atomic writes; a re-run skips every finished (task, seed, language) cell)::

    <out_dir>/<task>/seed<k>/<lang>.json                       metrics of one cell (null: unlabeled split)
    <out_dir>/<task>/seed<k>/predictions/<task>/test-<lang>.*  leaderboard layout (weam eval score reads it)
    <out_dir>/<task>/seed<k>/run.json                          the MLflow run id of this (task, seed)
    <out_dir>/<task>/results.json                              mean over seeds, per language + aggregates
    <out_dir>/<task>/manifest.json

MLflow: one run per (model, task, seed) under ``parent_run_id``, tagged weam.stage=eval, weam.task,
weam.seed (the fine-tuning seed; also in weam.eval_seed), weam.model; ``tags`` are added last (a
study passes its own weam.seed, the pre-training seed, which then wins). Metrics are
``<task>/<metric>/<lang>``, ``<task>/<metric>/avg``, ``<task>/<metric>/family/<Family>`` and
``<task>/<metric>/low_resource`` (and the same for ``score``, the XTREME-R score of the task); the
fine-tuning outcome is ``<task>/train.<steps|best_dev|train_loss>`` and the wall time ``<task>/seconds``;
the predictions folder is the run's artifact ``predictions/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from eval import formats, metrics
from eval.config import EvalConfig
from eval.tasks import TaskSpec, get_task
from weam.languages import get_language
from weam.manifest import atomic_write_json, write_manifest
from weam.tracking import TAG_MODEL, TAG_SEED, TAG_STAGE, TAG_TASK, RunLogger, resolve_tracking_uri


def evaluate(
    model: str | Path, config: EvalConfig, parent_run_id: str | None = None, tags: dict | None = None
) -> dict:
    """Evaluate ``model`` (an HF directory or hub id) on ``config.tasks``; see the module docstring."""
    return {task: evaluate_task(model, get_task(task), config, parent_run_id, tags) for task in config.tasks}


def task_languages(spec: TaskSpec, langs: list[str] | None) -> list[str]:
    """The task's XTREME-R languages, or those of ``langs`` the task has. Tatoeba also takes any other
    language but English (the demo's held-out sets); outside XTREME-R's list its files carry the
    ISO 639-3 code."""
    if langs is None:
        return list(spec.languages)
    codes = [get_language(code).code for code in langs]
    if spec.kind == "sentence_retrieval":
        return [code for code in codes if code != "en"]  # English is the retrieval target
    return [code for code in codes if code in spec.languages]


def evaluate_task(model, spec: TaskSpec, config: EvalConfig, parent_run_id=None, tags=None) -> dict[str, Any]:
    langs = task_languages(spec, config.langs)
    fine_tuned = spec.finetune is not None or (spec.kind == "sentence_retrieval" and config.tatoeba_after_squad)
    seeds = config.seeds if fine_tuned else config.seeds[:1]
    per_seed = {seed: run_seed(model, spec, config, seed, langs, parent_run_id, tags) for seed in seeds}
    result = combine(spec, langs, per_seed)
    task_dir = Path(config.out_dir) / spec.name
    atomic_write_json(task_dir / "results.json", result)
    write_manifest(task_dir, "eval", {}, config.model_dump(mode="json") | {"model": str(model)},
                   {"results": "results.json"}, {"languages": len(langs), "seeds": len(seeds)})
    return result


def _file_code(spec: TaskSpec, lang: str) -> str:
    if spec.kind == "sentence_retrieval" and lang not in spec.lang_codes:
        return get_language(lang).iso639_3
    return spec.file_code(lang)


def run_seed(model, spec, config, seed, langs, parent_run_id, tags) -> dict[str, dict | None]:
    seed_dir = Path(config.out_dir) / spec.name / f"seed{seed}"
    pending = [lang for lang in langs if not (seed_dir / f"{lang}.json").is_file()]
    logger = _logger(model, spec, config, seed, seed_dir, parent_run_id, tags)
    try:
        if pending:
            _compute_cells(model, spec, config, seed, pending, seed_dir, logger)
        cells = {lang: json.loads((seed_dir / f"{lang}.json").read_text(encoding="utf-8"))["metrics"]
                 for lang in langs}
        logger.log_metrics(metric_names(spec, cells))
    except BaseException:
        logger.end("FAILED")
        raise
    logger.end()
    return cells


def _compute_cells(model, spec, config, seed, pending, seed_dir, logger) -> None:
    """Fine-tune once for this seed, then predict, score and store each pending language."""
    from eval.runners import RUNNERS

    started = time.perf_counter()
    runner = RUNNERS[spec.kind](spec, config, model, progress=lambda m: print(f"[{spec.name} seed{seed}] {m}"))
    if spec.kind == "sentence_retrieval":
        runner.spec = _with_codes(spec, pending)
    info = runner.train(seed)
    # Params are immutable in MLflow and a re-run may recompute a cell: training outcomes are metrics.
    logger.log_params({"task": spec.name, "seed": seed, "model": str(model), "split": config.split,
                       **vars(runner.settings)})
    logger.log_metrics({f"{spec.name}/train.{k}": v for k, v in info.items()})  # not <task>/<metric>/<lang>
    for lang in _progress(pending, f"{spec.name} seed{seed}"):
        predictions, scores = runner.predict(lang)
        pred_path = seed_dir / "predictions" / spec.name / f"test-{lang}.{spec.prediction_ext}"
        formats.write_predictions(pred_path, spec.kind, predictions)
        atomic_write_json(seed_dir / f"{lang}.json", {"task": spec.name, "lang": lang, "seed": seed,
                                                      "split": config.split, "metrics": scores,
                                                      "count": len(predictions)})
    logger.log_metrics({f"{spec.name}/seconds": time.perf_counter() - started})
    logger.log_artifact(seed_dir / "predictions", "predictions")


def _with_codes(spec: TaskSpec, langs: list[str]) -> TaskSpec:
    import dataclasses

    return dataclasses.replace(spec, lang_codes={**{l: _file_code(spec, l) for l in langs}, **spec.lang_codes})


def _logger(model, spec, config, seed, seed_dir, parent_run_id, tags) -> RunLogger:
    run_file = seed_dir / "run.json"
    run_id = json.loads(run_file.read_text())["run_id"] if run_file.is_file() else None
    all_tags = {TAG_STAGE: "eval", TAG_TASK: spec.name, TAG_SEED: seed, "weam.eval_seed": seed,
                TAG_MODEL: str(model), **(tags or {})}
    uri = resolve_tracking_uri(config.tracking.uri, config.out_dir)
    logger = RunLogger(uri, config.tracking.experiment, f"eval/{spec.name}/seed{seed}", parent_run_id=parent_run_id,
                       tags=all_tags, buffer_path=seed_dir / "tracking-buffer.jsonl", run_id=run_id,
                       enabled=config.tracking.enabled)
    if config.tracking.enabled and logger.run_id and run_id is None:
        atomic_write_json(run_file, {"run_id": logger.run_id})
    if run_id is not None:
        logger.set_tags(all_tags)
    return logger


def _progress(items, label):
    from rich.progress import track

    return track(items, description=label, transient=True)


def metric_names(spec: TaskSpec, cells: dict[str, dict | None]) -> dict[str, float]:
    """``<task>/<metric>/<lang>`` and the aggregates, for each metric and the task's score."""
    out: dict[str, float] = {}
    labelled = {lang: m for lang, m in cells.items() if m}
    for name in [*spec.metrics, "score"]:
        per_lang = {lang: (spec.score_of(m) if name == "score" else m[name]) for lang, m in labelled.items()}
        for lang, value in per_lang.items():
            out[f"{spec.name}/{name}/{lang}"] = value
        if not per_lang:
            continue
        agg = metrics.aggregate(per_lang)
        out[f"{spec.name}/{name}/avg"] = agg["avg"]
        out.update({f"{spec.name}/{name}/family/{family}": v for family, v in agg["families"].items()})
        if agg["low_resource"] is not None:
            out[f"{spec.name}/{name}/low_resource"] = agg["low_resource"]
    return out


def combine(spec: TaskSpec, langs: list[str], per_seed: dict[int, dict[str, dict | None]]) -> dict[str, Any]:
    """Mean over seeds per language and metric, then XTREME-R's average and the group means of the score."""
    per_language: dict[str, dict[str, float]] = {}
    for lang in langs:
        runs = [cells[lang] for cells in per_seed.values() if cells.get(lang)]
        if runs:
            per_language[lang] = {m: sum(r[m] for r in runs) / len(runs) for m in runs[0]}
    scores = {lang: spec.score_of(m) for lang, m in per_language.items()}
    agg = metrics.aggregate(scores) if scores else {"avg": None, "families": {}, "low_resource": None}
    return {
        "task": spec.name,
        "score": spec.score,
        "per_language": per_language,
        "avg": agg["avg"],
        "avg_metrics": {m: metrics.mean([v[m] for v in per_language.values()]) for m in spec.metrics},
        "families": agg["families"],
        "low_resource": agg["low_resource"],
        "unlabeled": [lang for lang in langs if lang not in per_language],
        "seeds": {str(seed): cells for seed, cells in per_seed.items()},
    }
