"""The files whose content decides a pre-training result: the stage's inputs for the skip rule.

Kept apart from ``training/api.py`` (which imports torch at the top) because the study driver asks
every planned pre-training step for its inputs (:func:`weam.stages.verdict`, the DAG of a Ray run,
``weam study status``) and needs no torch for that: importing it cost the driver seconds a call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weam.core.layout import WEIGHT_FILES
from weam.training.config import PairData, PretrainConfig


def data_files(pairs: Sequence[PairData]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for pair in pairs:
        files[f"{pair.name}.src"] = pair.src_file
        files[f"{pair.name}.tgt"] = pair.tgt_file
        if pair.alignment:
            files[f"{pair.name}.alignment"] = pair.alignment
    return files


def stage_inputs(config: PretrainConfig) -> dict[str, Any]:
    """Files whose content decides the result: the data, and a local starting model/tokenizer."""
    inputs: dict[str, Any] = dict(data_files(config.data.pairs))
    for name, source in (("model", config.model), ("tokenizer", config.tokenizer)):
        folder = Path(source) if source and not source.startswith("preset:") else None
        if folder and folder.is_dir():
            for file in WEIGHT_FILES:
                if (folder / file).is_file():
                    inputs[f"{name}/{file}"] = folder / file
    return inputs
