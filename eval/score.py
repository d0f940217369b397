"""Score a prediction folder in XTREME-R's leaderboard layout (``<task>/test-<lang>.<ext>``) against a
label folder of the same layout, with ``evaluate.py``'s conventions: metrics per language in percent,
the task's average over its languages (QA: the mean of average EM and average F1), group scores, and
the overall score when every task is present; plus our per-family and low-resource means."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weam.eval import formats, metrics
from weam.eval.tasks import TaskSpec, all_tasks
from weam.core.errors import InputError

GROUPS = {  # evaluate.py XTREME_R_GROUP2TASK (LAReQA has no leaderboard files there; scored when present)
    "classification": ["xnli", "xcopa"],
    "tagging": ["udpos", "panx"],
    "qa": ["xquad", "mlqa", "tydiqa"],
    "retrieval": ["tatoeba", "mewslix", "lareqa"],
}


def score_language(spec: TaskSpec, predicted_path: Path, label_path: Path, lang: str) -> dict[str, float]:
    """One language's metrics, as the task's kind scores its leaderboard files."""
    return spec.kind.score(spec, predicted_path, label_path, lang)


def score_folder(predictions: Path, labels: Path, tasks: list[str] | None = None) -> dict[str, Any]:
    predictions, labels = Path(predictions), Path(labels)
    if not labels.is_dir():
        raise InputError(labels, "label folder not found")
    detailed: dict[str, Any] = {}
    for name, spec in all_tasks().items():
        if (tasks and name not in tasks) or not (labels / name).is_dir():
            continue
        if not (predictions / name).is_dir():
            if tasks:
                raise InputError(predictions / name, f"no predictions for task {name}")
            continue
        per_language = {}
        for lang in spec.languages:
            label_path = labels / name / f"test-{lang}.{spec.prediction_ext}"
            if label_path.is_file():
                predicted_path = formats.require_file(predictions / name / label_path.name,
                                                      f"{name} predictions for {lang} (labels exist at {label_path})")
                per_language[lang] = score_language(spec, predicted_path, label_path, lang)
        if not per_language:
            continue
        scores = {lang: spec.score_of(m) for lang, m in per_language.items()}
        agg = metrics.aggregate(scores)
        detailed[name] = {"per_language": per_language,
                          "avg_metrics": metrics.average_metrics(per_language, spec.metrics, spec.reference_metrics),
                          "avg": agg["avg"], "families": agg["families"], "low_resource": agg["low_resource"]}
    groups = {group: metrics.mean([detailed[t]["avg"] for t in members])
              for group, members in GROUPS.items() if all(t in detailed for t in members)}
    overall = metrics.mean([d["avg"] for d in detailed.values()]) if set(all_tasks()) <= set(detailed) else None
    return {"tasks": detailed, "groups": groups, "all_tasks": overall}
