"""``weam data demo``: English–X parallel corpora from the professional translations pip packages ship.

For each target language the strings of every catalog (:mod:`weam.data.catalogs`) are cleaned,
pre-tokenized and split:

* cleaning: HTML tags removed, entities unescaped, printf/format placeholders (``%(name)s``,
  ``%s``, ``{count}``) replaced by the single word :data:`PLACEHOLDER` on both sides, whitespace
  collapsed;
* pre-tokenizing: BERT's basic tokenizer (``tokenizers``' ``BertNormalizer`` + ``BertPreTokenizer``,
  no lower-casing, no accent stripping, CJK characters split), words joined by single spaces;
* filtering: pairs with a side that is empty or only placeholders and punctuation, with more than
  ``max_words`` words on a side, or with identical sides (they teach copying) are dropped;
  duplicate (English, translation) pairs are kept once;
* splitting: an English string is held out when a seeded hash of it falls under
  ``heldout_fraction``, the same strings for every language, so no training split of any language
  contains a held-out English sentence and the held-out sets form multi-way parallel retrieval sets.

Layout (:mod:`weam.core.layout`): ``<out>/en-<xx>/{train,heldout}.{en,xx}`` with a ``manifest.json``
per pair directory, and ``<out>/manifest.json`` (written last) summarising every language.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from weam.data.catalogs import find_catalogs, read_catalog
from weam.data.config import PIVOT, DemoDataConfig
from weam.core.errors import WeamError
from weam.core.languages import all_languages, get_language
from weam.core.layout import pair_name
from weam.core.manifest import (
    MANIFEST_NAME,
    atomic_directory,
    is_up_to_date,
    read_manifest,
    write_manifest,
)

STAGE = "data"
PLACEHOLDER = "X"
"""What every format placeholder becomes: one language-neutral word, the same on both sides."""
SPLITS = ("train", "heldout")
SOURCE_PACKAGES = ("Django", "pycountry", "babel", "polib", "tokenizers")

_HTML_TAG = re.compile(r"<[^<>]+>")
_PLACEHOLDER = re.compile(
    r"%%"  # a literal percent sign, kept
    r"|%\([^()\s]+\)[#0+\-]*\d*(?:\.\d+)?[a-zA-Z]"  # %(name)s, %(count)d
    r"|%[#0+\-]*\d*(?:\.\d+)?[sdifgeEFGxXoc]"  # %s, %d, %.2f
    r"|\{[\w.\[\]]*(?::[^{}]*)?\}"  # {name}, {0}, {}
)


@dataclass
class LanguageCorpus:
    """One language's cleaned, split pairs (in memory until written)."""

    code: str
    splits: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {s: [] for s in SPLITS})

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for split, pairs in self.splits.items():
            prefix = "" if split == "train" else f"{split}_"
            counts[f"{prefix}pairs"] = len(pairs)
            counts[f"{prefix}src_words"] = sum(len(src.split()) for src, _ in pairs)
            counts[f"{prefix}tgt_words"] = sum(len(tgt.split()) for _, tgt in pairs)
        return counts


@functools.cache
def _bert_pre_tokenizer() -> Callable[[str], str]:
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    splitter = pre_tokenizers.BertPreTokenizer()

    def tokenize(text: str) -> str:
        return " ".join(word for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))

    return tokenize


def _replace_placeholder(match: re.Match) -> str:
    return "%" if match.group() == "%%" else f" {PLACEHOLDER} "


def clean(text: str) -> str:
    """One catalog string as space-separated words (see the module docstring)."""
    text = _PLACEHOLDER.sub(_replace_placeholder, html.unescape(_HTML_TAG.sub(" ", text)))
    return _bert_pre_tokenizer()(unicodedata.normalize("NFC", text))


def has_words(text: str) -> bool:
    """True unless ``text`` is only placeholders and punctuation (``X``, ``X :``), or empty."""
    return any(word != PLACEHOLDER and any(char.isalnum() for char in word) for word in text.split())


def is_heldout(english: str, seed: int, fraction: float) -> bool:
    """Deterministic in (English string, seed): the same strings are held out for every language."""
    digest = hashlib.sha256(f"{seed}\t{english}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _order_key(seed: int, pair: tuple[str, str]) -> bytes:
    # A seeded shuffle: sources and catalogs interleave, so any prefix of train is a fair sample.
    return hashlib.sha256(f"{seed}\t{pair[0]}\t{pair[1]}".encode()).digest()


def collect_pairs(
    code: str, raw: Iterable[tuple[str, str]], config: DemoDataConfig, clean_english: Callable[[str], str]
) -> LanguageCorpus:
    """Clean, filter, deduplicate and split one language's raw (English, translation) strings."""
    corpus = LanguageCorpus(code)
    seen: set[tuple[str, str]] = set()
    for english_raw, target_raw in raw:
        if not english_raw.strip() or not target_raw.strip():
            continue
        pair = (clean_english(english_raw), clean(target_raw))
        if not (has_words(pair[0]) and has_words(pair[1])) or pair[0] == pair[1] or pair in seen:
            continue
        if max(len(pair[0].split()), len(pair[1].split())) > config.max_words:
            continue
        seen.add(pair)
        split = "heldout" if is_heldout(pair[0], config.seed, config.heldout_fraction) else "train"
        corpus.splits[split].append(pair)
    for pairs in corpus.splits.values():
        pairs.sort(key=lambda pair: _order_key(config.seed, pair))
    return corpus


def _pair_config(config: DemoDataConfig, code: str) -> dict[str, Any]:
    """What decides one pair directory's content (not the language list or the output folder)."""
    settings = config.model_dump(mode="json", exclude={"languages", "out_dir", "min_pairs"})
    return {**settings, "src": PIVOT, "tgt": code, "packages": _package_versions()}


@functools.cache
def _package_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in SOURCE_PACKAGES}


def _inputs(config: DemoDataConfig, code: str) -> dict[str, Path]:
    catalogs = find_catalogs(code, list(config.sources), list(config.pycountry_domains))
    return {catalog.key: catalog.path for catalog in catalogs}


def extract_language(
    code: str, config: DemoDataConfig, clean_english: Callable[[str], str] | None = None
) -> LanguageCorpus:
    """Read every catalog of ``code`` once and return its cleaned, split corpus."""
    clean_english = clean_english or functools.cache(clean)
    catalogs = find_catalogs(code, list(config.sources), list(config.pycountry_domains))
    raw = (pair for catalog in catalogs for pair in read_catalog(catalog))
    return collect_pairs(code, raw, config, clean_english)


def _write_pair(folder: Path, corpus: LanguageCorpus, inputs: dict[str, Path], pair_config: dict) -> dict:
    outputs = {}
    for split, pairs in corpus.splits.items():
        for side, lang in ((0, PIVOT), (1, corpus.code)):
            name = f"{split}.{lang}"
            with open(folder / name, "w", encoding="utf-8", newline="\n") as handle:
                handle.writelines(pair[side] + "\n" for pair in pairs)
            outputs[name] = name
    return write_manifest(folder, STAGE, inputs, pair_config, outputs, corpus.counts()).to_json()


def _language_row(code: str, counts: dict[str, int]) -> dict[str, Any]:
    language = get_language(code)
    return {"name": language.name, "family": language.family, "genus": language.genus, **counts}


def stage_fingerprint(config: DemoDataConfig, inputs: dict[str, dict[str, Path]] | None = None):
    """(input catalogs, result-affecting config) of the whole build: what its manifest records."""
    inputs = inputs or {code: _inputs(config, code) for code in config.languages}
    all_inputs = {f"{code}/{key}": path for code in config.languages for key, path in inputs[code].items()}
    return all_inputs, {**config.model_dump(mode="json", exclude={"out_dir"}), "packages": _package_versions()}


def build_demo(config: DemoDataConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Build (or skip, when finished with the same config and catalogs) the demo corpora.

    Returns the summary manifest: ``counts`` maps each language to its pair and word counts,
    name, family and genus. Raises :class:`~weam.core.errors.WeamError` when a language has fewer than
    ``min_pairs`` training pairs; nothing is written then.
    """
    out = Path(config.out_dir)
    inputs = {code: _inputs(config, code) for code in config.languages}
    all_inputs, top_config = stage_fingerprint(config, inputs)
    if is_up_to_date(out, all_inputs, top_config):
        return read_manifest(out)

    clean_english = functools.cache(clean)
    counts: dict[str, dict[str, int]] = {}
    pending: dict[str, LanguageCorpus] = {}
    for code in config.languages:
        folder = out / pair_name(PIVOT, code)
        if is_up_to_date(folder, inputs[code], _pair_config(config, code)):
            counts[code] = read_manifest(folder)["counts"]
            continue
        if progress:
            progress(f"reading {len(inputs[code])} catalogs for {code}")
        pending[code] = extract_language(code, config, clean_english)
        counts[code] = pending[code].counts()
    _check_min_pairs(config, counts)

    for code, corpus in pending.items():
        with atomic_directory(out / pair_name(PIVOT, code)) as tmp:
            _write_pair(tmp, corpus, inputs[code], _pair_config(config, code))
    outputs = {
        f"{pair_name(PIVOT, code)}/{split}.{lang}": f"{pair_name(PIVOT, code)}/{split}.{lang}"
        for code in config.languages
        for split in SPLITS
        for lang in (PIVOT, code)
    }
    summary = {code: _language_row(code, counts[code]) for code in config.languages}
    return write_manifest(out, STAGE, all_inputs, top_config, outputs, summary).to_json()


def _check_min_pairs(config: DemoDataConfig, counts: dict[str, dict[str, int]]) -> None:
    short = {code: c["pairs"] for code, c in counts.items() if c["pairs"] < config.min_pairs}
    if short:
        listed = ", ".join(f"{code} ({n} pairs)" for code, n in sorted(short.items()))
        raise WeamError(
            f"too little demo data: {listed} below min_pairs={config.min_pairs}; drop these "
            "languages or lower min_pairs (`weam data languages` lists what is available)"
        )


def available_languages(config: DemoDataConfig | None = None) -> dict[str, int]:
    """Registry code → usable pairs (train + held-out) under ``config`` (defaults when None)."""
    config = config or DemoDataConfig()
    clean_english = functools.cache(clean)
    available = {}
    for language in all_languages():
        if language.code == PIVOT or not _inputs(config, language.code):
            continue
        corpus = extract_language(language.code, config, clean_english)
        total = sum(len(pairs) for pairs in corpus.splits.values())
        if total:
            available[language.code] = total
    return available


def summary_path(config: DemoDataConfig) -> Path:
    return Path(config.out_dir) / MANIFEST_NAME
