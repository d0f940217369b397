"""Load a task's data for one language, from XTREME's download layout or a Hugging Face dataset.

Records are the dicts of :mod:`weam.eval.formats`. Two entry points:

- :func:`load_english` reads the English training / model-selection files (``TaskSpec.files``);
- :func:`load_split` reads a target-language split (``TaskSpec.splits``) and removes whatever the
  split carries in place of gold labels when the registry says it has none (XCOPA's test labels 0,
  TyDiQA's empty answers …), so nothing downstream can score them.

A Hugging Face source (``hf_datasets``) is ``hf`` (the registry's :class:`~weam.eval.tasks.HFSource`), a hub
``id[:config]`` or a local file pattern with ``{lang}``/``{split}`` ending in .json/.jsonl/.parquet/.csv
(read by ``datasets``' own builders: the same code path, exercised offline). The dataset's columns are
mapped to ours by ``hf_columns`` or, by default, by the registry's schema of the task's dataset; integer
labels are named by the dataset's ClassLabel feature when it has one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weam.eval import formats
from weam.eval.config import EvalConfig
from weam.eval.tasks import TaskSpec, unlabelled
from weam.core.errors import InputError, WeamError

def data_root(config: EvalConfig, spec: TaskSpec) -> Path:
    if config.data_dir is None:
        raise WeamError(f"task {spec.name}: set data_dir (XTREME download layout) or hf_datasets.{spec.name}")
    return Path(config.data_dir)


def task_path(config: EvalConfig, spec: TaskSpec, key: str, lang: str = "en") -> Path:
    """A file of ``TaskSpec.files`` (English training data, candidates, label files …)."""
    return data_root(config, spec) / spec.files[key].format(lang=lang, code=spec.file_code(lang))


def split_path(config: EvalConfig, spec: TaskSpec, split: str, lang: str) -> Path:
    """The download's file of a target-language split."""
    return data_root(config, spec) / spec.split(split).path.format(lang=lang, code=spec.file_code(lang))


def hf_source(config: EvalConfig, spec: TaskSpec, split: str) -> str | None:
    return config.hf_datasets.get(f"{spec.name}.{split}", config.hf_datasets.get(spec.name))


def read_file(spec: TaskSpec, path: Path) -> list[dict[str, Any]]:
    return spec.kind.read(spec, path)


def load_english(config: EvalConfig, spec: TaskSpec, key: str) -> list[dict[str, Any]]:
    """English ``train`` or ``dev`` (model selection) records."""
    source = hf_source(config, spec, key)
    if source is not None:
        return _load_hf(config, source, spec, key, "en")
    if key not in spec.files:
        raise WeamError(f"task {spec.name} has no English {key} file in XTREME's download")
    path = task_path(config, spec, key)
    if not path.is_file():
        aliases = [data_root(config, spec) / alias for alias in spec.file_aliases.get(key, ())]
        path = next((alias for alias in aliases if alias.is_file()), path)
    return read_file(spec, formats.require_file(path, f"{spec.name} English {key} data"))


def load_split(config: EvalConfig, spec: TaskSpec, split: str, lang: str) -> list[dict[str, Any]]:
    """Records of a target-language split; gold fields are None/empty where the split has no labels."""
    source = hf_source(config, spec, split)
    if source is not None:
        records = _load_hf(config, source, spec, split, lang)
        labelled = not unlabelled(spec, split, [lang], hf=True)
    else:
        info = spec.split(split)
        path = split_path(config, spec, split, lang)
        if lang in info.missing and not path.is_file():
            raise InputError(path, f"missing file: {info.missing[lang]}")
        records = read_file(spec, formats.require_file(path, f"{spec.name} {split} data for {lang}"))
        labelled = not unlabelled(spec, split, [lang])
    return records if labelled else [strip_gold(spec, r) for r in records]


def strip_gold(spec: TaskSpec, record: dict[str, Any]) -> dict[str, Any]:
    """The record without its (placeholder) gold: XCOPA test's label 0, QA's empty answers."""
    record = dict(record)
    spec.kind.strip_gold(record)
    return record


def _open_hf(source: str, spec: TaskSpec, split: str, lang: str):
    import datasets

    hf = spec.hf
    if source.endswith((".json", ".jsonl", ".parquet", ".csv")):
        path = Path(source.format(lang=lang, split=split, code=spec.file_code(lang)))
        formats.require_file(path, f"{spec.name} {split} data for {lang}")
        builder = {".jsonl": "json"}.get(path.suffix, path.suffix.lstrip("."))
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    if source == "hf":
        if hf is None:
            raise WeamError(f"task {spec.name} has no Hugging Face dataset in the registry")
        dataset_id, name, hf_split = hf.id, hf.config, hf.splits.get(split)
        if hf_split is None:
            raise WeamError(f"{hf.id} has no split for our {split} ({spec.name}); it has {', '.join(hf.splits)}")
    else:
        dataset_id, _, name = source.partition(":")
        hf_split = {"dev": "validation"}.get(split, split)
        name = name or "{lang}"
    language = hf.language_name(lang) if hf is not None else lang
    config_name = name.format(lang=lang, code=spec.file_code(lang), name=language)
    return datasets.load_dataset(dataset_id, config_name, split=hf_split)


def _columns(config: EvalConfig, spec: TaskSpec, source: str) -> dict[str, str]:
    """Our column → theirs: hf_columns, else the registry's schema when the source is the registry's
    dataset (``hf``, its id, or a local copy of it), else the same names."""
    local = source.endswith((".json", ".jsonl", ".parquet", ".csv"))
    registry = {}
    if spec.hf is not None and (source == "hf" or local or source.partition(":")[0] == spec.hf.id):
        registry = spec.hf.columns
    given = config.hf_columns.get(spec.name, {})
    return {c: given.get(c, registry.get(c, c)) for c in spec.kind.columns}


def _load_hf(config: EvalConfig, source: str, spec: TaskSpec, split: str, lang: str) -> list[dict[str, Any]]:
    dataset = _open_hf(source, spec, split, lang)
    theirs = _columns(config, spec, source)
    missing = [c for c, t in theirs.items() if t not in dataset.column_names and c != "label"]
    if missing:
        raise InputError(source, f"dataset lacks column(s) {', '.join(theirs[c] for c in missing)} "
                                 f"(has {dataset.column_names}; map ours to theirs with hf_columns)")
    if spec.hf is not None and spec.hf.id_prefix and "id" in dataset.column_names:
        prefix = spec.hf.id_prefix.format(lang=lang, name=spec.hf.language_name(lang))
        dataset = dataset.filter(lambda row: str(row["id"]).startswith(prefix))
    names = _class_names(dataset.features, theirs)
    records = []
    for index, row in enumerate(dataset):
        record = {c: row.get(t) for c, t in theirs.items()}
        record["line"] = index + 1
        spec.kind.normalise(spec, record, names, source, index + 1)
        records.append(record)
    return records


def _class_names(features, theirs: dict[str, str]) -> list[str] | None:
    """The dataset's own label names (a ClassLabel, or a Sequence of one), so its label order is used."""
    for ours in ("label", "tags"):
        feature = features.get(theirs[ours]) if ours in theirs else None
        feature = getattr(feature, "feature", feature)
        if hasattr(feature, "names"):
            return list(feature.names)
    return None
