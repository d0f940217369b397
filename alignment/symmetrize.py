"""Symmetrization of two directional alignments, with the semantics of fast_align's ``atools -c``.

Both inputs are links ``(i, j)`` in source-target orientation (the reverse direction already
flipped, as fast_align ``-r`` and eflomal write it). ``grow-diag-final-and`` starts from the
intersection, repeatedly adds union links that touch an already-aligned neighbour (8-neighbourhood)
and leave at least one of their two words unaligned, sweeping the candidates in (i, j) order until
nothing changes; then adds forward, then reverse links whose two words are both still unaligned.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from weam.alignment.pharaoh import Link

Heuristic = Literal["grow-diag-final-and", "intersection", "union"]
_NEIGHBOURS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))


def symmetrize(forward: Iterable[Link], reverse: Iterable[Link], heuristic: Heuristic) -> list[Link]:
    fwd, rev = set(forward), set(reverse)
    if heuristic == "intersection":
        return sorted(fwd & rev)
    if heuristic == "union":
        return sorted(fwd | rev)
    if heuristic == "grow-diag-final-and":
        return grow_diag_final_and(fwd, rev)
    raise ValueError(f"unknown symmetrization {heuristic!r}")


def grow_diag_final_and(fwd: set[Link], rev: set[Link]) -> list[Link]:
    result = fwd & rev
    src_aligned = {i for i, _ in result}
    tgt_aligned = {j for _, j in result}

    def add(link: Link) -> None:
        result.add(link)
        src_aligned.add(link[0])
        tgt_aligned.add(link[1])

    candidates = sorted((fwd | rev) - result)
    changed = bool(candidates)
    while changed:
        changed = False
        for i, j in candidates:
            if (i, j) in result or (i in src_aligned and j in tgt_aligned):
                continue
            if any((i + di, j + dj) in result for di, dj in _NEIGHBOURS):
                add((i, j))
                changed = True
        candidates = [link for link in candidates if link not in result]
    for direction in (fwd, rev):
        for i, j in sorted(direction):
            if i not in src_aligned and j not in tgt_aligned:
                add((i, j))
    return sorted(result)
