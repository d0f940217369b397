"""Packed rows (data.packing) without cross-talk: a real (tiny, random) BERT gives every unit of a
packed batch the same MLM loss as when the unit sits alone in a padded row, under both the eager
and the sdpa attention of the installed transformers; without the block mask it does not."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from tests.training.handmade import ID, VOCAB, tokenizer, write_corpus
from weam.training.api import to_model_inputs
from weam.training.config import DataConfig, ObjectiveConfig, PairData
from weam.training.data import Batch, PackedStream
from weam.training.objectives import IGNORE, PretrainingModel, unit_attention_mask

MASK = ID["[MASK]"]


@pytest.fixture(scope="module")
def pair_data(tmp_path_factory) -> PairData:
    return PairData(**write_corpus(tmp_path_factory.mktemp("handmade")))


def packed_batch(pair_data, mode: str) -> Batch:
    config = DataConfig(pairs=[pair_data], batch_size=4 if mode == "single" else 2,
                        max_seq_len=16 if mode == "single" else 32, packing=True)
    return PackedStream(config, tokenizer(), [2], mode=mode, links="subwords", seed=0).next_batch()


def units_of(batch: Batch) -> list[tuple[int, torch.Tensor]]:
    """(row, token positions) of every unit in the packed batch."""
    return [(r, (batch.unit_index[r] == n).nonzero().squeeze(1))
            for r in range(batch.input_ids.shape[0]) for n in range(1, int(batch.unit_index[r].max()) + 1)]


def one_unit_per_row(batch: Batch, units) -> Batch:
    """The same units, each alone at the start of its own padded row (the unpacked layout)."""
    width = max(len(cols) for _, cols in units)
    shape = (len(units), width)
    out = {name: torch.zeros(shape, dtype=getattr(batch, name).dtype)
           for name in ("input_ids", "token_type_ids", "attention_mask", "position_ids", "word_start", "word_end",
                        "pivot")}
    out["input_ids"].fill_(ID["[PAD]"])
    moved = {}  # (packed row, position) -> (row alone, position)
    for k, (r, cols) in enumerate(units):
        for name, tensor in out.items():
            tensor[k, : len(cols)] = getattr(batch, name)[r, cols]
        moved.update({(r, int(c)): (k, i) for i, c in enumerate(cols)})
    links = [(*moved[(r, p)], *moved[(r2, p2)]) for r, p, r2, p2 in batch.links.tolist()]
    special = out["attention_mask"] == 0
    return Batch(**out, special=special, links=torch.tensor(links, dtype=torch.long).reshape(-1, 4))


def masked_tokens(units) -> list[list[int]]:
    """Per unit, the offsets inside the unit to mask: its first and last content tokens."""
    return [[1, len(cols) - 2] for _, cols in units]


def per_unit_losses(model, batch: Batch, places: list[list[tuple[int, int]]]) -> list[float]:
    """MLM loss of each unit: every unit's chosen tokens are [MASK] in the input; the labels of
    one unit at a time are kept, so the loss is that unit's alone."""
    inputs = batch.input_ids.clone()
    for unit in places:
        for row, pos in unit:
            inputs[row, pos] = MASK
    losses = []
    for unit in places:
        labels = torch.full_like(batch.input_ids, IGNORE)
        for row, pos in unit:
            labels[row, pos] = batch.input_ids[row, pos]
        with torch.no_grad():
            out = model(**to_model_inputs(batch, inputs, labels, 0, batch.input_ids.shape[0], "cpu"))
        losses.append(out["mlm"].item())
    return losses


def tiny_bert(attention: str) -> PretrainingModel:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32, type_vocab_size=2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.2,
                        attn_implementation=attention)
    mlm = BertForMaskedLM(config).eval()
    assert mlm.config._attn_implementation == attention
    return PretrainingModel(mlm, ObjectiveConfig(name="mlm"))


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("mode", ["single", "pair"])
def test_packed_units_score_as_if_alone(pair_data, mode, attention):
    packed = packed_batch(pair_data, mode)
    units = units_of(packed)
    assert len(units) > packed.input_ids.shape[0]  # rows really hold several units
    alone = one_unit_per_row(packed, units)
    offsets = masked_tokens(units)
    in_packed = [[(r, int(cols[o])) for o in unit] for (r, cols), unit in zip(units, offsets)]
    in_alone = [[(k, o) for o in unit] for k, unit in enumerate(offsets)]
    assert all(packed.input_ids[r, p] == alone.input_ids[k, o]
               for a, b in zip(in_packed, in_alone) for (r, p), (k, o) in zip(a, b))

    model = tiny_bert(attention)
    reference = per_unit_losses(model, alone, in_alone)
    blocked = per_unit_losses(model, packed, in_packed)
    assert blocked == pytest.approx(reference, abs=1e-5, rel=0)
    # The same packed rows with only the 1-D padding mask: units see each other, losses move.
    crosstalk = per_unit_losses(model, dataclasses.replace(packed, unit_index=None), in_packed)
    print(f"{mode}/{attention}: {len(units)} units, max |packed - alone| {max_gap(blocked, reference):.2e} with the "
          f"block mask, {max_gap(crosstalk, reference):.2e} without")
    assert max_gap(crosstalk, reference) > 1e-2


def test_packed_word_aligned_losses_match_one_unit_per_row(pair_data):
    """Cao et al.'s L_align and R read the source side's tokens (Batch.pivot), not whole rows: in a
    packed batch a row may hold a source and a target side (the unit mask keeps them apart), and
    both terms come out as with every unit alone in its row."""
    packed = packed_batch(pair_data, "single")
    content = packed.attention_mask.bool()
    assert (packed.pivot.any(1) & (content & ~packed.pivot).any(1)).any()  # a row with both sides
    alone = one_unit_per_row(packed, units_of(packed))
    assert alone.pivot.sum() == packed.pivot.sum() and len(alone.links) == len(packed.links) > 0
    model = tiny_bert("sdpa")
    frozen = copy.deepcopy(model.encoder)
    with torch.no_grad():  # the trained copy has moved away from the frozen one
        for param in model.encoder.parameters():
            param.add_(0.05 * torch.randn_like(param))
    model = PretrainingModel(model.mlm, ObjectiveConfig(name="word_aligned"), frozen)

    def losses(batch):
        labels = torch.full_like(batch.input_ids, IGNORE)  # word_aligned masks nothing
        with torch.no_grad():
            out = model(**to_model_inputs(batch, batch.input_ids, labels, 0, batch.input_ids.shape[0], "cpu"))
        return out["align"].item(), out["reg"].item()

    (align_p, reg_p), (align_a, reg_a) = losses(packed), losses(alone)
    print(f"word_aligned: packed align {align_p:.6f} reg {reg_p:.6f}; alone align {align_a:.6f} reg {reg_a:.6f}; "
          f"rows as pivot: reg {losses(dataclasses.replace(packed, pivot=packed.pivot.any(1, keepdim=True) & content))[1]:.6f}")
    assert reg_a > 1e-4 and align_a > 1e-4
    assert (align_p, reg_p) == pytest.approx((align_a, reg_a), abs=1e-6, rel=1e-5)
    # Reading whole rows as the pivot (the unpacked rule) would count target words in R.
    rows_as_pivot = dataclasses.replace(packed, pivot=packed.pivot.any(1, keepdim=True) & content)
    assert abs(losses(rows_as_pivot)[1] - reg_a) > 1e-4


def max_gap(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b))


def test_unpacked_batches_carry_no_unit_index(pair_data):
    """The default path is untouched: no unit_index, so the model gets the plain padding mask."""
    config = DataConfig(pairs=[pair_data], batch_size=4, max_seq_len=16)
    batch = PackedStream(config, tokenizer(), [2], mode="single", links="subwords", seed=0).next_batch()
    assert batch.unit_index is None
    labels = torch.full_like(batch.input_ids, IGNORE)
    assert "unit_index" not in to_model_inputs(batch, batch.input_ids, labels, 0, 4, "cpu")


def test_unit_attention_mask_is_block_diagonal():
    unit_index = torch.tensor([[1, 1, 2, 2, 2, 0]])
    mask = unit_attention_mask(unit_index, torch.float32)
    visible = (mask[0, 0] == 0).int().tolist()
    assert mask.shape == (1, 1, 6, 6)
    assert visible == [[1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0], [0, 0, 1, 1, 1, 0],
                       [0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0]]
    assert mask.min() == torch.finfo(torch.float32).min
