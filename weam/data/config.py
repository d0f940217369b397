"""The config of ``weam data demo``: which languages, which shipped translations, how to split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, Field, field_validator, model_validator

from weam.core.config import StrictModel
from weam.core.languages import normalize_code

DemoSource = Literal["django", "pycountry", "babel"]
PycountryDomain = Literal["iso3166-1", "iso3166-3", "iso4217", "iso15924", "iso639-3", "iso639-5"]
PIVOT = "en"
"""Every pair is English–X: the catalogs' msgids (and CLDR's English names) are English; OPUS pairs are read en-xx."""


def target_languages(codes: list[str]) -> list[str]:
    """The codes normalised (``deu`` → ``de``), each once, in order; the pivot and an empty list are refused."""
    normalised: list[str] = []
    for code in codes:
        canonical = normalize_code(code)
        if canonical == PIVOT:
            raise ValueError(f"'{PIVOT}' is the pivot side of every pair, not a target language")
        if canonical not in normalised:
            normalised.append(canonical)
    if not normalised:
        raise ValueError("at least one target language is needed")
    return normalised


TargetLanguages = Annotated[list[str], AfterValidator(target_languages)]
"""Target language codes of English–X pairs, checked and normalised by :func:`target_languages`."""


DEFAULT_LANGUAGES = ["fi", "tr", "id", "ar", "de", "fr", "es", "ru", "sw", "mr", "ml", "te", "pa"]


class DemoDataConfig(StrictModel):
    """``weam data demo``: English–X parallel corpora from translations shipped in pip packages."""

    languages: TargetLanguages = list(DEFAULT_LANGUAGES)
    """Target languages (registry codes; locale forms such as ``pt_BR`` resolve to ``pt``)."""
    heldout_fraction: float = 0.2
    """Share of English source strings held out from every language's training split."""
    seed: int = 0
    """Seed of the held-out hash and of the line order; changing it changes the split."""
    sources: list[DemoSource] = ["django", "pycountry", "babel"]
    """Translations to combine: Django's gettext catalogs, pycountry's iso-codes, babel's CLDR names."""
    pycountry_domains: list[PycountryDomain] = ["iso3166-1", "iso3166-3", "iso4217", "iso15924", "iso639-5"]
    """iso-codes catalogs to read; iso639-3 (7,900 language names, mostly transliterated) is opt-in."""
    max_words: int = 64
    """Pairs with more words than this on either side are dropped."""
    min_pairs: int = 500
    """A language with fewer training pairs than this fails the build (name it and its count)."""
    out_dir: Path = Path("data/demo")
    """Output folder: ``<out_dir>/en-<xx>/train.en`` … and ``<out_dir>/manifest.json``."""

    @field_validator("heldout_fraction")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0.0 <= value < 1.0:
            raise ValueError("must be in [0, 1)")
        return value

    @field_validator("sources", "pycountry_domains")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one")
        return sorted(set(value))

    @field_validator("max_words", "min_pairs")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value


# --- weam data fetch / clean: real OPUS corpora ---------------------------------------------------

class HFSource(StrictModel):
    """A Hugging Face dataset whose records are ``{"translation": {"en": …, "<xx>": …}}`` (OPUS-100's schema)."""

    kind: Literal["hf"] = "hf"
    name: str = "opus-100"
    """Short name: the file stem of this source's files (``<out_dir>/en-fi/opus-100.en``) and its manifest key."""
    dataset: str = "Helsinki-NLP/opus-100"
    """``datasets.load_dataset`` path: a hub id, or a local folder laid out as the hub repository."""
    revision: str | None = None
    """Hub revision (commit, tag or branch) to pin; None: the default branch (the manifest records the commit)."""
    config_name: str = "{sorted_pair}"
    """Dataset config per pair: ``{pair}`` is ``en-fi``, ``{sorted_pair}`` the two codes sorted (OPUS-100: ``de-en``)."""
    split: str = "train"
    """Split to read (OPUS-100: train, validation, test)."""
    field: str = "translation"
    """Record field holding the ``{lang: text}`` mapping."""
    licence: str | None = None
    """Licence to record; None: the dataset card's ``license`` (OPUS-100's card says ``unknown``)."""
    max_pairs: int | None = Field(None, gt=0)
    """Keep at most this many pairs per language (the first ones); None: all."""
    languages: TargetLanguages | None = None
    """Target languages this source is read for; None: every language of the fetch."""


class OpusSource(StrictModel):
    """An OPUS corpus release in Moses format, found and downloaded with opustools' ``OpusGet``."""

    kind: Literal["opus"] = "opus"
    name: str = "ccmatrix"
    """Short name: the file stem of this source's files (``<out_dir>/en-fi/ccmatrix.en``) and its manifest key."""
    corpus: str = "CCMatrix"
    """OPUS corpus id (``CCMatrix``, ``WikiMatrix``, ``NLLB``, ``OpenSubtitles``, …)."""
    version: str = "latest"
    """Release (``v1``) or ``latest``; the manifest records the release actually read."""
    local_db: bool = True
    """Resolve the release with the OPUS index that opustools ships (offline); False: ask the OPUS API."""
    database: Path | None = None
    """SQLite index to use; None: opustools' default (``~/.OpusTools/opusdata.db``, unpacked on first use)."""
    download_dir: Path = Path("data/opus-downloads")
    """Where OpusGet keeps the Moses zip files; a zip already there is read, not downloaded again."""
    licence: str | None = None
    """Licence to record; None: the ``LICENSE`` file inside the release's zip (else its README)."""
    max_pairs: int | None = Field(None, gt=0)
    """Keep at most this many pairs per language (the first ones); None: all."""
    languages: TargetLanguages | None = None
    """Target languages this source is read for; None: every language of the fetch (CCMatrix has no en-ka)."""
    missing: Literal["fail", "skip"] = "fail"
    """A pair OPUS has no such release for: fail before downloading anything, or skip this source for
    that pair (recorded in the pair's manifest and printed)."""


Source = Annotated[Union[HFSource, OpusSource], Field(discriminator="kind")]


class FetchConfig(StrictModel):
    """``weam data fetch``: English–X corpora from OPUS, written as Moses pairs with a manifest."""

    languages: TargetLanguages = ["fi", "tr", "id", "ar", "ka", "vi", "de", "fr", "es", "ru", "hi", "el"]
    """Target languages; every pair is English–X."""
    sources: list[Source] = [HFSource(), OpusSource(missing="skip")]
    """Corpora to fetch for every language, in order (each writes its own pair of files). Default: OPUS-100,
    then CCMatrix v1 where OPUS has it (configs/fetch/opus.yaml is the study's choice)."""
    out_dir: Path = Path("data/opus")
    """Output: ``<out_dir>/en-<xx>/<source>.en``, ``<source>.<xx>``, ``manifest.json``; ``<out_dir>/manifest.json``."""

    @field_validator("sources")
    @classmethod
    def _distinct_sources(cls, sources: list) -> list:
        names = [source.name for source in sources]
        if not sources:
            raise ValueError("name at least one source")
        if len(set(names)) != len(names):
            raise ValueError(f"source names repeat: {names}")
        for name in names:
            if not name or not all(ch.isalnum() or ch in "-_." for ch in name):
                raise ValueError(f"source name {name!r} may hold only letters, digits, '-', '_' and '.'")
        return sources

    @model_validator(mode="after")
    def _every_language_has_a_source(self) -> "FetchConfig":
        bare = [lang for lang in self.languages if not self.sources_for(lang)]
        if bare:
            raise ValueError(f"no source is read for {', '.join(bare)} (each source's languages leave it out)")
        return self

    def sources_for(self, lang: str) -> list:
        return [source for source in self.sources if source.languages is None or lang in source.languages]


class CleanConfig(StrictModel):
    """``weam data clean``: OpusFilter-style filters and evaluation-overlap removal, counted per filter and pair."""

    in_dir: Path = Path("data/opus")
    """A ``weam data fetch`` output folder (its pair manifests name the files to read)."""
    out_dir: Path = Path("data/opus-clean")
    """Output: ``<out_dir>/en-<xx>/train.en``, ``train.<xx>``, ``manifest.json``; ``report.json``, ``contamination.tsv``."""
    languages: TargetLanguages | None = None
    """Pairs to clean (target codes); None: every pair in ``in_dir``'s manifest."""
    min_words: int = Field(1, ge=1)
    """Fewest words a side may have."""
    max_words: int = Field(100, ge=1)
    """Most words a side may have (OpusFilter's LengthFilter, unit word)."""
    max_chars: int = Field(1000, ge=1)
    """Most characters a side may have (guards against unsegmented junk with no spaces)."""
    max_length_ratio: float = Field(3.0, ge=1.0)
    """Largest ratio of the longer side's length to the shorter's (OpusFilter's LengthRatioFilter)."""
    ratio_unit: Literal["word", "char"] = "char"
    """Unit of the ratio: characters work across scripts with and without spaces."""
    drop_copies: bool = True
    """Drop pairs whose two sides are the same text (untranslated copies)."""
    langid: bool = True
    """Language identification with py3langid (langid.py's model, shipped in the wheel): each side must be
    identified as its language."""
    langid_min_prob: float = Field(0.0, ge=0.0, le=1.0)
    """Smallest normalised probability of the expected language on each side (0: the top label must match)."""
    langid_candidates: list[str] | None = None
    """Restrict the identifier to these languages (None: all 140 of the model); the pair's two are always added."""
    dedup: bool = True
    """Drop repeated pairs (after lower-casing and removing punctuation and spaces); the first is kept."""
    decontaminate: bool = True
    """Drop pairs either side of which matches a sentence of an evaluation set of the study."""
    xtreme_data_dir: Path | None = None
    """XTREME-R download folder (the layout eval reads: tatoeba/, xnli/, xquad/, mlqa/, tydiqa/, …). Required
    when ``decontaminate`` is on."""
    eval_tasks: list[str] = ["tatoeba", "xnli", "xcopa", "xquad", "mlqa", "tydiqa", "lareqa", "panx", "udpos"]
    """XTREME-R tasks whose dev and test sentences (QA: contexts split into sentences, and questions) are
    removed from training data."""
    eval_languages: TargetLanguages | None = None
    """Languages whose evaluation files are read; None: every language of each task. English sides are checked
    against the English sentences of all of them (an English Tatoeba sentence leaks whatever it is paired with)."""
    min_match_chars: int = Field(1, ge=1)
    """Normalised evaluation sentences shorter than this are not matched (1: match all)."""

    @model_validator(mode="after")
    def _needs_eval_data(self) -> "CleanConfig":
        if self.decontaminate and self.xtreme_data_dir is None:
            raise ValueError("decontaminate needs xtreme_data_dir (the XTREME-R download folder); "
                             "set decontaminate=false to skip the overlap check")
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) is larger than max_words ({self.max_words})")
        return self
