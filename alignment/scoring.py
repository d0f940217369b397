"""Alignment error rate (Och & Ney 2003) against a gold file with sure and possible links.

Gold format: one line per sentence pair, 0-based links separated by spaces. ``i-j`` is a *sure*
link; ``i?j`` or ``ipj`` is a *possible* one (both markers occur in public gold sets). Sure links
count as possible too (S ⊆ P). With predicted links A:
precision = |A∩P| / |A|, recall = |A∩S| / |S|, AER = 1 − (|A∩S| + |A∩P|) / (|A| + |S|).
"""

from __future__ import annotations

import re
from pathlib import Path

from collections.abc import Iterator

from weam.alignment.pharaoh import Link, check_links, read_alignments
from weam.core.corpus import iter_lines
from weam.core.errors import InputError

_GOLD_LINK = re.compile(r"^([0-9]+)([-?p])([0-9]+)$")  # ASCII digits: \d also matches other scripts' digits


def parse_gold(text: str, path: str | Path = "<string>", line: int | None = None) -> tuple[set[Link], set[Link]]:
    """(sure, possible) links of one gold line; possible includes sure."""
    sure, possible = set(), set()
    for item in text.split():
        match = _GOLD_LINK.match(item)
        if match is None:
            raise InputError(path, f"bad gold link {item!r}; expected i-j (sure), i?j or ipj (possible)", line)
        link = (int(match[1]), int(match[3]))
        possible.add(link)
        if match[2] == "-":
            sure.add(link)
    return sure, possible


def score_alignments(pred_path: str | Path, gold_path: str | Path, src_path: str | Path | None = None,
                     tgt_path: str | Path | None = None) -> dict[str, float]:
    """Precision, recall and AER of a Pharaoh file against a gold file with the same line count.

    With the corpus (``src_path``/``tgt_path``, line-parallel, space-separated words) every link of
    both files is checked against its sentence's length: a gold link past the end of a sentence is
    refused (it would count as a miss no aligner can avoid, and lower the recall silently)."""
    gold_lines = iter_lines(gold_path, max_chars=0)
    corpus = _sentence_lengths(src_path, tgt_path)
    n_pred = n_sure = n_hit_sure = n_hit_possible = 0
    for number, pred in enumerate(read_alignments(pred_path), start=1):
        gold = next(gold_lines, None)
        if gold is None:
            raise InputError(gold_path, f"has fewer lines than {pred_path}", number)
        sure, possible = parse_gold(gold[1], gold_path, gold[0])
        if corpus is not None:
            lengths = next(corpus, None)
            if lengths is None:
                raise InputError(src_path, f"has fewer lines than {pred_path}", number)
            check_links(sorted(possible), *lengths, gold_path, gold[0])
            check_links(pred, *lengths, pred_path, number)
        predicted = set(pred)
        n_pred += len(predicted)
        n_sure += len(sure)
        n_hit_sure += len(predicted & sure)
        n_hit_possible += len(predicted & possible)
    if next(gold_lines, None) is not None:
        raise InputError(pred_path, f"has fewer lines than {gold_path}")
    if corpus is not None and next(corpus, None) is not None:
        raise InputError(pred_path, f"has fewer lines than {src_path}")
    if n_pred + n_sure == 0:
        raise InputError(gold_path, "neither the prediction nor the gold file has any sure link")
    return {
        "precision": n_hit_possible / n_pred if n_pred else 0.0,
        "recall": n_hit_sure / n_sure if n_sure else 0.0,
        "aer": 1.0 - (n_hit_sure + n_hit_possible) / (n_pred + n_sure),
    }


def _sentence_lengths(src_path: str | Path | None, tgt_path: str | Path | None) -> Iterator[tuple[int, int]] | None:
    """(source words, target words) per line of a line-parallel corpus; None without one."""
    if src_path is None and tgt_path is None:
        return None
    if src_path is None or tgt_path is None:
        raise InputError(src_path or tgt_path, "give both --src and --tgt (the corpus the links index)")

    def pairs():
        targets = iter_lines(tgt_path, max_chars=0)
        for number, source in iter_lines(src_path, max_chars=0):
            target = next(targets, None)
            if target is None:
                raise InputError(tgt_path, f"has fewer lines than {src_path}", number)
            yield len(source.split()), len(target[1].split())

    return pairs()
