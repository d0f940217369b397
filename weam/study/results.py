"""A study's results, read from its stage files (as XTREME's evaluate.py reads a prediction folder).

The files are the source of truth; MLflow mirrors them. Only finished stages are read: an eval
folder counts when its stage manifest exists (a stale or half-written result is never reported).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from weam.core.manifest import read_manifest

RESULT_COLUMNS = ["condition", "language_set", "languages", "seed", "model", "run_id", "task", "metric", "language",
                  "score"]
COST_COLUMNS = ["condition", "language_set", "seed", "tokens", "steps", "wall_seconds", "device_hours", "device"]


def _run_folders(work: Path, stage: str) -> list[tuple[Path, str, str]]:
    """(folder, condition, language set) of every ``<stage>/<condition>/<set>/seed<k>`` and, for
    the base model, ``<stage>/base/seed<k>`` (set ''): the plan's layout (weam.study.plan.run_folder)."""
    found = [(f, f.parent.parent.name, f.parent.name) for f in sorted(work.glob(f"{stage}/*/*/seed*")) if f.is_dir()]
    found += [(f, f.parent.name, "") for f in sorted(work.glob(f"{stage}/*/seed*")) if f.is_dir()
              and f.name.removeprefix("seed").isdigit()]
    return [(f, c, s) for f, c, s in found if f.name.removeprefix("seed").isdigit()]


def read_results(work_dir: str | Path, task: str | None = None) -> pd.DataFrame:
    """One row per condition × language set × pre-training seed × task × metric × language: the
    score (the mean over fine-tuning seeds, as ``results.json`` holds it), from
    ``eval/<condition>/<set>/seed<k>/`` (the base model: ``eval/base/seed<k>/``, set ''); with the
    set's languages (comma-separated, from the pre-training manifest's pairs), the model evaluated
    and the MLflow run mirroring it."""
    work = Path(work_dir)
    rows = []
    for folder, condition, language_set in _run_folders(work, "eval"):
        manifest = read_manifest(folder)
        if manifest is None or manifest.get("stage") != "eval":
            continue
        seed = int(folder.name.removeprefix("seed"))
        model = manifest.get("counts", {}).get("model", "")
        languages = _set_languages(work, condition, language_set, seed)
        for results_file in sorted(folder.glob("*/results.json")):
            results = json.loads(results_file.read_text(encoding="utf-8"))
            name = results.get("task", results_file.parent.name)
            if task is not None and name != task:
                continue
            run_id = _run_id(results_file.parent)
            for language, metrics in results.get("per_language", {}).items():
                for metric, score in (metrics or {}).items():
                    rows.append((condition, language_set, languages, seed, model, run_id, name, metric, language,
                                 float(score)))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _set_languages(work: Path, condition: str, language_set: str, seed: int) -> str:
    """The languages a run pre-trained on (its manifest's config pairs), '' for the base model."""
    if not language_set:
        return ""
    from weam.study.plan import run_folder

    manifest = read_manifest(work / "pretrain" / run_folder(condition, language_set) / f"seed{seed}") or {}
    pairs = ((manifest.get("config") or {}).get("data") or {}).get("pairs") or []
    codes = [p["tgt"] for p in pairs if isinstance(p, dict) and "tgt" in p]
    if not codes:  # the counts name each pair <pivot>-<language>
        codes = [pair.split("-", 1)[1] for pair in (manifest.get("counts", {}).get("tokens_per_pair") or {})]
    return ",".join(codes)


def _run_id(task_dir: Path) -> str:
    """The MLflow run of the task's first fine-tuning seed (eval writes ``seed<k>/run.json``), or ''."""
    for run_file in sorted(task_dir.glob("seed*/run.json")):
        return json.loads(run_file.read_text(encoding="utf-8")).get("run_id", "")
    return ""


def read_costs(work_dir: str | Path) -> pd.DataFrame:
    """One row per finished pre-training run: tokens trained (also per pair), steps, wall time,
    device-hours (wall time × processes, one device each) and the device they ran on, from ``pretrain/<condition>/<set>/seed<k>/manifest.json``; also content tokens, links
    and passes per pair where the manifest has them."""
    rows = []
    for folder, condition, language_set in _run_folders(Path(work_dir), "pretrain"):
        manifest = read_manifest(folder)
        if manifest is None:
            continue
        counts = manifest.get("counts", {})
        wall = counts.get("wall_seconds")
        row = {"condition": condition, "language_set": language_set, "seed": int(folder.name.removeprefix("seed")),
               "tokens": counts.get("tokens"), "steps": counts.get("steps"), "wall_seconds": wall,
               "device_hours": wall * counts.get("world_size", 1) / 3600 if wall is not None else None,
               "device": counts.get("device")}
        row.update({f"tokens/{pair}": n for pair, n in (counts.get("tokens_per_pair") or {}).items()})
        if "content_tokens" in counts:
            row["content_tokens"] = counts["content_tokens"]
        for key in ("content_tokens", "links", "passes"):
            row.update({f"{key}/{pair}": n for pair, n in (counts.get(f"{key}_per_pair") or {}).items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else COST_COLUMNS)
