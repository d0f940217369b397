"""The config of ``weam data demo``: which languages, which shipped translations, how to split."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import field_validator

from weam.config import StrictModel
from weam.languages import normalize_code

DemoSource = Literal["django", "pycountry", "babel"]
PycountryDomain = Literal["iso3166-1", "iso3166-3", "iso4217", "iso15924", "iso639-3", "iso639-5"]
PIVOT = "en"
"""Every demo pair is English–X: the catalogs' msgids (and CLDR's English names) are English."""

DEFAULT_LANGUAGES = ["fi", "tr", "id", "ar", "de", "fr", "es", "ru", "sw", "mr", "ml", "te", "pa"]


class DemoDataConfig(StrictModel):
    """``weam data demo``: English–X parallel corpora from translations shipped in pip packages."""

    languages: list[str] = list(DEFAULT_LANGUAGES)
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

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, codes: list[str]) -> list[str]:
        normalised: list[str] = []
        for code in codes:
            canonical = normalize_code(code)
            if canonical == PIVOT:
                raise ValueError("'en' is the source side of every pair, not a target language")
            if canonical not in normalised:
                normalised.append(canonical)
        if not normalised:
            raise ValueError("at least one target language is needed")
        return normalised

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
