"""``evaluate(model, config)``: every (task, seed) fine-tuned once on English, every language predicted.

On disk (atomic writes; a re-run skips every finished (task, seed, language) cell)::

    <out_dir>/<task>/seed<k>/<lang>.json                       one cell: split, metrics (null: no gold
                                                               labels), labels (their source) or reason
    <out_dir>/<task>/seed<k>/predictions/<task>/test-<lang>.*  leaderboard layout (weam eval score reads it)
    <out_dir>/<task>/results.json                              mean over seeds, per language + aggregates
    <out_dir>/<task>/manifest.json

MLflow: ``evaluate`` logs into the run it is handed (the eval stage's one run, opened and ended by
:func:`weam.stages.execute`) and never opens or ends it: each task's metrics (mean over fine-tuning
seeds), params (``<task>.<name>``), training outcome and predictions. A task fine-tuned with several
seeds also logs each seed to a child run named ``<run>/<task>/ft<seed>``, tagged weam.stage=eval,
weam.task, weam.finetune_seed (also in weam.eval_seed), weam.model and ``tags`` (a study passes
weam.seed, the pre-training seed). Metrics are
``<task>/<metric>/<lang>``, ``<task>/<metric>/avg``, ``<task>/<metric>/family/<Family>`` and
``<task>/<metric>/low_resource`` (and the same for ``score``, the XTREME-R score of the task; a task's
reference figures, e.g. Tatoeba's chance levels and shared-word count, per language only); the
fine-tuning outcome is ``<task>/train.<steps|best_dev|train_loss>`` and the wall time ``<task>/seconds``;
the predictions folder is the run's artifact ``predictions/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from weam.eval import metrics
from weam.eval.config import EvalConfig
from weam.eval.tasks import TaskSpec, get_task, label_file, label_source, resolve_split, unlabelled
from weam.core.errors import InputError
from weam.core.languages import get_language
from weam.core.manifest import atomic_write_json, write_manifest
from weam.modelcard import record_eval_results
from weam.core.tracking import TAG_EVAL_SEED, TAG_FINETUNE_SEED, TAG_MODEL, TAG_STAGE, TAG_TASK, RunLogger, exit_status


def evaluate(model: str | Path, config: EvalConfig, logger: RunLogger | None = None, tags: dict | None = None) -> dict:
    """Evaluate ``model`` (an HF directory or hub id) on ``config.tasks``, logging into ``logger``
    (None: nothing is logged); see the module docstring."""
    check_weights(model)
    return {task: evaluate_task(model, get_task(task), config, logger, tags) for task in config.tasks}


def check_weights(model: str | Path) -> None:
    """Refuse, before any work, a local model whose only weights are a pickle that does not load
    as plain tensors (``torch.load(weights_only=True)``, what transformers does): an error naming
    the file, not a traceback from deep inside transformers."""
    folder = Path(model)
    pickled = folder / "pytorch_model.bin"
    if not folder.is_dir() or (folder / "model.safetensors").is_file() or not pickled.is_file():
        return
    import pickle

    import torch

    try:
        torch.load(pickled, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise InputError(pickled, f"does not load as plain weights (torch.load weights_only=True: {reason}); "
                                  "weam runs no code from a pickle: give the model as model.safetensors "
                                  "(save_pretrained writes it)") from None


def task_languages(spec: TaskSpec, langs: list[str] | None) -> list[str]:
    """The task's XTREME-R languages, or those of ``langs`` the task has. Tatoeba also takes any other
    language but English (the demo's held-out sets); outside XTREME-R's list its files carry the
    ISO 639-3 code."""
    if langs is None:
        return list(spec.languages)
    return spec.kind.languages(spec, [get_language(code).code for code in langs])


def evaluate_task(model, spec: TaskSpec, config: EvalConfig, logger: RunLogger | None = None,
                  tags: dict | None = None) -> dict[str, Any]:
    langs = task_languages(spec, config.langs)
    split = resolve_split(spec, config.split, langs, config.labels_dir, hf=_uses_hf(config, spec, config.split))
    seeds = task_seeds(spec, config)
    per_seed = {}
    for seed in seeds:
        seed_logger = _seed_logger(model, spec, seed, logger, tags) if len(seeds) > 1 else logger
        per_seed[seed] = run_seed(model, spec, config, seed, langs, split, seed_logger, own=seed_logger is not logger)
    result = combine(spec, langs, per_seed)
    if logger:
        logger.log_metrics(metric_names(spec, result["per_language"]))
    result["split"] = split
    record_eval_results(model, spec, result)  # a weam model card gains the task's model-index entries
    task_dir = Path(config.out_dir) / spec.name
    atomic_write_json(task_dir / "results.json", result)
    write_manifest(task_dir, "eval", {}, config.model_dump(mode="json") | {"model": str(model)},
                   {"results": "results.json"}, {"languages": len(langs), "seeds": len(seeds)})
    return result


def task_seeds(spec: TaskSpec, config: EvalConfig) -> list[int]:
    """The fine-tuning seeds a task runs: every configured one, or the first for a task that is not fine-tuned."""
    return config.seeds if spec.kind.fine_tuned(spec, config) else config.seeds[:1]


def parts(config: EvalConfig) -> list[tuple[str, int]]:
    """The evaluation's independent pieces of work: one (task, fine-tuning seed) each, every language
    of it (one fine-tuning, then a prediction per language)."""
    return [(task, seed) for task in config.tasks for seed in task_seeds(get_task(task), config)]


def evaluate_part(model: str | Path, task: str, seed: int, config: EvalConfig) -> None:
    """Compute one (task, fine-tuning seed)'s missing cells and store them, logging nothing: what a
    cluster runs as one GPU task (weam study run --ray-address). :func:`evaluate` afterwards finds
    every cell fresh and only merges them into results.json (and logs the metrics), so the merged
    files are those of a sequential evaluation."""
    check_weights(model)
    spec = get_task(task)
    langs = task_languages(spec, config.langs)
    split = resolve_split(spec, config.split, langs, config.labels_dir, hf=_uses_hf(config, spec, config.split))
    recorder = _Recorder()
    run_seed(model, spec, config, seed, langs, split, recorder)
    if recorder.calls:  # what the fine-tuning would have logged: the merge logs it into the step's run
        seed_dir = Path(config.out_dir) / spec.name / f"seed{seed}"
        atomic_write_json(seed_dir / TRAINING_RECORD, {"settings": settings_key(spec, config),
                                                       "calls": json.loads(json.dumps(recorder.calls, default=str))})


TRAINING_RECORD = ".training.json"
"""In a seed's folder, written by :func:`evaluate_part`: the MLflow calls of its fine-tuning (params,
``train.*``, seconds, the predictions artifact), made by the merge into the step's run (or the seed's
child run) exactly as a sequential evaluation makes them, then removed."""


class _Recorder:
    """Stands in for a part's run (it has none): keeps the fine-tuning's logging calls."""

    def __init__(self):
        self.calls: list[list[Any]] = []

    def log_params(self, params):
        self.calls.append(["log_params", dict(params)])

    def log_metrics(self, metrics, step=None):
        self.calls.append(["log_metrics", dict(metrics)])

    def log_artifact(self, path, artifact_path=None):
        self.calls.append(["log_artifact", str(path), artifact_path])

    def set_tags(self, tags):
        """The merge sets the cells' tags itself."""


def _replay_training(seed_dir: Path, spec: TaskSpec, config: EvalConfig, logger) -> None:
    """Log a part's recorded fine-tuning (:data:`TRAINING_RECORD`) into ``logger``, once."""
    path = seed_dir / TRAINING_RECORD
    if not path.is_file():
        return
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("settings") == settings_key(spec, config):
        for name, *args in record["calls"]:
            getattr(logger, name)(*args)
    path.unlink()


def _uses_hf(config: EvalConfig, spec: TaskSpec, split: str) -> bool:
    from weam.eval.data import hf_source

    return any(hf_source(config, spec, name) is not None for name in (split, "test", "dev"))


def settings_key(spec: TaskSpec, config: EvalConfig) -> str:
    """The settings a cell's result depends on (not the model path: a study names each model's out_dir)."""
    import hashlib

    used = ["data_dir", "labels_dir", "train_batch_size", "max_seq_len", *spec.kind.result_settings]
    dump = config.model_dump(mode="json")
    tasks = spec.kind.settings_tasks(spec)
    key = {name: dump[name] for name in used} | {
        "hyperparams": {t: dump["hyperparams"].get(t) for t in tasks},
        "hf": {k: v for k, v in dump["hf_datasets"].items() if k.split(".")[0] in tasks},
        "hf_columns": dump["hf_columns"].get(spec.name)}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _fresh(cell_path: Path, split: str, config: EvalConfig, spec: TaskSpec) -> bool:
    """A stored cell is reused only if it was computed for the same split and result-affecting settings."""
    if not cell_path.is_file():
        return False
    cell = json.loads(cell_path.read_text(encoding="utf-8"))
    return cell.get("split") == split and cell.get("settings") == settings_key(spec, config)


def run_seed(model, spec, config, seed, langs, split, logger: RunLogger | None, own: bool = False
             ) -> dict[str, dict | None]:
    """One fine-tuning seed's cells, computed where missing. ``logger``: where this seed logs (a
    child run it ``own``s and ends, or the caller's run, or None)."""
    seed_dir = Path(config.out_dir) / spec.name / f"seed{seed}"
    pending = [lang for lang in langs if not _fresh(seed_dir / f"{lang}.json", split, config, spec)]
    log = logger or _NO_LOG
    try:
        if pending:
            _compute_cells(model, spec, config, seed, pending, split, seed_dir, log)
        else:  # computed by a part (evaluate_part): its fine-tuning is logged here, as if it ran now
            _replay_training(seed_dir, spec, config, log)
        cells = {lang: json.loads((seed_dir / f"{lang}.json").read_text(encoding="utf-8")) for lang in langs}
        if own:
            log.log_metrics(metric_names(spec, {lang: cell["metrics"] for lang, cell in cells.items()}))
        no_score = {lang: cell["reason"] for lang, cell in cells.items() if cell["metrics"] is None}
        if no_score:
            log.set_tags({f"weam.no_score.{spec.name}.{lang}": reason[:250] for lang, reason in no_score.items()})
    except BaseException as exc:
        if own:
            log.end(exit_status(exc))  # KILLED on Ctrl-C/SIGTERM, else FAILED
        raise
    if own:
        log.end()
    return cells


class _NoLog:
    """Stands in for a run when nothing is logged."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


_NO_LOG = _NoLog()


def _compute_cells(model, spec, config, seed, pending, split, seed_dir, logger) -> None:
    """Fine-tune once for this seed, then predict, score and store each pending language."""
    started = time.perf_counter()
    if split not in spec.splits:  # e.g. split=dev for XQuAD, TyDiQA, LAReQA, Tatoeba: nothing to train for
        for lang in pending:
            atomic_write_json(seed_dir / f"{lang}.json", {
                "task": spec.name, "lang": lang, "seed": seed, "split": split, "metrics": None, "labels": None,
                "count": 0, "settings": settings_key(spec, config),
                "reason": f"{spec.name} has no {split} split in XTREME's download (it has {', '.join(spec.splits)})"})
        return
    runner = spec.kind.runner(spec, config, model, progress=lambda m: print(f"[{spec.name} seed{seed}] {m}"))
    runner.split = split
    spec.kind.prepare(runner, pending)
    info = runner.train(seed)
    # Params are immutable in MLflow and a re-run may recompute a cell: training outcomes are metrics.
    logger.log_params({f"{spec.name}.{k}": v for k, v in {"seed": seed, "model": str(model), "split": split,
                                                            **vars(runner.settings)}.items()})
    logger.log_metrics({f"{spec.name}/train.{k}": v for k, v in info.items()})  # not <task>/<metric>/<lang>
    for lang in _progress(pending, f"{spec.name} seed{seed}"):
        atomic_write_json(seed_dir / f"{lang}.json", _cell(runner, spec, config, seed, split, seed_dir, lang))
    logger.log_metrics({f"{spec.name}/seconds": time.perf_counter() - started})
    if (seed_dir / "predictions").is_dir():
        logger.log_artifact(seed_dir / "predictions", "predictions")


def _cell(runner, spec: TaskSpec, config: EvalConfig, seed: int, split: str, seed_dir: Path, lang: str) -> dict:
    """Predict one language; score it against the download's gold, else a labels_dir file (test
    split), else record why it has no score. Predictions go to the leaderboard layout either way."""
    from weam.eval.data import split_path
    from weam.eval.score import score_language

    cell = {"task": spec.name, "lang": lang, "seed": seed, "split": split, "metrics": None, "labels": None,
            "reason": None, "count": 0, "settings": settings_key(spec, config)}
    info = spec.splits.get(split)
    if (info is not None and lang in info.missing and not _uses_hf(config, spec, split)
            and not split_path(config, spec, split, lang).is_file()):
        cell["reason"] = f"no {split} file in the download: {info.missing[lang]}"
        return cell
    predictions, scores = runner.predict(lang)
    pred_path = seed_dir / "predictions" / spec.name / f"test-{lang}.{spec.prediction_ext}"
    spec.kind.write_predictions(pred_path, predictions)
    cell["count"] = len(predictions)
    gold_file = label_file(config.labels_dir, spec, lang) if split == "test" else None
    if scores is not None:
        cell["labels"] = getattr(runner, "layout", None) or ("hf" if _uses_hf(config, spec, split) else "download")
    elif gold_file is not None:
        scores = score_language(spec, pred_path, gold_file, lang)
        cell["labels"] = label_source(config.labels_dir, gold_file)
    else:
        cell["reason"] = (unlabelled(spec, split, [lang], hf=_uses_hf(config, spec, split)).get(lang)
                          or f"{spec.name} {split} {lang}: the data carry no gold labels")
        cell["reason"] += f"; predictions in {pred_path.name} for `weam eval score`"
    cell["metrics"] = scores
    return cell


def _seed_logger(model, spec: TaskSpec, seed: int, logger: RunLogger | None, tags: dict | None) -> RunLogger | None:
    """A child run for one fine-tuning seed of a task evaluated with several: ``<run>/<task>/ft<seed>``."""
    if logger is None:
        return None
    all_tags = {TAG_STAGE: "eval", TAG_TASK: spec.name, TAG_FINETUNE_SEED: seed, TAG_EVAL_SEED: seed,
                TAG_MODEL: str(model), **(tags or {})}
    return logger.child(f"{spec.name}/ft{seed}", tags=all_tags)


def _progress(items, label):
    from weam.core.progress import track

    return track(items, label, unit="languages")


def metric_names(spec: TaskSpec, cells: dict[str, dict | None]) -> dict[str, float]:
    """``<task>/<metric>/<lang>`` and the aggregates, for each metric and the task's score. A metric
    some cell lacks, or one of the task's reference figures (chance levels, counts), is logged per
    language only: its average would not be comparable, or not a score."""
    out: dict[str, float] = {}
    labelled = {lang: m for lang, m in cells.items() if m}
    for name in [*spec.metrics, "score"]:
        per_lang = {lang: (spec.score_of(m) if name == "score" else m[name]) for lang, m in labelled.items()
                    if name == "score" or name in m}
        for lang, value in per_lang.items():
            out[f"{spec.name}/{name}/{lang}"] = value
        if not per_lang or len(per_lang) < len(labelled) or name in spec.reference_metrics:
            continue
        agg = metrics.aggregate(per_lang)
        out[f"{spec.name}/{name}/avg"] = agg["avg"]
        out.update({f"{spec.name}/{name}/family/{family}": v for family, v in agg["families"].items()})
        if agg["low_resource"] is not None:
            out[f"{spec.name}/{name}/low_resource"] = agg["low_resource"]
    return out


def combine(spec: TaskSpec, langs: list[str], per_seed: dict[int, dict[str, dict]]) -> dict[str, Any]:
    """Mean over seeds per language and metric, then XTREME-R's average and the group means of the score;
    ``unlabeled`` maps every language without a score to the reason."""
    per_language: dict[str, dict[str, float]] = {}
    unlabeled: dict[str, str] = {}
    for lang in langs:
        runs = [cells[lang]["metrics"] for cells in per_seed.values() if cells[lang]["metrics"]]
        if not runs:
            unlabeled[lang] = next(cells[lang]["reason"] for cells in per_seed.values())
        if runs:  # the metrics every seed has (a cell stored before a metric existed lacks it)
            per_language[lang] = {m: sum(r[m] for r in runs) / len(runs) for m in runs[0] if all(m in r for r in runs)}
    scores = {lang: spec.score_of(m) for lang, m in per_language.items()}
    agg = metrics.aggregate(scores) if scores else {"avg": None, "families": {}, "low_resource": None}
    return {
        "task": spec.name,
        "score": spec.score,
        "per_language": per_language,
        "avg": agg["avg"],
        "avg_metrics": metrics.average_metrics(per_language, spec.metrics, spec.reference_metrics),
        "families": agg["families"],
        "low_resource": agg["low_resource"],
        "unlabeled": unlabeled,
        "labels": {lang: next(c[lang]["labels"] for c in per_seed.values()) for lang in per_language},
        "seeds": {str(seed): {lang: cell["metrics"] for lang, cell in cells.items()} for seed, cells in per_seed.items()},
    }
