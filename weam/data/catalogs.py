"""Where pip packages keep their translations, and how to read (English, translation) strings from them.

Three sources, each read with the library that owns the format:

* ``django``: gettext ``.po`` catalogs, ``django/conf/locale/<loc>/LC_MESSAGES/django.po`` and
  ``django/contrib/<app>/locale/<loc>/LC_MESSAGES/django{,js}.po``, read with polib (fuzzy,
  obsolete and untranslated entries skipped; a plural entry gives its singular and plural form).
* ``pycountry``: iso-codes' compiled ``.mo`` catalogs (country, currency, script, language names),
  read with the standard library's :mod:`gettext` (compiled catalogs hold translated entries only).
* ``babel``: CLDR display names (territories, languages, scripts, currencies, stand-alone month
  and weekday names), English names paired with the target locale's by CLDR key.

One locale per registry language and source: the base locale (``de``, ``pt``), else the first of
:data:`LOCALE_FALLBACKS` (``zh`` → ``zh_Hans``/``zh_CN``). Regional and script variants
(``pt_BR``, ``es_MX``, ``sr_Latn``, ``zh_Hant``) are skipped, never merged: merging would mix
orthographies and spelling norms within one language's data.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from weam.data.config import DemoSource, PycountryDomain

LOCALE_FALLBACKS: dict[str, tuple[str, ...]] = {
    "zh": ("zh_Hans", "zh_CN"),
    "nb": ("nb_NO",),
    "tl": ("fil",),
}
"""Locale names tried after the registry code itself, in order, when no base locale exists."""

DJANGO_DOMAINS = ("django.po", "djangojs.po")


@dataclass(frozen=True)
class Catalog:
    """One translation file of one source for one target language."""

    source: DemoSource
    locale: str
    path: Path
    key: str
    """Stable name for manifests: ``source:path-inside-the-package``."""
    domain: str = ""
    """pycountry's iso-codes domain, babel's locale id; empty for Django."""


def _candidates(code: str) -> tuple[str, ...]:
    return (code, *LOCALE_FALLBACKS.get(code, ()))


@functools.cache
def _django_locale_dirs() -> dict[str, list[Path]]:
    """Locale name → its LC_MESSAGES folders across Django's packages (one directory walk)."""
    import django

    root = Path(django.__file__).parent
    found: dict[str, list[Path]] = {}
    for messages in sorted(root.glob("**/locale/*/LC_MESSAGES")):
        found.setdefault(messages.parent.name, []).append(messages)
    return found


def _pycountry_root() -> Path:
    import pycountry

    return Path(pycountry.__file__).parent / "locales"


def _babel_root() -> Path:
    import babel

    return Path(babel.__file__).parent / "locale-data"


def django_catalogs(code: str) -> list[Catalog]:
    import django

    package = Path(django.__file__).parent.parent
    dirs = _django_locale_dirs()
    locale = next((name for name in _candidates(code) if name in dirs), None)
    if locale is None:
        return []
    return [
        Catalog("django", locale, path, f"django:{path.relative_to(package)}")
        for folder in dirs[locale]
        for path in (folder / name for name in DJANGO_DOMAINS)
        if path.is_file()
    ]


def pycountry_catalogs(code: str, domains: list[PycountryDomain]) -> list[Catalog]:
    root = _pycountry_root()
    locale = next((name for name in _candidates(code) if (root / name).is_dir()), None)
    if locale is None:
        return []
    paths = [(domain, root / locale / "LC_MESSAGES" / f"{domain}.mo") for domain in sorted(domains)]
    return [
        Catalog("pycountry", locale, path, f"pycountry:{path.relative_to(root.parent.parent)}", domain)
        for domain, path in paths
        if path.is_file()
    ]


def babel_catalogs(code: str) -> list[Catalog]:
    from babel import localedata

    locale = next((name for name in _candidates(code) if localedata.exists(name)), None)
    if locale is None:
        return []
    root = _babel_root()
    # CLDR resolves a locale through its parents; the pair's data change when any of these do.
    files = {name: root / f"{name}.dat" for name in ("root", "en", locale)}
    return [
        Catalog("babel", locale, path, f"babel:{name}.dat", locale)
        for name, path in files.items()
        if path.is_file()
    ]


def find_catalogs(code: str, sources: list[DemoSource], domains: list[PycountryDomain]) -> list[Catalog]:
    """Every translation file the demo reads for registry language ``code``."""
    catalogs: list[Catalog] = []
    if "django" in sources:
        catalogs += django_catalogs(code)
    if "pycountry" in sources:
        catalogs += pycountry_catalogs(code, domains)
    if "babel" in sources:
        catalogs += babel_catalogs(code)
    return catalogs


def read_catalog(catalog: Catalog) -> Iterator[tuple[str, str]]:
    """Raw (English, translation) strings, before any cleaning."""
    if catalog.source == "django":
        yield from _read_po(catalog.path)
    elif catalog.source == "pycountry":
        yield from _read_mo(catalog.path)
    elif catalog.path.stem == catalog.locale:
        # babel: the three .dat files of one locale are one catalog; read it once, via the locale's.
        yield from _read_cldr(catalog.locale)


def _read_po(path: Path) -> Iterator[tuple[str, str]]:
    import polib

    for entry in polib.pofile(str(path)):
        if entry.obsolete or entry.fuzzy:
            continue
        if entry.msgid_plural:
            forms = entry.msgstr_plural
            singular = forms.get(0, "")
            # Languages with one plural form (ja, zh, …) have only msgstr[0]: it serves both.
            yield entry.msgid, singular
            yield entry.msgid_plural, forms.get(1, singular)
        else:
            yield entry.msgid, entry.msgstr


def _read_mo(path: Path) -> Iterator[tuple[str, str]]:
    with open(path, "rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog
    for msgid, msgstr in catalog.items():
        if isinstance(msgid, tuple):  # plural forms: iso-codes has none, but keep the singular
            if msgid[1] != 0:
                continue
            msgid = msgid[0]
        if msgid:  # the empty msgid is the catalog header
            yield msgid.split("\x04")[-1], msgstr


def _read_cldr(locale_id: str) -> Iterator[tuple[str, str]]:
    from babel import Locale

    english, target = Locale("en"), Locale.parse(locale_id)
    for table in ("territories", "languages", "scripts"):
        yield from _by_key(getattr(english, table), getattr(target, table))
    yield from _by_key(
        {code: name for code, name in english.currencies.items()},
        {code: name for code, name in target.currencies.items()},
    )
    for table in ("months", "days"):
        yield from _by_key(
            dict(getattr(english, table)["stand-alone"]["wide"]),
            dict(getattr(target, table)["stand-alone"]["wide"]),
        )


def _by_key(english: dict, target: dict) -> Iterator[tuple[str, str]]:
    for key in sorted(english, key=str):
        if key in target:
            yield english[key], target[key]
