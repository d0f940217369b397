"""Load a task's split for one language, from XTREME's download layout or a Hugging Face dataset.

Records are the dicts of :mod:`eval.formats`. A Hugging Face source must carry the same columns
(classification: sentence1, sentence2, label; multiple_choice: premise, choice1, choice2, question,
label; tagging: tokens, tags; qa: id, question, context, answers {text, answer_start}). Its id is
either a hub id with an optional config template, ``id[:config]`` (``xnli``, ``google/xquad:xquad.{lang}``;
loaded as ``load_dataset(id, config.format(lang=…), split=train|validation|test)``), or a local file
pattern with ``{lang}`` and ``{split}`` placeholders ending in .json/.jsonl/.parquet/.csv (read by
``datasets``' own builders: the same code path, exercised offline). ``hf_datasets`` may name a
split, ``<task>.<split>`` (e.g. ``xquad.train: rajpurkar/squad:plain_text``); ``hf_columns`` maps our
column names to the dataset's (``xnli: {sentence1: premise, sentence2: hypothesis}``). Integer labels
are named by the dataset's ClassLabel feature when it has one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval import formats
from eval.config import EvalConfig
from eval.tasks import TaskSpec
from weam.errors import InputError, WeamError

HF_COLUMNS = {
    "classification": ("sentence1", "sentence2", "label"),
    "multiple_choice": ("premise", "choice1", "choice2", "question", "label"),
    "tagging": ("tokens", "tags"),
    "qa": ("id", "question", "context", "answers"),
}


def task_path(config: EvalConfig, spec: TaskSpec, key: str, lang: str = "en") -> Path:
    if config.data_dir is None:
        raise WeamError(f"task {spec.name}: set data_dir (XTREME download layout) or hf_datasets.{spec.name}")
    return Path(config.data_dir) / spec.files[key].format(lang=lang, code=spec.file_code(lang))


def load_records(config: EvalConfig, spec: TaskSpec, split: str, lang: str) -> list[dict[str, Any]]:
    """Records of ``split`` (train | dev | test) for ``lang`` (classification, tagging, QA)."""
    source = config.hf_datasets.get(f"{spec.name}.{split}", config.hf_datasets.get(spec.name))
    if source is not None:
        return _load_hf(source, spec, split, lang, config.hf_columns.get(spec.name, {}))
    key = "target_dev" if split == "dev" and lang != "en" and "target_dev" in spec.files else split
    if key == "dev" and lang != "en" and "{lang}" not in spec.files["dev"]:
        raise WeamError(f"task {spec.name} has no {lang} dev split in XTREME's layout (its dev data is English: "
                        f"{spec.files['dev']}); evaluate split 'test'")
    path = formats.require_file(task_path(config, spec, key, lang), f"{spec.name} {split} data for {lang}")
    if spec.kind == "classification":
        return formats.read_pair_tsv(path, spec.labels)
    if spec.kind == "multiple_choice":
        return formats.read_copa(path)
    if spec.kind == "tagging":
        return formats.read_conll_tsv(path, spec.labels)
    if spec.kind in ("qa", "retrieval_qa"):
        return formats.read_squad(path)
    raise WeamError(f"task {spec.name}: no record loader for kind {spec.kind}")


def _open_hf(source: str, spec: TaskSpec, split: str, lang: str):
    import datasets

    if source.endswith((".json", ".jsonl", ".parquet", ".csv")):
        path = Path(source.format(lang=lang, split=split))
        formats.require_file(path, f"{spec.name} {split} data for {lang}")
        builder = {".jsonl": "json"}.get(path.suffix, path.suffix.lstrip("."))
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    dataset_id, _, name = source.partition(":")
    hf_split = {"dev": "validation"}.get(split, split)
    return datasets.load_dataset(dataset_id, (name or "{lang}").format(lang=lang, split=split), split=hf_split)


def _load_hf(source: str, spec: TaskSpec, split: str, lang: str, rename: dict[str, str]) -> list[dict[str, Any]]:
    dataset = _open_hf(source, spec, split, lang)
    columns = HF_COLUMNS.get(spec.kind, ())
    theirs = {c: rename.get(c, c) for c in columns}
    missing = [c for c in columns if theirs[c] not in dataset.column_names and c != "label"]
    if missing:
        raise InputError(source, f"dataset lacks column(s) {', '.join(theirs[c] for c in missing)} "
                                 f"(has {dataset.column_names}; map ours to theirs with hf_columns)")
    names = _class_names(dataset.features, theirs)
    records = []
    for index, row in enumerate(dataset):
        record = {c: row.get(theirs[c]) for c in columns}
        record["line"] = index + 1
        if spec.kind == "classification" and record["label"] is not None and record["label"] != -1:
            record["label"] = _label_name(spec, record["label"], names, source, index + 1)
        elif spec.kind == "classification":
            record["label"] = None
        if spec.kind == "tagging" and record["tags"] is not None:
            record["tags"] = [_label_name(spec, t, names, source, index + 1) for t in record["tags"]]
        if spec.kind == "qa":
            answers = record["answers"]
            if isinstance(answers, dict):  # datasets' squad feature: {text: [...], answer_start: [...]}
                record["answers"] = [{"text": t, "answer_start": s} for t, s in zip(answers["text"], answers["answer_start"])]
        records.append(record)
    return records


def _class_names(features, theirs: dict[str, str]) -> list[str] | None:
    """The dataset's own label names (a ClassLabel, or a Sequence of one), so its label order is used."""
    for ours in ("label", "tags"):
        feature = features.get(theirs.get(ours, ours)) if ours in theirs else None
        feature = getattr(feature, "feature", feature)
        if hasattr(feature, "names"):
            return list(feature.names)
    return None


def _label_name(spec: TaskSpec, label: Any, names: list[str] | None, source: str, line: int) -> str:
    if isinstance(label, int):
        names = names or list(spec.labels)
        if not 0 <= label < len(names):
            raise InputError(source, f"label index {label} outside the dataset's {len(names)} labels", line)
        label = names[label]
    if label not in spec.labels:
        raise InputError(source, f"label {label!r} is not in the task's label set ({', '.join(spec.labels)})", line)
    return label
