"""A small real parallel corpus from the translations Django ships (``django/**/locale/<lang>/
LC_MESSAGES/django.po``: English msgid → translated msgstr). Used by the alignment tests and
benchmark so that they run offline on real sentence pairs, not synthetic ones."""

from __future__ import annotations

import re
from pathlib import Path

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> str:
    """Words and single punctuation marks separated by single spaces."""
    return " ".join(_TOKEN.findall(text))


def django_pairs(lang: str = "de", max_words: int = 40) -> list[tuple[str, str]]:
    """Unique (English, ``lang``) tokenized pairs, in a stable order."""
    import django
    import polib

    root = Path(django.__file__).parent
    seen: set[tuple[str, str]] = set()
    pairs = []
    for po_path in sorted(root.glob(f"**/locale/{lang}/LC_MESSAGES/django.po")):
        for entry in polib.pofile(str(po_path)):
            if entry.obsolete or "fuzzy" in entry.flags or not entry.msgstr or entry.msgid_plural:
                continue
            pair = (tokenize(entry.msgid), tokenize(entry.msgstr))
            if not all(pair) or max(len(s.split()) for s in pair) > max_words or pair in seen:
                continue
            seen.add(pair)
            pairs.append(pair)
    return pairs


def write_corpus(pairs: list[tuple[str, str]], folder: Path, copies: int = 1, name: str = "corpus") -> tuple[Path, Path]:
    """Write ``copies`` back-to-back copies of ``pairs`` as a Moses pair ``name.en``/``name.xx``."""
    folder.mkdir(parents=True, exist_ok=True)
    src, tgt = folder / f"{name}.src", folder / f"{name}.tgt"
    with open(src, "w", encoding="utf-8") as s, open(tgt, "w", encoding="utf-8") as t:
        for _ in range(copies):
            for left, right in pairs:
                s.write(left + "\n")
                t.write(right + "\n")
    return src, tgt
