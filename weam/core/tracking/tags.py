"""The names MLflow sees: tag names every stage sets (the report and the MLflow compare view read
these), run names, metric names and model names.

``weam.study``, ``weam.condition``, ``weam.seed``, ``weam.stage`` (data|align|pretrain|eval|report),
``weam.objective``, ``weam.task``, ``weam.model``; a run's process (``weam.pid``, ``weam.host``,
``weam.pid_start``) and its buffer id (``weam.buffer_id``, :mod:`weam.core.tracking.sync`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

TAG_STUDY = "weam.study"
TAG_CONDITION = "weam.condition"
TAG_SEED = "weam.seed"
TAG_STAGE = "weam.stage"
TAG_OBJECTIVE = "weam.objective"
TAG_TASK = "weam.task"
TAG_MODEL = "weam.model"
TAG_PID = "weam.pid"
TAG_HOST = "weam.host"
TAG_PID_START = "weam.pid_start"
TAG_BUFFER_ID = "weam.buffer_id"
TAG_FINETUNE_SEED = "weam.finetune_seed"
"""Fine-tuning seed of an eval run; ``weam.seed`` is always the pre-training seed."""
TAG_EVAL_SEED = "weam.eval_seed"
"""The same fine-tuning seed under the name the report's MLflow reader groups by."""
TAG_ROLE = "weam.role"
TAG_FAMILIES = "weam.families"
TAG_LANGUAGE_SET = "weam.language_set"
"""MLflow tag of a pre-training or eval run: the id of its condition's language set (``s1``, …)."""
TAG_LANGUAGES = "weam.languages"
"""MLflow tag: the comma-separated languages of a run's set."""
TAG_N_FAMILIES = "weam.n_families"
TAG_STAGE_CONFIG = "weam.stage_config"
"""Dotted path of the stage's config class (``weam study reproduce`` loads config/<stage>.yaml with it)."""
TAG_REPRODUCES = "weam.reproduces"
TAG_GIT_COMMIT = "weam.git_commit"
PARENT_TAG = "mlflow.parentRunId"


def run_name(stage: str, condition: str | None = None, seed: int | None = None, objective: str | None = None,
             task: str | None = None, pair: str | None = None) -> str:
    """A run name a person can read: ``pretrain/weam/single/seed2``, ``eval/tatoeba/diverse/seed0``,
    ``align/en-fi``, ``base/mlm/seed0`` (stage, objective, task, pair, condition, seed; None left out)."""
    parts = [stage, objective, task, pair, condition, None if seed is None else f"seed{seed}"]
    return "/".join(str(part) for part in parts if part not in (None, ""))


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping → ``a.b.c`` keys, the way MLflow params want them."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def primary_metric_name(task: str, metric: str) -> str:
    """The one name under which every eval run logs the study's primary endpoint: the mean of
    ``<task>/<metric>`` over the held-out targets (``primary/tatoeba_accuracy_heldout``), the same
    group for the base model and for every condition, so the UI's chart compares like with like."""
    return f"primary/{task}_{metric}_heldout"


def sanitize_metric_name(name: str) -> str:
    """MLflow allows alphanumerics, ``_ - . / space``; other characters become ``_``."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in name)



def model_name(run_name: str) -> str:
    """A LoggedModel name from a run name (MLflow refuses / : . % and quotes in model names)."""
    return re.sub(r"""[/:.%"']+""", "-", run_name).strip("-") or "model"
