"""Relatedness between a training set and a target language, measured, so the report can tell
"diversity" from "a related language was in the mix".

Per (language set, target):

``genealogical``
    Shared Glottolog classification depth of the set's closest language: the number of
    classification nodes (family, branch, sub-branch, …) the two share in URIEL's family features
    (``lang2vec/data/family_features.npz``, derived from Glottolog). 0: different families.
``typological``
    URIEL syntactic distance of the set's *nearest* language: cosine distance between the two
    languages' ``syntax_knn`` vectors (WALS/SSWL/Ethnologue syntax features with kNN-imputed gaps,
    ``feature_predictions.npz``; lang2vec's "syntactic" distance). NaN where URIEL has no vector.
``script``
    Share of the set's languages written in the target's script (ISO 15924, from the registry:
    URIEL has no script feature).
``subword``
    Share of the target's subword tokens (occurrences, on the tokenizer the runs use) whose
    token id occurs in the set's training text (:func:`subword_overlap`); only where the files exist.

The URIEL files are read from the installed ``lang2vec`` package with numpy (its own module
imports ``pkg_resources``, which current setuptools no longer ships); nothing is downloaded.
"""

from __future__ import annotations

import functools
import itertools
from importlib import metadata, resources
from pathlib import Path

import numpy as np
import pandas as pd

from weam.core.errors import WeamError
from weam.core.languages import get_language

URIEL_ALIASES = {"nb": "nor", "nn": "nor", "qu": "quy"}
"""Registry codes whose ISO 639-3 code has no URIEL family features: the URIEL entry used instead
(Norwegian macrolanguage; Ayacucho Quechua for the Quechua macrolanguage)."""
URIEL_FAMILY_NAMES = {"Artificial Language": "Constructed", "Mongolic": "Mongolic-Khitan"}
"""URIEL (Glottolog 2.7) names of top-level families that the registry spells as current Glottolog does."""


@functools.cache
def _uriel(name: str) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """(language → row, feature names, data[:, :, 0]) of one URIEL file in lang2vec."""
    # Located through the installed distribution, not by importing ``lang2vec``: the wheel also
    # installs a script bin/lang2vec.py, which shadows the package in every console script (whose
    # sys.path[0] is bin/), and the package's module imports pkg_resources.
    try:
        folder = Path(str(metadata.distribution("lang2vec").locate_file("lang2vec/data")))
    except metadata.PackageNotFoundError:
        raise WeamError("lang2vec is not installed (pip install lang2vec==1.1.2): it ships URIEL") from None
    with resources.as_file(folder / f"{name}.npz") as path:
        data = np.load(path, allow_pickle=True)
        langs = {str(code): i for i, code in enumerate(data["langs"])}
        return langs, np.asarray([str(f) for f in data["feats"]]), np.asarray(data["data"][:, :, 0], dtype=float)


def uriel_code(code: str) -> str:
    language = get_language(code)
    return URIEL_ALIASES.get(language.code, language.iso639_3)


@functools.cache
def _node_sizes() -> np.ndarray:
    return _uriel("family_features")[2].sum(axis=0)


@functools.cache
def classification(code: str) -> list[str]:
    """The Glottolog classification nodes of a language in URIEL, root first ([] for isolates)."""
    langs, feats, data = _uriel("family_features")
    row = langs.get(uriel_code(code))
    if row is None:
        return []
    members = _node_sizes()
    nodes = np.where(data[row] > 0)[0]
    # A node's size orders the path: the family holds every language of its branches.
    return [str(feats[i])[2:] for i in nodes[np.argsort(-members[nodes], kind="stable")]]


def uriel_family(code: str) -> str | None:
    """Top-level family per URIEL, in the registry's spelling; None where URIEL lists none."""
    nodes = classification(code)
    return URIEL_FAMILY_NAMES.get(nodes[0], nodes[0]) if nodes else None


def shared_depth(a: str, b: str) -> int:
    """Classification nodes two languages share (0: different families or an isolate)."""
    return len(set(classification(a)) & set(classification(b)))


@functools.cache
def _syntax_vector(code: str) -> np.ndarray | None:
    langs, feats, data = _uriel("feature_predictions")
    row = langs.get(uriel_code(code))
    if row is None:
        return None
    vector = data[row, np.char.startswith(feats.astype(str), "S_")]
    return None if not np.isfinite(vector).all() or not vector.any() else vector


def syntactic_distance(a: str, b: str) -> float:
    """Cosine distance of URIEL syntax_knn vectors (NaN where one is missing)."""
    u, v = _syntax_vector(a), _syntax_vector(b)
    if u is None or v is None:
        return float("nan")
    return float(1 - u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def relatedness(languages: list[str] | tuple[str, ...], target: str) -> dict[str, float]:
    """The genealogical, typological and script covariates of one (set, target) pair."""
    script = get_language(target).script
    distances = [d for d in (syntactic_distance(code, target) for code in languages) if np.isfinite(d)]
    return {
        "genealogical": float(max(shared_depth(code, target) for code in languages)),
        "typological": float(min(distances)) if distances else float("nan"),
        "script": sum(get_language(code).script == script for code in languages) / len(languages),
    }


def covariate_table(study, subword: dict[tuple[str, str, str], float] | None = None) -> pd.DataFrame:
    """One row per (condition, language_set, target) with the covariates and the set's diversity."""
    from weam.study.config import diversity

    rows = []
    for item in study.language_sets():
        measure = diversity(list(item.languages))
        for target in study.held_out:
            row = {"condition": item.condition, "role": item.role, "language_set": item.set_id, "target": target,
                   "languages": ",".join(item.languages), "n_families": measure["n_families"],
                   "family_entropy_bits": measure["family_entropy_bits"], **relatedness(item.languages, target)}
            if subword is not None:
                row["subword"] = subword.get((item.condition, item.set_id, target), float("nan"))
            rows.append(row)
    return pd.DataFrame(rows)


def _token_ids(tokenizer, path: Path, max_lines: int, batch: int = 1000):
    with open(path, encoding="utf-8") as handle:
        lines = itertools.islice(handle, max_lines)
        while chunk := [line.rstrip("\n") for line in itertools.islice(lines, batch)]:
            for ids in tokenizer(chunk, add_special_tokens=False)["input_ids"]:
                yield from ids


def subword_overlap(tokenizer, set_files: list[Path], target_file: Path, max_lines: int = 100_000) -> float:
    """Share of the target text's subword tokens whose id occurs in the set's (non-pivot) training text."""
    seen: set[int] = set()
    for path in set_files:
        seen.update(_token_ids(tokenizer, Path(path), max_lines))
    return _overlap(seen, list(_token_ids(tokenizer, Path(target_file), max_lines)), target_file)


def _overlap(seen: set[int], target: list[int], target_file: Path) -> float:
    if not target:
        raise WeamError(f"{target_file}: no tokens to measure subword overlap on")
    return sum(token in seen for token in target) / len(target)


def study_subword_overlap(study, tokenizer, max_lines: int = 100_000) -> dict[tuple[str, str, str], float]:
    """Subword overlap of every (set, target) from the study's corpus files, where they exist
    (each language's token ids are read once)."""
    from weam.core import layout

    work = Path(study.work_dir).resolve()

    def train_file(code: str) -> Path:
        given = study.corpora.get(f"{study.pivot}-{code}")
        return Path(given.tgt) if given is not None else layout.corpus_files(work, study.pivot, code)[1]

    vocab: dict[str, set[int]] = {}
    for code in study.condition_languages():
        if train_file(code).is_file():
            vocab[code] = set(_token_ids(tokenizer, train_file(code), max_lines))
    targets = {}
    for target in study.held_out:
        path = layout.corpus_files(work, study.pivot, target, split="heldout")[1]
        if path.is_file():
            targets[target] = (path, list(_token_ids(tokenizer, path, max_lines)))
    out = {}
    for item in study.language_sets():
        if not all(code in vocab for code in item.languages):
            continue
        seen = set().union(*(vocab[code] for code in item.languages))
        for target, (path, ids) in targets.items():
            out[(item.condition, item.set_id, target)] = _overlap(seen, ids, path)
    return out
