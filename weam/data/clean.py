"""``weam data clean``: the filters parallel-corpus papers apply (OpusFilter's), each counted per pair,
and removal of every pair that overlaps an evaluation set of the study.

Filters, in order; each counts the pairs it removed among those the earlier ones kept:

1. ``empty``: a side is empty or only spaces.
2. ``contamination``: either side matches a sentence of an XTREME-R dev or test set (first, so the
   report counts the overlap of the whole fetched corpus). Matching is on a normal form: Unicode NFKC,
   case-folded, with every space, punctuation mark, symbol and control character removed, so
   ``"I love you."`` matches ``"i love you!"``. English sides are checked against the English sentences of
   every evaluation file read (including Tatoeba's English side of every language pair, since an English
   test sentence leaks whatever it is paired with), the other side against that language's files.
   QA contexts are split into sentences (LAReQA's ``sentence_breaks`` where given); questions count too.
3. ``length``: a side has fewer than ``min_words`` or more than ``max_words`` words, or more than
   ``max_chars`` characters.
4. ``length_ratio``: longer side / shorter side above ``max_length_ratio`` (characters or words).
5. ``copy``: both sides have the same normal form (untranslated text).
6. ``langid``: py3langid (langid.py's naive Bayes model, shipped inside the wheel, so it runs offline)
   does not identify each side as its language (optionally with a probability floor).
7. ``duplicate``: the pair's normal form was seen before (the first is kept).

Outputs: ``<out_dir>/en-<xx>/train.en``, ``train.<xx>`` (the Moses pair the study reads) and
``manifest.json`` (inputs, config, per-filter counts); ``<out_dir>/report.json`` (every pair's counts and
contamination, the evaluation files read and those missing); ``<out_dir>/contamination.tsv`` (one line per
pair, side and evaluation file with overlap). A re-run with the same inputs, evaluation files and settings
is skipped per pair.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weam.data.config import PIVOT, CleanConfig
from weam.data.fetch import pair_name, read_fetch_manifest
from weam.core.errors import ConfigError, InputError
from weam.core.manifest import (MANIFEST_NAME, atomic_directory, atomic_write, atomic_write_json, atomic_write_text,
                           file_sha256, fingerprint, package_versions, read_manifest)
from weam.core.progress import Progress

STAGE = "data.clean"
FILTERS = ("empty", "contamination", "length", "length_ratio", "copy", "langid", "duplicate")
EVAL_SPLITS = ("dev", "test")
"""TaskSpec.splits whose target-language files are evaluation data."""
EVAL_FILES = {"dev": None, "test_eng": "en", "laser": "lang", "laser_eng": "en"}
"""TaskSpec.files keys that are evaluation data too → the language of their sentences: the English dev set
(model selection), Tatoeba's English side in XTREME's download layout, LASER's aligned Tatoeba pair."""
_SENTENCE_END = re.compile(r"(?<=[.!?;؟।۔።])\s+|(?<=[。！？])")


@functools.cache
def _strip_table() -> dict[int, None]:
    """Every code point that is a space, punctuation, symbol, control or format character (Z*, P*, S*, Cc, Cf)."""
    return {cp: None for cp in range(sys.maxunicode + 1)
            if (category := unicodedata.category(chr(cp)))[0] in "ZPS" or category in ("Cc", "Cf")}


def normal_form(text: str) -> str:
    """NFKC, case-folded, spaces/punctuation/symbols removed: the key of duplicate and overlap checks."""
    return unicodedata.normalize("NFKC", text).casefold().translate(_strip_table())


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


# --- evaluation sentences ----------------------------------------------------------------------------

@dataclass
class EvalFile:
    task: str
    split: str
    lang: str
    """The language of the sentences in the file (Tatoeba's ``test_eng`` side: en)."""
    path: Path
    sentences: int = 0


@dataclass
class EvalIndex:
    """Normal-form keys of evaluation sentences by language, and which files each came from."""

    keys: dict[str, dict[bytes, list[int]]] = field(default_factory=dict)
    files: list[EvalFile] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)

    def add(self, file: EvalFile, sentences: Iterable[str], min_chars: int) -> None:
        index = len(self.files)
        self.files.append(file)
        table = self.keys.setdefault(file.lang, {})
        for sentence in sentences:
            form = normal_form(sentence)
            if len(form) < min_chars:
                continue
            owners = table.setdefault(_key(form), [])
            if not owners or owners[-1] != index:
                owners.append(index)
                file.sentences += 1

    def match(self, lang: str, form_key: bytes) -> list[int]:
        return self.keys.get(lang, {}).get(form_key, [])


def _split_sentences(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text) if part.strip()]


def eval_files(config: CleanConfig, lang: str) -> list[EvalFile]:
    """Files whose sentences an en-``lang`` pair must not contain: English ones, and ``lang``'s."""
    from weam.eval.tasks import get_task

    root = Path(config.xtreme_data_dir)
    files: list[EvalFile] = []
    for task in config.eval_tasks:
        spec = get_task(task)
        codes = [code for code in spec.languages
                 if config.eval_languages is None or code in config.eval_languages or code == lang]
        for name in EVAL_SPLITS:
            split = spec.splits.get(name)
            for code in codes if split is not None else ():
                if code in (PIVOT, lang) and code not in split.missing:
                    path = root / split.path.format(lang=code, code=spec.file_code(code))
                    files.append(EvalFile(task, name, code, path))
        for key, side in EVAL_FILES.items():
            pattern = spec.files.get(key)
            if pattern is None:
                continue
            if "{lang}" not in pattern and "{code}" not in pattern:  # one English file (xnli/dev-en.tsv, SQuAD dev)
                files.append(EvalFile(task, key, PIVOT, root / pattern))
                continue
            for code in codes:
                sentences_in = PIVOT if side == "en" else code
                if sentences_in in (PIVOT, lang):
                    files.append(EvalFile(task, key, sentences_in,
                                          root / pattern.format(lang=code, code=spec.file_code(code))))
    return files


def build_index(config: CleanConfig, langs: list[str]) -> EvalIndex:
    """One index for all pairs: the English files once, and each pair language's files."""
    from weam.eval.tasks import get_task

    index = EvalIndex()
    seen: set[Path] = set()
    for file in (file for lang in langs for file in eval_files(config, lang)):
        if file.path in seen:
            continue
        seen.add(file.path)
        if not file.path.is_file():
            index.missing.append({"task": file.task, "split": file.split, "lang": file.lang, "path": str(file.path)})
            continue
        index.add(file, get_task(file.task).kind.text_units(file.path, _split_sentences), config.min_match_chars)
    return index


# --- the filters ---------------------------------------------------------------------------------------

class LanguageIdentifier:
    """py3langid, restricted to the configured candidates (plus the pair's two languages)."""

    def __init__(self, config: CleanConfig, lang: str):
        from py3langid.langid import MODEL_FILE, LanguageIdentifier as Model

        self.model = Model.from_model_file(MODEL_FILE, norm_probs=True)
        labels = set(self.model.labels)
        for code in (PIVOT, lang):
            if code not in labels:
                raise ConfigError(f"language identification: py3langid has no model for {code!r}; "
                                  f"set langid=false to clean en-{lang} without it")
        if config.langid_candidates:
            unknown = sorted(set(config.langid_candidates) - labels)
            if unknown:
                raise ConfigError(f"langid_candidates: py3langid does not know {', '.join(unknown)}")
            self.model.set_languages(sorted({*config.langid_candidates, PIVOT, lang}))
        self.min_prob = config.langid_min_prob

    def is_lang(self, text: str, code: str) -> bool:
        label, prob = self.model.classify(text)
        return label == code and prob >= self.min_prob


@dataclass
class PairCleaner:
    """The filter chain of one pair; ``keep(src, tgt)`` says whether a pair survives, counting why not."""

    config: CleanConfig
    lang: str
    index: EvalIndex | None
    removed: Counter = field(default_factory=Counter)
    hits: Counter = field(default_factory=Counter)
    """(side, eval file index) → pairs removed for overlapping that file."""
    examples: list[dict[str, str]] = field(default_factory=list)
    seen: set[bytes] = field(default_factory=set)
    langid: LanguageIdentifier | None = None

    def __post_init__(self) -> None:
        if self.config.langid:
            self.langid = LanguageIdentifier(self.config, self.lang)

    def keep(self, src: str, tgt: str) -> bool:
        forms = (normal_form(src), normal_form(tgt))  # once per pair, shared by the filters
        for name, test in self._chain():
            if not test(src, tgt, forms):
                self.removed[name] += 1
                return False
        return True

    def _chain(self) -> Iterator[tuple[str, Callable[[str, str, tuple[str, str]], bool]]]:
        yield "empty", lambda s, t, f: bool(s.strip()) and bool(t.strip())
        if self.index is not None:
            yield "contamination", self._clean_of_eval
        yield "length", self._length_ok
        yield "length_ratio", self._ratio_ok
        if self.config.drop_copies:
            yield "copy", lambda s, t, f: f[0] != f[1]
        if self.langid is not None:
            yield "langid", lambda s, t, f: self.langid.is_lang(s, PIVOT) and self.langid.is_lang(t, self.lang)
        if self.config.dedup:
            yield "duplicate", self._first_time

    def _clean_of_eval(self, src: str, tgt: str, forms: tuple[str, str]) -> bool:
        found = False
        for side, text, form in ((PIVOT, src, forms[0]), (self.lang, tgt, forms[1])):
            if len(form) < self.config.min_match_chars:
                continue
            owners = self.index.match(side, _key(form))
            for owner in owners:
                self.hits[(side, owner)] += 1
            if owners and not found and len(self.examples) < 5:
                file = self.index.files[owners[0]]
                self.examples.append({"side": side, "text": text, "task": file.task, "split": file.split,
                                      "lang": file.lang, "file": str(file.path)})
            found = found or bool(owners)
        return not found

    def _length_ok(self, src: str, tgt: str, forms: tuple[str, str]) -> bool:
        config = self.config
        for text in (src, tgt):
            words = len(text.split())
            if words < config.min_words or words > config.max_words or len(text) > config.max_chars:
                return False
        return True

    def _ratio_ok(self, src: str, tgt: str, forms: tuple[str, str]) -> bool:
        measure = (lambda text: len(text.split())) if self.config.ratio_unit == "word" else len
        a, b = measure(src.strip()), measure(tgt.strip())
        return max(a, b) / max(min(a, b), 1) <= self.config.max_length_ratio

    def _first_time(self, src: str, tgt: str, forms: tuple[str, str]) -> bool:
        key = _key(forms[0] + "\t" + forms[1])
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


# --- the stage -----------------------------------------------------------------------------------------

def clean(config: CleanConfig) -> dict[str, Any]:
    """Clean every pair of the fetched corpus; writes and returns the report."""
    fetched = read_fetch_manifest(config.in_dir)
    available = [pair.split("-", 1)[1] for pair in fetched["pairs"]]
    langs = config.languages or available
    absent = [lang for lang in langs if lang not in available]
    if absent:
        raise InputError(Path(config.in_dir) / MANIFEST_NAME, f"has no pair for {', '.join(absent)} "
                         f"(fetched: {', '.join(available)})")
    out = Path(config.out_dir)
    report: dict[str, Any] = {"stage": STAGE, "filters": list(FILTERS), "pairs": {}}
    index: list[EvalIndex] = []  # built on the first pair that is not up to date, then shared

    def shared_index() -> EvalIndex:
        if not index:
            index.append(build_index(config, langs))
        return index[0]

    for lang in langs:
        report["pairs"][pair_name(lang)] = clean_pair(config, lang, fetched["pairs"][pair_name(lang)], shared_index)
    if index:
        report["eval_files_missing"] = index[0].missing
    report["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
    atomic_write_text(out / "contamination.tsv", contamination_tsv(report))
    atomic_write_json(out / "report.json", report)
    return report


def _inputs(config: CleanConfig, lang: str, fetched_pair: dict[str, Any]) -> dict[str, str]:
    """Content hashes deciding the result: fetched files (as fetch recorded them) and evaluation files."""
    folder = Path(config.in_dir) / pair_name(lang)
    hashes = {}
    for name, info in fetched_pair["outputs"].items():
        path = folder / info["path"]
        if not path.is_file() or path.stat().st_size != info["bytes"]:
            raise InputError(path, "missing or changed since `weam data fetch` wrote it; fetch again")
        hashes[f"fetched/{name}"] = info["sha256"]
    if config.decontaminate:
        for file in eval_files(config, lang):
            hashes[f"eval/{file.path}"] = _cached_sha256(file.path)
    return hashes


@functools.lru_cache(maxsize=4096)
def _cached_sha256_at(path: Path, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def _cached_sha256(path: Path) -> str:
    if not path.is_file():
        return "missing"
    stat = path.stat()
    return _cached_sha256_at(path, stat.st_size, stat.st_mtime_ns)


def clean_pair(config: CleanConfig, lang: str, fetched_pair: dict[str, Any],
               get_index: Callable[[], EvalIndex]) -> dict[str, Any]:
    pair = pair_name(lang)
    pair_dir = Path(config.out_dir) / pair
    inputs = _inputs(config, lang, fetched_pair)
    settings = config.model_dump(mode="json", exclude={"languages", "out_dir"})
    key = fingerprint(inputs, settings)
    previous = read_manifest(pair_dir)
    if previous and previous.get("fingerprint") == key and all(
            (pair_dir / f"train.{side}").is_file() for side in (PIVOT, lang)):
        return previous["report"]
    index = get_index() if config.decontaminate else None
    cleaner = PairCleaner(config, lang, index)
    per_source: dict[str, int] = {}
    kept = src_words = tgt_words = 0
    total = sum(info["counts"]["pairs"] for info in fetched_pair["sources"].values())
    with atomic_directory(pair_dir) as tmp, Progress(f"clean {pair}", total=total, unit="pairs") as bar:
        with atomic_write(tmp / f"train.{PIVOT}") as src_out, atomic_write(tmp / f"train.{lang}") as tgt_out:
            for name, src, tgt in _fetched_pairs(config, lang, fetched_pair):
                per_source[name] = per_source.get(name, 0) + 1
                if cleaner.keep(src, tgt):
                    src_out.write(src + "\n")
                    tgt_out.write(tgt + "\n")
                    kept += 1
                    src_words += len(src.split())
                    tgt_words += len(tgt.split())
                bar.advance(1, info=f"kept {kept:,}")
        result = {
            "input_pairs": sum(per_source.values()), "input_by_source": per_source,
            "removed": {name: cleaner.removed.get(name, 0) for name in FILTERS},
            "kept": kept, "src_words": src_words, "tgt_words": tgt_words,
            "contamination": _contamination(cleaner, index),
        }
        atomic_write_json(tmp / MANIFEST_NAME, {
            "stage": STAGE, "pair": pair, "fingerprint": key, "inputs": inputs, "config": settings,
            "outputs": {side: f"train.{side}" for side in (PIVOT, lang)}, "report": result,
            "versions": package_versions(("weam", "py3langid", "opustools", "datasets")),
        })
    return result


def _fetched_pairs(config: CleanConfig, lang: str, fetched_pair: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    from weam.core.corpus import read_parallel

    folder = Path(config.in_dir) / pair_name(lang)
    for name in fetched_pair["sources"]:
        for pair in read_parallel(folder / f"{name}.{PIVOT}", folder / f"{name}.{lang}", fmt="moses",
                                  max_chars=0, allow_empty=True):
            yield name, pair.src, pair.tgt


def _contamination(cleaner: PairCleaner, index: EvalIndex | None) -> dict[str, Any]:
    if index is None:
        return {"checked": False}
    overlaps = []
    for (side, owner), pairs in sorted(cleaner.hits.items(), key=lambda item: (item[0][0], item[0][1])):
        file = index.files[owner]
        overlaps.append({"side": side, "task": file.task, "split": file.split, "lang": file.lang,
                         "file": str(file.path), "eval_sentences": file.sentences, "pairs_removed": pairs})
    return {
        "checked": True, "pairs_removed": cleaner.removed.get("contamination", 0), "overlaps": overlaps,
        "eval_files_read": [{"task": f.task, "split": f.split, "lang": f.lang, "path": str(f.path),
                             "sentences": f.sentences} for f in index.files if f.lang in (PIVOT, cleaner.lang)],
        "eval_files_missing": [m for m in index.missing if m["lang"] in (PIVOT, cleaner.lang)],
        "examples": cleaner.examples,
    }


TSV_COLUMNS = ("pair", "side", "task", "split", "lang", "eval_sentences", "pairs_removed", "file")


def contamination_tsv(report: dict[str, Any]) -> str:
    """One line per pair, side and evaluation file with overlap (a pair with none: one line of zeros)."""
    lines = ["\t".join(TSV_COLUMNS)]
    for pair, result in report["pairs"].items():
        found = result["contamination"]
        if not found.get("checked"):
            lines.append("\t".join((pair, "-", "not checked", "-", "-", "0", "0", "-")))
            continue
        if not found["overlaps"]:
            lines.append("\t".join((pair, "-", "none", "-", "-", "0", "0", "-")))
        for row in found["overlaps"]:
            lines.append("\t".join(str(row[column]) if column != "pair" else pair for column in TSV_COLUMNS))
    return "\n".join(lines) + "\n"


def report_rows(report: dict[str, Any]) -> list[list[str]]:
    """Per pair: input, removed by each filter, kept (for the CLI table)."""
    return [[pair, f"{r['input_pairs']:,}", *(f"{r['removed'][name]:,}" for name in FILTERS), f"{r['kept']:,}"]
            for pair, r in report["pairs"].items()]


def missing_eval_files(report: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for result in report["pairs"].values():
        for row in result["contamination"].get("eval_files_missing", []):
            seen[row["path"]] = None
    return list(seen)


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False)
