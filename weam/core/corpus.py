"""Streaming readers for parallel corpora: Moses pairs, TSV, and fast_align's ``src ||| tgt``.

Nothing here holds a corpus in memory. Every reader checks each line as it goes and raises
:class:`~weam.core.errors.InputError` naming the file and the 1-based line: a line-count mismatch,
invalid UTF-8, an empty side, a line longer than ``max_chars``, or no pairs at all. A UTF-8
byte-order mark at the start of a file is dropped (it is not part of the first word).

``DEFAULT_MAX_CHARS`` is the one line-length limit of every stage that reads a corpus (``data
check``, ``align run``, ``pretrain``): a corpus one of them accepts, all of them accept. It exists
because aligners are quadratic in sentence length (one 10,000-word line made fast_align take
minutes and come back with an empty alignment) and training truncates long lines anyway.

Formats (plain or ``.gz``):

* ``moses``: two files, ``corpus.en`` and ``corpus.de``, line *i* of one translating line *i*
  of the other.
* ``tsv``: one file, ``source<TAB>target`` per line.
* ``fast_align``: one file, ``source ||| target`` per line (fast_align's input format).
"""

from __future__ import annotations

import contextlib
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from weam.core.errors import InputError

CorpusFormat = Literal["auto", "moses", "tsv", "fast_align"]
FAST_ALIGN_SEPARATOR = " ||| "
DEFAULT_MAX_CHARS = 4096
"""Longest line (characters, without the newline) a corpus may have; 0 disables the check."""
BOM = "\ufeff"


@dataclass(frozen=True)
class SentencePair:
    src: str
    tgt: str
    line: int
    """1-based line number in the input file(s)."""


def open_text(path: str | Path, mode: str = "rt") -> IO:
    """Open a plain or gzip file; binary modes return bytes lines."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, mode.replace("t", "") + ("t" if "t" in mode else ""), **_text_kwargs(mode))
    return open(path, mode, **_text_kwargs(mode))


def _text_kwargs(mode: str) -> dict:
    return {"encoding": "utf-8", "newline": "\n"} if "b" not in mode else {}


def iter_lines(path: str | Path, max_chars: int = DEFAULT_MAX_CHARS) -> Iterator[tuple[int, str]]:
    """(line number, text without newline) for each line; decode and length errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    with open_text(path, "rb") as handle:
        try:
            for number, raw in enumerate(handle, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(path, f"invalid UTF-8 at byte {exc.start} of the line", number) from None
                text = text.rstrip("\n").rstrip("\r")
                if number == 1 and text.startswith(BOM):
                    text = text[1:]
                if max_chars and len(text) > max_chars:
                    raise InputError(
                        path, f"line has {len(text)} characters, more than the limit {max_chars} of every "
                        "weam stage (data check, align, pretrain); split or drop it", number
                    )
                yield number, text
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(path, f"cannot read: {exc}") from None


def detect_format(src: Path, tgt: Path | None) -> CorpusFormat:
    if tgt is not None:
        return "moses"
    name = src.name.removesuffix(".gz")
    if name.endswith(".tsv"):
        return "tsv"
    for _, text in iter_lines(src):
        return "fast_align" if FAST_ALIGN_SEPARATOR in text else "tsv"
    return "fast_align"


def read_parallel(
    src: str | Path,
    tgt: str | Path | None = None,
    *,
    fmt: CorpusFormat = "auto",
    max_chars: int = DEFAULT_MAX_CHARS,
    allow_empty: bool = False,
) -> Iterator[SentencePair]:
    """Stream sentence pairs from a Moses pair (``src`` + ``tgt``) or a one-file format."""
    src = Path(src)
    tgt = Path(tgt) if tgt is not None else None
    if fmt == "auto":
        fmt = detect_format(src, tgt)
    if fmt == "moses":
        if tgt is None:
            raise InputError(src, "moses format needs a target file as well")
        pairs = _read_moses(src, tgt, max_chars)
    elif tgt is not None:
        raise InputError(tgt, f"a {fmt} corpus is one file; got a second file")
    else:
        pairs = _read_one_file(src, fmt, max_chars)
    count = 0
    for pair, src_path, tgt_path in pairs:
        if not allow_empty:
            if not pair.src.strip():
                raise InputError(src_path, "empty source side", pair.line)
            if not pair.tgt.strip():
                raise InputError(tgt_path, "empty target side", pair.line)
        count += 1
        yield pair
    if count == 0:
        raise InputError(src, "no sentence pairs (the corpus is empty)")


def _read_moses(src: Path, tgt: Path, max_chars: int):
    src_lines = iter_lines(src, max_chars)
    tgt_lines = iter_lines(tgt, max_chars)
    count = 0
    for left, right in _zip_longest(src_lines, tgt_lines):
        if left is None or right is None:
            short, long_ = (src, tgt) if left is None else (tgt, src)
            raise InputError(
                long_, f"line-count mismatch: {short} has only {count} lines, this file has more", count + 1
            )
        count += 1
        yield SentencePair(left[1], right[1], left[0]), src, tgt


def _zip_longest(a: Iterator, b: Iterator) -> Iterator[tuple]:
    sentinel = object()
    while True:
        x, y = next(a, sentinel), next(b, sentinel)
        if x is sentinel and y is sentinel:
            return
        yield (None if x is sentinel else x), (None if y is sentinel else y)


def _read_one_file(path: Path, fmt: CorpusFormat, max_chars: int):
    separator = "\t" if fmt == "tsv" else FAST_ALIGN_SEPARATOR
    for number, text in iter_lines(path, max_chars):
        parts = text.split(separator)
        if len(parts) != 2:
            shown = "TAB" if fmt == "tsv" else repr(FAST_ALIGN_SEPARATOR)
            raise InputError(path, f"expected exactly one {shown} separator, found {len(parts) - 1}", number)
        yield SentencePair(parts[0].strip(), parts[1].strip(), number), path, path


def count_lines(path: str | Path) -> int:
    with open_text(path, "rb") as handle:
        return sum(1 for _ in handle)


@contextlib.contextmanager
def open_output(path: str | Path) -> Iterator[io.TextIOBase]:
    """Write a text file atomically (see :func:`weam.core.manifest.atomic_write`)."""
    from weam.core.manifest import atomic_write

    with atomic_write(path) as handle:
        yield handle
