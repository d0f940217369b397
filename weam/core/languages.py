"""The language registry: codes, names, families, genera, scripts and resource levels.

The facts live in ``languages.tsv`` beside this file (its header names the sources: Glottolog
top-level families, WALS genera, ISO 15924 scripts, and Joshi et al. 2020's resource classes).
Codes are accepted as ISO 639-1 (``pt``), ISO 639-3 (``por``) and locale forms (``pt_BR``,
``pt-BR``, ``zh_Hans``); a locale resolves to its base language. An unknown code raises
:class:`UnknownLanguageError` with the closest known codes.

The **low-resource group** is every language whose Joshi class is at most
:data:`LOW_RESOURCE_MAX_CLASS` (classes 0-2: "left-behinds", "scraping-bys", "hopefuls").
"""

from __future__ import annotations

import csv
import difflib
import functools
from dataclasses import dataclass
from pathlib import Path

from weam.core.errors import WeamError

REGISTRY_FILE = Path(__file__).with_name("languages.tsv")
LOW_RESOURCE_MAX_CLASS = 2
"""Joshi et al. (2020) classes 0-2 form the low-resource group."""


class UnknownLanguageError(WeamError, ValueError):
    """Also a ValueError, so config validators report it against the offending key."""


@dataclass(frozen=True)
class Language:
    code: str
    """Canonical code: ISO 639-1 where one exists, else ISO 639-3."""
    iso639_3: str
    name: str
    family: str
    """Glottolog top-level family (e.g. Indo-European, Uralic, Atlantic-Congo)."""
    genus: str
    """WALS genus (e.g. Germanic, Romance, Bantoid)."""
    script: str
    """ISO 15924 script code of the standard orthography."""
    joshi_class: int | None
    """Resource class 0-5 from Joshi et al. (2020); None where the taxonomy lists none."""
    xtreme_r: bool
    """One of XTREME-R's 50 languages."""

    @property
    def low_resource(self) -> bool:
        return self.joshi_class is not None and self.joshi_class <= LOW_RESOURCE_MAX_CLASS

    @property
    def resource_level(self) -> str:
        if self.joshi_class is None:
            return "unknown"
        return "low" if self.low_resource else ("high" if self.joshi_class >= 4 else "mid")


@functools.cache
def _registry() -> tuple[dict[str, Language], dict[str, str]]:
    by_code: dict[str, Language] = {}
    aliases: dict[str, str] = {}
    with open(REGISTRY_FILE, encoding="utf-8") as handle:
        rows = csv.DictReader((line for line in handle if not line.startswith("#")), delimiter="\t")
        for row in rows:
            language = Language(
                code=row["code"],
                iso639_3=row["iso639_3"],
                name=row["name"],
                family=row["family"],
                genus=row["genus"],
                script=row["script"],
                joshi_class=int(row["joshi_class"]) if row["joshi_class"] else None,
                xtreme_r=row["xtreme_r"] == "1",
            )
            by_code[language.code] = language
            for alias in (language.code, language.iso639_3, language.name.lower()):
                aliases[alias.lower()] = language.code
    return by_code, aliases


def normalize_code(code: str) -> str:
    """``pt_BR``/``pt-BR``/``zh_Hans`` → ``pt``/``zh``; 3-letter codes map to 2-letter ones."""
    text = code.strip().replace("-", "_")
    base = text.split("_", 1)[0].lower()
    _, aliases = _registry()
    if base in aliases:
        return aliases[base]
    raise UnknownLanguageError(_unknown_message(code))


def _unknown_message(code: str) -> str:
    by_code, _ = _registry()
    close = difflib.get_close_matches(code.lower(), list(by_code), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (
        f"unknown language code {code!r}{hint} (the registry {REGISTRY_FILE.name} knows "
        f"{len(by_code)} languages; add a row there for a new one)"
    )


def get_language(code: str) -> Language:
    """The registry entry for any accepted form of a code; raises UnknownLanguageError."""
    by_code, _ = _registry()
    return by_code[normalize_code(code)]


def all_languages() -> list[Language]:
    return sorted(_registry()[0].values(), key=lambda language: language.code)


def xtreme_r_languages() -> list[Language]:
    return [language for language in all_languages() if language.xtreme_r]


def low_resource_languages(codes: list[str] | None = None) -> list[str]:
    """Codes in the low-resource group, among ``codes`` (all registry languages when None)."""
    pool = [get_language(c) for c in codes] if codes is not None else all_languages()
    return [language.code for language in pool if language.low_resource]


def families_of(codes: list[str]) -> dict[str, list[str]]:
    """Family → codes, for grouping scores by family."""
    groups: dict[str, list[str]] = {}
    for code in codes:
        groups.setdefault(get_language(code).family, []).append(get_language(code).code)
    return groups
