"""Pharaoh alignment format: one line per sentence pair, space-separated ``i-j`` links
(0-based source word ``i`` aligned to 0-based target word ``j``). An empty line means no links.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from weam.core.corpus import iter_lines
from weam.core.errors import InputError

Link = tuple[int, int]
_LINK = re.compile(r"([0-9]+)-([0-9]+)")  # ASCII digits only: str.isdigit() also accepts '²', which int() rejects


def parse_links(text: str, path: str | Path = "<string>", line: int | None = None) -> list[Link]:
    links = []
    for item in text.split():
        match = _LINK.fullmatch(item)
        if match is None:
            raise InputError(path, f"bad alignment link {item!r}; expected i-j with 0-based integers", line)
        links.append((int(match[1]), int(match[2])))
    return links


def format_links(links: Iterable[Link]) -> str:
    return " ".join(f"{i}-{j}" for i, j in sorted(set(links)))


def read_alignments(path: str | Path) -> Iterator[list[Link]]:
    """Stream the links of each line of a Pharaoh file."""
    for number, text in iter_lines(path, max_chars=0):
        yield parse_links(text, path, number)


def check_links(links: list[Link], n_src: int, n_tgt: int, path: str | Path, line: int) -> None:
    """Raise if a link points past the end of its sentence (alignment does not match corpus)."""
    for i, j in links:
        if i >= n_src or j >= n_tgt:
            raise InputError(
                path,
                f"link {i}-{j} is out of range for a pair of {n_src} source and {n_tgt} target words "
                "(does this alignment belong to this corpus?)",
                line,
            )
