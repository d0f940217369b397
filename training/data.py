"""Training data: sentence pairs and their word alignments → packed, masked batches.

Path of one sentence pair: the Moses lines (words separated by spaces) and the Pharaoh line are
read in step; both sides are tokenized as pre-split words and the word links are projected onto
subword tokens (alignment/projection.py); the pair becomes *units* placed into rows of
``max_seq_len`` tokens:

* ``single`` input (mlm, word_aligned, weam by default): rows come in twos, row 2r holds a
  source side and row 2r+1 the target side of the same pair, so a model row never sees a
  translation while the cross-lingual links stay inside one row pair (and one rank).
* ``pair`` input (tlm, weam with ``weam.input=pair``): one ``[CLS] src [SEP] tgt [SEP]`` unit,
  as XLM's ``concat_batches(..., reset_positions=True)``: the target side's positions restart
  (its first token at 1, as after [CLS]) and the side is an input (token type 1 stands in for
  XLM's language embedding on mBERT-style models; ``data.positions``, ``data.language_input``).

Without ``data.packing`` (the default) a row holds one unit; with it, whole units fill rows up to
``max_seq_len`` (each unit's positions still start at 0; :class:`RowPacker`, best fit over the
batch's rows) and the batch's ``unit_index`` keeps each unit's attention inside the unit
(objectives.unit_attention_mask); with single input a pair's two sides then stay in one pair of
rows but may share a row, and ``Batch.pivot`` marks the source side's tokens. Batches are padded
to their longest row.
Word links become token links per the objective table: every subword pair of a linked word
pair, or (word_aligned) only one-to-one word links, between the two words' last subwords.

Every rank builds the same global batch (deterministic in the seed and the position) and takes
its own slice of rows, so the data position is one integer (examples consumed) and resume is
exact. Pairs are drawn by :class:`PairSampler`; with a token budget the last batch is filled only
up to the budget.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from weam.alignment.pharaoh import check_links, parse_links, read_alignments
from weam.alignment.projection import project_links
from weam.training.config import DataConfig, PairData, PretrainConfig
from weam.core.corpus import iter_lines, read_parallel
from weam.core.errors import InputError

SAMPLER_BLOCK = 4096
TOKENIZE_CHUNK = 256


def check_pair(pair: PairData) -> int:
    """Read the pair once and return its sentence count; raise InputError (file and line) when the
    corpus is broken or its alignment does not belong to it. Called for every pair before training."""
    alignments = read_alignments(pair.alignment) if pair.alignment else None
    count = 0
    for sentence in read_parallel(pair.src_file, pair.tgt_file, fmt="moses"):
        count += 1
        if alignments is None:
            continue
        links = next(alignments, None)
        if links is None:
            raise InputError(pair.alignment, f"has only {count - 1} lines but the corpus has more", count)
        check_links(links, len(sentence.src.split()), len(sentence.tgt.split()), pair.alignment, count)
    if alignments is not None and next(alignments, None) is not None:
        raise InputError(pair.alignment, f"has more lines than the corpus ({count} pairs)", count + 1)
    if count == 0:
        raise InputError(pair.src_file, "no sentence pairs")
    return count


class PairSampler:
    """Which language pair each example comes from: a pure function of (seed, example index)."""

    def __init__(self, sizes: Sequence[int], rule: str, alpha: float, seed: int):
        sizes_arr = np.asarray(sizes, dtype=np.float64)
        weights = {"proportional": sizes_arr, "temperature": sizes_arr**alpha, "uniform": np.ones_like(sizes_arr)}[rule]
        self.probs = weights / weights.sum()
        self.seed = seed

    def block(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, index])
        return rng.choice(len(self.probs), size=SAMPLER_BLOCK, p=self.probs)

    def draws(self, start: int) -> Iterator[int]:
        block_index, offset = divmod(start, SAMPLER_BLOCK)
        for index in itertools.count(block_index):
            yield from self.block(index)[offset:].tolist()
            offset = 0

    def counts(self, n: int) -> np.ndarray:
        """How many of the first ``n`` examples each pair supplied (for resuming readers)."""
        totals = np.zeros(len(self.probs), dtype=np.int64)
        full, rest = divmod(n, SAMPLER_BLOCK)
        for index in range(full):
            totals += np.bincount(self.block(index), minlength=len(self.probs))
        totals += np.bincount(self.block(full)[:rest], minlength=len(self.probs))
        return totals


class LineCycler:
    """The lines of one pair (source, target, links) in order, epoch after epoch, from any position."""

    def __init__(self, pair: PairData, n_lines: int, start: int = 0):
        self.pair = pair
        self.n_lines = n_lines
        self._iter = self._cycle(start % n_lines)

    def _cycle(self, skip: int) -> Iterator[tuple[str, str, str]]:
        while True:
            src = (text for _, text in iter_lines(self.pair.src_file, max_chars=0))
            tgt = (text for _, text in iter_lines(self.pair.tgt_file, max_chars=0))
            ali = (text for _, text in iter_lines(self.pair.alignment, max_chars=0)) if self.pair.alignment else itertools.repeat("")
            yield from itertools.islice(zip(src, tgt, ali), skip, None)
            skip = 0

    def __next__(self) -> tuple[str, str, str]:
        return next(self._iter)


@dataclass
class Unit:
    """One row segment: token ids with their token types, positions and word boundaries."""

    ids: list[int]
    types: list[int]
    positions: list[int]
    word_start: list[bool]
    word_end: list[bool]


@dataclass
class Example:
    """One tokenized pair: its units (two sides, or one concatenated pair) and token links
    (position in the first unit, position in the last unit)."""

    pair: int
    units: list[Unit]
    links: list[tuple[int, int]]
    n_content: int = 0
    """Subword tokens of the two sides, special tokens excluded (data.budget_unit: content)."""

    @property
    def n_tokens(self) -> int:
        return sum(len(unit.ids) for unit in self.units)


@dataclass
class Batch:
    """A global batch of rows, before masking (see objectives.mask_tokens)."""

    input_ids: torch.Tensor
    """[rows, seq] token ids, padded."""
    token_type_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    """[rows, seq] positions; each unit starts at 0, pair input's target side restarts (reset)."""
    special: torch.Tensor
    """[rows, seq] True where a token may not be masked (CLS, SEP, padding)."""
    word_start: torch.Tensor
    """[rows, seq] True on the first subword of each word."""
    word_end: torch.Tensor
    """[rows, seq] True on the last subword of each word."""
    pivot: torch.Tensor
    """[rows, seq] True on the tokens of a pivot (source) side: single input's source units (without
    packing, each even row's unit); all False with pair input."""
    links: torch.Tensor
    """[K, 4] (src row, src pos, tgt row, tgt pos) token links; rows of one pair share a slice."""
    tokens_per_pair: dict[str, int] = field(default_factory=dict)
    unit_index: torch.Tensor | None = None
    """[rows, seq] packing only: 1, 2, ... for the row's units in order, 0 on padding; None without
    packing, where the model sees the plain padding mask exactly as before."""

    def aligned(self) -> torch.Tensor:
        flags = torch.zeros_like(self.special)
        flags[self.links[:, 0], self.links[:, 1]] = True
        flags[self.links[:, 2], self.links[:, 3]] = True
        return flags

    def rows(self, start: int, stop: int) -> Batch:
        keep = (self.links[:, 0] >= start) & (self.links[:, 0] < stop)
        links = self.links[keep].clone()
        links[:, 0] -= start
        links[:, 2] -= start
        return Batch(
            self.input_ids[start:stop], self.token_type_ids[start:stop], self.attention_mask[start:stop],
            self.position_ids[start:stop], self.special[start:stop], self.word_start[start:stop],
            self.word_end[start:stop], self.pivot[start:stop], links,
            unit_index=None if self.unit_index is None else self.unit_index[start:stop],
        )


class PackedStream:
    """Global batches of ``batch_size`` rows, resumable at an exact example position."""

    def __init__(self, data: DataConfig, tokenizer, sizes: Sequence[int], *, mode: str, links: str, seed: int):
        self.data = data
        self.tokenizer = tokenizer
        self.sizes = list(sizes)
        self.mode = mode
        self.link_rule = links
        self.names = [pair.name for pair in data.pairs]
        self.sampler = PairSampler(sizes, data.sampling.rule, data.sampling.alpha, seed)
        self.group = 2 if self.mode == "single" else 1
        if data.batch_size % self.group:
            raise InputError("<config>", f"data.batch_size {data.batch_size} must be even with single-side input")
        self._special_ids = (tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id)
        self.consumed = 0
        self.tokens_seen = Counter({name: 0 for name in self.names})
        self.content_seen = Counter({name: 0 for name in self.names})  # no special tokens
        self.links_seen = Counter({name: 0 for name in self.names})  # subword alignment links
        self._restart()

    @classmethod
    def for_config(cls, config: PretrainConfig, tokenizer, sizes: Sequence[int]) -> PackedStream:
        """The stream a run of ``config`` trains on (input mode and link rule from the objective table)."""
        return cls(config.data, tokenizer, sizes, mode=config.input_mode(), links=config.objective.spec.links,
                   seed=config.seed)

    # --- position -------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"consumed": self.consumed, "tokens_per_pair": dict(self.tokens_seen),
                "content_per_pair": dict(self.content_seen), "links_per_pair": dict(self.links_seen)}

    def restore(self, state: dict) -> None:
        self.consumed = int(state["consumed"])
        self.tokens_seen = Counter(state["tokens_per_pair"])
        self.content_seen = Counter(state.get("content_per_pair", {}))  # absent in older checkpoints
        self.links_seen = Counter(state.get("links_per_pair", {}))
        self._restart()

    def _restart(self) -> None:
        starts = self.sampler.counts(self.consumed)
        self.cyclers = [LineCycler(p, n, int(s)) for p, n, s in zip(self.data.pairs, self.sizes, starts)]
        self.draws = self.sampler.draws(self.consumed)
        self.queue: list[Example] = []

    @property
    def tokens(self) -> int:
        return sum(self.tokens_seen.values())

    @property
    def content_tokens(self) -> int:
        return sum(self.content_seen.values())

    @property
    def budget_spent(self) -> int:
        """Tokens taken so far, in the unit ``data.token_budget`` counts (``data.budget_unit``)."""
        return self.content_tokens if self.data.budget_unit == "content" else self.tokens

    # --- examples -------------------------------------------------------------------------------
    def _peek(self) -> Example:
        if not self.queue:
            picks = list(itertools.islice(self.draws, TOKENIZE_CHUNK))
            self.queue = self._tokenize(picks, [next(self.cyclers[i]) for i in picks])
            self.queue.reverse()
        return self.queue[-1]

    def _tokenize(self, picks: list[int], lines: list[tuple[str, str, str]]) -> list[Example]:
        words_src = [src.split() for src, _, _ in lines]
        words_tgt = [tgt.split() for _, tgt, _ in lines]
        enc_src = self.tokenizer(words_src, is_split_into_words=True, add_special_tokens=False)
        enc_tgt = self.tokenizer(words_tgt, is_split_into_words=True, add_special_tokens=False)
        return [
            self._example(pick, enc_src, enc_tgt, k, parse_links(ali))
            for k, (pick, (_, _, ali)) in enumerate(zip(picks, lines))
        ]

    def _example(self, pick: int, enc_src, enc_tgt, k: int, word_links) -> Example:
        src_ids, tgt_ids = enc_src["input_ids"][k], enc_tgt["input_ids"][k]
        n_src, n_tgt = self._lengths(len(src_ids), len(tgt_ids))
        src_words, tgt_words = enc_src.word_ids(k)[:n_src], enc_tgt.word_ids(k)[:n_tgt]
        links = token_links(word_links, src_words, tgt_words, self.link_rule)
        cls, sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        start_s, end_s = _word_starts(src_words), _word_ends(src_words)
        start_t, end_t = _word_starts(tgt_words), _word_ends(tgt_words)
        if self.mode == "single":
            units = [
                Unit([cls, *src_ids[:n_src], sep], [0] * (n_src + 2), list(range(n_src + 2)),
                     [False, *start_s, False], [False, *end_s, False]),
                Unit([cls, *tgt_ids[:n_tgt], sep], [0] * (n_tgt + 2), list(range(n_tgt + 2)),
                     [False, *start_t, False], [False, *end_t, False]),
            ]
            return Example(pick, units, [(i + 1, j + 1) for i, j in links], n_src + n_tgt)
        n_first = n_src + 2  # [CLS] src [SEP]
        tgt_type = 1 if self.data.language_input == "token_type" else 0
        if self.data.positions == "reset":  # XLM: the target side restarts; its first token sits at 1
            positions = [*range(n_first), *range(1, n_tgt + 2)]
        else:
            positions = list(range(n_first + n_tgt + 1))
        unit = Unit([cls, *src_ids[:n_src], sep, *tgt_ids[:n_tgt], sep], [0] * n_first + [tgt_type] * (n_tgt + 1),
                    positions, [False, *start_s, False, *start_t, False], [False, *end_s, False, *end_t, False])
        return Example(pick, [unit], [(i + 1, j + n_first) for i, j in links], n_src + n_tgt)

    def _lengths(self, n_src: int, n_tgt: int) -> tuple[int, int]:
        room = self.data.max_seq_len - 2
        if self.mode == "single":
            return min(n_src, room), min(n_tgt, room)
        room -= 1
        if n_src + n_tgt <= room:
            return n_src, n_tgt
        half = room // 2
        if n_src <= half:
            return n_src, room - n_src
        if n_tgt <= half:
            return room - n_tgt, n_tgt
        return half, room - half

    # --- batches --------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        while (batch := self.next_batch()) is not None:
            yield batch

    def next_batch(self) -> Batch | None:
        """The next global batch, or None when the token budget is spent."""
        packer = RowPacker(self.group, self.data.batch_size, self.data.max_seq_len, self.data.packing)
        budget = self.data.token_budget
        batch_counts: Counter = Counter()
        while True:
            example = self._peek()
            cost = example.n_content if self.data.budget_unit == "content" else example.n_tokens
            if budget is not None and self.budget_spent + cost > budget:
                break
            if not packer.add(example):
                break
            self.queue.pop()
            self.consumed += 1
            self.tokens_seen[self.names[example.pair]] += example.n_tokens
            self.content_seen[self.names[example.pair]] += example.n_content
            self.links_seen[self.names[example.pair]] += len(example.links)
            batch_counts[self.names[example.pair]] += example.n_tokens
        rows = packer.filled_rows()
        if not rows:
            return None
        width = min(self.data.max_seq_len, -(-max(packer.lengths) // 8) * 8)
        batch = _collate(rows, self.data.batch_size, width, self._special_ids, self.mode, self.data.packing)
        batch.tokens_per_pair = dict(batch_counts)
        return batch


def token_links(word_links, src_words: Sequence[int | None], tgt_words: Sequence[int | None], rule: str):
    """Token links (positions in the two token sequences) from word links, per the objective's rule."""
    if rule == "subwords":
        return project_links(word_links, src_words, tgt_words)[0]
    # Cao et al. 2020 (keep_1to1 in their code): only links whose two words take part in no other
    # link, between the words' last subwords.
    word_links = set(word_links)
    src_count = Counter(i for i, _ in word_links)
    tgt_count = Counter(j for _, j in word_links)
    last_src = {w: k for k, w in enumerate(src_words) if w is not None}
    last_tgt = {w: k for k, w in enumerate(tgt_words) if w is not None}
    return sorted((last_src[i], last_tgt[j]) for i, j in word_links
                  if src_count[i] == 1 and tgt_count[j] == 1 and i in last_src and j in last_tgt)


def _word_starts(word_ids: Sequence[int | None]) -> list[bool]:
    return [w is not None and (k == 0 or word_ids[k - 1] != w) for k, w in enumerate(word_ids)]


def _word_ends(word_ids: Sequence[int | None]) -> list[bool]:
    n = len(word_ids)
    return [w is not None and (k == n - 1 or word_ids[k + 1] != w) for k, w in enumerate(word_ids)]


class RowPacker:
    """The rows of one global batch as it fills: ``rows`` (per row: example, unit index, offset) and
    ``lengths`` (tokens used per row). Rows come in groups of ``group`` (single input: two rows, so a
    pair's two sides stay in one micro-batch and one rank); an example's units go into one group and
    a unit is never split.

    Without packing an example opens a new group, its source side in the group's first row and its
    target side in the second, as one unit per row always did. With packing the batch takes the
    stream's examples in order, none skipped, so the data position stays one integer and resume
    stays exact: each example goes to the open group it fits best (least room left after it), or
    opens a new group while rows remain; when it fits nowhere, every example of the batch so far
    and it are packed again, longest first, each into the best-fitting group (best-fit decreasing).
    Only if that fails too is the batch full, and the example starts the next one. Ties go to the
    lowest group and to the first layout in :meth:`_layouts`, so the rows are deterministic. With
    single input each side may take either row of its group (the unit mask keeps the two sides from
    seeing each other; ``Batch.pivot`` marks the source side's tokens): a target side longer than its
    source no longer leaves the source row short. Next fit (only the newest group tried, each side
    in its fixed row) left 20-35 % of the rows empty on the benchmark's and the demo's data."""

    def __init__(self, group: int, batch_size: int, max_len: int, packing: bool):
        self.group, self.n_groups, self.max_len, self.packing = group, batch_size // group, max_len, packing
        self.rows: list[list[tuple[Example, int, int]]] = []
        self.lengths: list[int] = []
        self.examples: list[Example] = []

    def add(self, example: Example) -> bool:
        """Place the example; False (nothing changed) when the batch has no room for it."""
        if not self.packing:
            if len(self.rows) // self.group >= self.n_groups:
                return False
            self._open()
            self._put(example, len(self.rows) - self.group, tuple(range(self.group)))
            self.examples.append(example)
            return True
        place = self._best_fit(example, self.lengths)
        if place is None and len(self.rows) // self.group < self.n_groups:
            self._open()
            place = self._best_fit(example, self.lengths)
        if place is not None:
            self._put(example, *place)
            self.examples.append(example)
            return True
        room = self.n_groups * self.group * self.max_len - sum(self.lengths)
        return room >= example.n_tokens and self._repack([*self.examples, example])

    def filled_rows(self) -> list[list[tuple[Example, int, int]]]:
        """The rows up to the last group holding a unit (a budget can end a batch early)."""
        used = max((g + 1 for g in range(len(self.rows) // self.group)
                    if any(self.rows[g * self.group : (g + 1) * self.group])), default=0)
        return self.rows[: used * self.group]

    def _layouts(self, n_units: int) -> list[tuple[int, ...]]:
        """Which row of a group each unit may take: the fixed layout (unit k in row k) first; with
        single input, then the sides swapped and both sides in one row."""
        fixed = tuple(range(n_units))
        if self.group == 1 or n_units != self.group:
            return [fixed]
        return [fixed, *(layout for layout in itertools.product(range(self.group), repeat=n_units) if layout != fixed)]

    def _best_fit(self, example: Example, lengths: list[int]) -> tuple[int, tuple[int, ...]] | None:
        """(first row of the group, row of each unit within it) with the least room left, or None."""
        sizes = [len(unit.ids) for unit in example.units]
        layouts = self._layouts(len(sizes))
        best, best_key = None, None
        for first in range(0, len(lengths), self.group):
            used = lengths[first : first + self.group]
            room = sum(self.max_len - u for u in used) - sum(sizes)
            if room < 0 or (best_key is not None and room > best_key[0]):
                continue
            for layout in layouts:
                after = list(used)
                for k, size in zip(layout, sizes):
                    after[k] += size
                if max(after) > self.max_len:
                    continue
                key = (room, -(self.max_len - min(after)))  # then the layout leaving the widest row free
                if best_key is None or key < best_key:
                    best, best_key = (first, layout), key
        return best

    def _repack(self, examples: list[Example]) -> bool:
        def longest_first(i: int) -> tuple[int, int, int]:
            sizes = [len(unit.ids) for unit in examples[i].units]
            return -max(sizes), -sum(sizes), i

        lengths = [0] * (self.n_groups * self.group)
        places: dict[int, tuple[int, tuple[int, ...]]] = {}
        order = sorted(range(len(examples)), key=longest_first)
        for i in order:
            place = self._best_fit(examples[i], lengths)
            if place is None:
                return False
            places[i] = place
            for k, unit in zip(place[1], examples[i].units):
                lengths[place[0] + k] += len(unit.ids)
        self.rows = [[] for _ in lengths]
        self.lengths = [0] * len(lengths)
        for i in order:
            self._put(examples[i], *places[i])
        self.examples = examples
        return True

    def _open(self) -> None:
        self.rows.extend([] for _ in range(self.group))
        self.lengths.extend(0 for _ in range(self.group))

    def _put(self, example: Example, first: int, layout: tuple[int, ...]) -> None:
        for k, (row, unit) in enumerate(zip(layout, example.units)):
            r = first + row
            self.rows[r].append((example, k, self.lengths[r]))
            self.lengths[r] += len(unit.ids)


def _collate(rows, batch_size: int, width: int, special_ids: tuple[int, int, int], mode: str,
             packing: bool = False) -> Batch:
    pad_id, cls_id, sep_id = special_ids
    ids = np.full((batch_size, width), pad_id, dtype=np.int64)
    types, attention, positions = np.zeros_like(ids), np.zeros_like(ids), np.zeros_like(ids)
    unit_index = np.zeros_like(ids)
    starts, ends = np.zeros((batch_size, width), dtype=bool), np.zeros((batch_size, width), dtype=bool)
    links: list[tuple[int, int, int, int]] = []
    placed: dict[int, dict[int, tuple[int, int]]] = {}  # example -> unit index -> (row, offset)
    pivot = np.zeros((batch_size, width), dtype=bool)
    for r, row in enumerate(rows):
        for n, (example, k, offset) in enumerate(row, start=1):
            unit = example.units[k]
            end = offset + len(unit.ids)
            ids[r, offset:end] = unit.ids
            types[r, offset:end] = unit.types
            positions[r, offset:end] = unit.positions
            attention[r, offset:end] = 1
            unit_index[r, offset:end] = n
            starts[r, offset:end] = unit.word_start
            ends[r, offset:end] = unit.word_end
            pivot[r, offset:end] = mode == "single" and k == 0
            placed.setdefault(id(example), {})[k] = (r, offset)
            if len(placed[id(example)]) == len(example.units):
                (r_src, o_src), (r_tgt, o_tgt) = placed[id(example)][0], placed[id(example)][len(example.units) - 1]
                links.extend((r_src, o_src + i, r_tgt, o_tgt + j) for i, j in example.links)
    # Rows left empty at the end of a budget keep one visible token so attention stays finite.
    attention[len(rows) :, 0] = 1
    unit_index[len(rows) :, 0] = 1
    special = (attention == 0) | (ids == pad_id) | (ids == cls_id) | (ids == sep_id)
    special[len(rows) :] = True
    link_tensor = torch.tensor(links, dtype=torch.long).reshape(-1, 4)
    return Batch(torch.from_numpy(ids), torch.from_numpy(types), torch.from_numpy(attention),
                 torch.from_numpy(positions), torch.from_numpy(special), torch.from_numpy(starts),
                 torch.from_numpy(ends), torch.from_numpy(pivot), link_tensor,
                 unit_index=torch.from_numpy(unit_index) if packing else None)


def count_lines_checked(pairs: Sequence[PairData]) -> list[int]:
    """Validate every pair (see check_pair) and return their sentence counts."""
    return [check_pair(pair) for pair in pairs]


def corpus_datasets(pairs: Sequence[PairData], sizes: Sequence[int]) -> list[dict[str, Any]]:
    """Each pair as the MLflow dataset a pre-training run reads (:meth:`weam.core.tracking.RunLogger.log_datasets`):
    name ``<src>-<tgt>``, digest the first 8 hex digits of each file's sha256 as the data (and align)
    stage's manifest records it (source side, target side, alignment), source the files, profile the
    pair's sentence count."""
    from weam.core.manifest import recorded_digest

    datasets = []
    for pair, size in zip(pairs, sizes):
        files = {"src": pair.src_file, "tgt": pair.tgt_file, **({"alignment": pair.alignment} if pair.alignment else {})}
        digests = {role: recorded_digest(path) for role, path in files.items()}
        datasets.append({
            "name": pair.name, "digest": "".join(digest[:8] for digest in digests.values()),
            "source": json.dumps({"uri": Path(pair.src_file).resolve().parent.as_uri(),
                                  "files": {role: str(Path(path).resolve()) for role, path in files.items()}}),
            "profile": json.dumps({"num_rows": size, "sha256": digests})})
    return datasets
