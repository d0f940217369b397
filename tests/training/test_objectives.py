"""Every objective on the hand-made 2-pair batch of tests/training/handmade.py: the exact rows,
positions, token types, links, targets and loss values, worked out on paper (HIGH = log 9/20 and
LOW = log 1/20 are the toy model's log-probabilities at a [MASK]), so the definitions can be
checked without running a model; then masking and WEAM's co-masking on real batches."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoTokenizer

from tests.training.conftest import tiny_config
from tests.training.handmade import HIGH, ID, LOW, SCALE, ToyMaskedLM, tokenizer, write_corpus
from weam.training.api import to_model_inputs
from weam.training.config import DataConfig, MaskingConfig, ObjectiveConfig, PairData
from weam.training.data import PackedStream, count_lines_checked
from weam.training.objectives import IGNORE, PretrainingModel, alignment_groups, cross_targets, mask_batch, mask_tokens

PAD, CLS, SEP, MASK = ID["[PAD]"], ID["[CLS]"], ID["[SEP]"], ID["[MASK]"]
A, B, C, X, Y, Z, W = (ID[t] for t in ("a", "b", "c", "x", "y", "z", "##w"))


@pytest.fixture(scope="module")
def pair_data(tmp_path_factory) -> PairData:
    return PairData(**write_corpus(tmp_path_factory.mktemp("handmade")))


def batch_of(pair_data, mode, links="subwords", **data):
    config = DataConfig(pairs=[pair_data], batch_size=4 if mode == "single" else 2, max_seq_len=16, **data)
    return PackedStream(config, tokenizer(), [2], mode=mode, links=links, seed=0).next_batch()


def padded(*rows, width):
    return torch.tensor([[*row, *[PAD] * (width - len(row))] for row in rows])


# --- batches -------------------------------------------------------------------------------------
def test_single_side_batch_is_one_side_per_row(pair_data):
    batch = batch_of(pair_data, "single")
    assert torch.equal(batch.input_ids, padded([CLS, A, B, SEP], [CLS, X, Y, SEP], [CLS, C, A, B, SEP],
                                               [CLS, Z, W, X, Y, SEP], width=8))
    assert torch.equal(batch.position_ids[3], torch.tensor([0, 1, 2, 3, 4, 5, 0, 0]))
    assert not batch.token_type_ids.any()  # single sides are segment 0, as downstream tasks feed them
    assert batch.pivot.any(1).tolist() == [True, False, True, False]  # the source sides' tokens
    assert torch.equal(batch.pivot, batch.attention_mask.bool() & torch.tensor([True, False, True, False])[:, None])
    assert batch.links.tolist() == [[0, 1, 1, 2], [0, 2, 1, 1],  # a↔y, b↔x
                                    [2, 1, 3, 1], [2, 1, 3, 2], [2, 2, 3, 1], [2, 2, 3, 2],  # c, a ↔ z ##w
                                    [2, 3, 3, 3]]  # b↔x
    assert batch.word_start[3].tolist()[:6] == [False, True, False, True, True, False]
    assert batch.word_end[3].tolist()[:6] == [False, False, True, True, True, False]


def test_cao_links_are_one_to_one_between_last_subwords(pair_data):
    batch = batch_of(pair_data, "single", links="last_subword_one_to_one")
    # pair 2: zw is linked to c and a, so only b↔x is one-to-one.
    assert batch.links.tolist() == [[0, 1, 1, 2], [0, 2, 1, 1], [2, 3, 3, 3]]


def test_xlm_pair_batch_one_pair_per_row_target_positions_restart(pair_data):
    """XLM's concat_batches(..., reset_positions=True): each row one pair, the target side's
    positions restart (first target token at 1), the side is an input (token type 1)."""
    batch = batch_of(pair_data, "pair")
    assert torch.equal(batch.input_ids, padded([CLS, A, B, SEP, X, Y, SEP],
                                               [CLS, C, A, B, SEP, Z, W, X, Y, SEP], width=16))
    assert batch.position_ids[0, :7].tolist() == [0, 1, 2, 3, 1, 2, 3]
    assert batch.position_ids[1, :10].tolist() == [0, 1, 2, 3, 4, 1, 2, 3, 4, 5]
    assert batch.token_type_ids[0, :7].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert batch.token_type_ids[1, :10].tolist() == [0] * 5 + [1] * 5
    assert batch.links.tolist() == [[0, 1, 0, 5], [0, 2, 0, 4],
                                    [1, 1, 1, 5], [1, 1, 1, 6], [1, 2, 1, 5], [1, 2, 1, 6], [1, 3, 1, 7]]
    assert batch.tokens_per_pair == {"en-de": 17}
    plain = batch_of(pair_data, "pair", positions="continue", language_input="none")
    assert plain.position_ids[0, :7].tolist() == list(range(7)) and not plain.token_type_ids.any()


def test_packing_is_opt_in_and_positions_restart_per_unit(pair_data):
    packed = batch_of(pair_data, "single", packing=True)  # 4 rows of 16: several units share each row
    # Pair 1's two sides and pair 2's target side in row 0 (a side may take either row of its pair of
    # rows; the unit mask keeps the two sides of a pair from seeing each other).
    assert packed.input_ids[0].tolist() == [CLS, A, B, SEP, CLS, X, Y, SEP, CLS, Z, W, X, Y, SEP, PAD, PAD]
    assert packed.position_ids[0, :14].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5]
    assert packed.unit_index[0].tolist() == [1] * 4 + [2] * 4 + [3] * 6 + [0] * 2  # attention stays inside each unit
    assert packed.pivot[0].tolist() == [True] * 4 + [False] * 12  # only the English side is the pivot
    assert packed.links[:2].tolist() == [[0, 1, 0, 6], [0, 2, 0, 5]]  # a↔y, b↔x, both in row 0
    assert batch_of(pair_data, "single").unit_index is None


# --- losses --------------------------------------------------------------------------------------
def losses_for(batch, objective: ObjectiveConfig, masked: list[tuple[int, int]], model=None, frozen=None):
    labels = torch.full_like(batch.input_ids, IGNORE)
    inputs = batch.input_ids.clone()
    for row, pos in masked:
        labels[row, pos] = batch.input_ids[row, pos]
        inputs[row, pos] = MASK
    mlm = model or ToyMaskedLM()
    if objective.name == "word_aligned" and frozen is None:
        frozen = copy.deepcopy(mlm.toy)
    with torch.no_grad():
        out = PretrainingModel(mlm, objective, frozen)(
            **to_model_inputs(batch, inputs, labels, 0, batch.input_ids.shape[0], "cpu"))
    return {name: value.item() for name, value in out.items()}


def test_mlm_hand_computed(pair_data):
    batch = batch_of(pair_data, "single")
    # a at position 1 (favours z), ##w at 2 (favours b), b at 2 (favours b): LOW, LOW, HIGH.
    out = losses_for(batch, ObjectiveConfig(name="mlm"), [(0, 1), (3, 2), (0, 2)])
    assert out == pytest.approx({"mlm": -(2 * LOW + HIGH) / 3, "loss": -(2 * LOW + HIGH) / 3})


def test_tlm_hand_computed_positions_reset(pair_data):
    """z and x of pair 2's target side at reset positions 1 and 3 (favour z, x: HIGH); at running
    positions 5 and 7 they would score LOW."""
    reset = losses_for(batch_of(pair_data, "pair"), ObjectiveConfig(name="tlm"), [(1, 5), (1, 7)])
    running = losses_for(batch_of(pair_data, "pair", positions="continue"), ObjectiveConfig(name="tlm"),
                         [(1, 5), (1, 7)])
    assert reset["loss"] == pytest.approx(-HIGH) and running["loss"] == pytest.approx(-LOW)


# Masked: a (0,1), c (2,1), b (2,3), y (3,4, unaligned). At a [MASK]: position 1 favours z,
# 3 favours x, 4 favours c. Own ids: all LOW. Cross targets: a → y (LOW); c → z (HIGH), ##w (LOW);
# b → x (HIGH); y → none.
WEAM_MASKED = [(0, 1), (2, 1), (2, 3), (3, 4)]
CROSS_SUM = -(LOW + (HIGH + LOW) / 2 + HIGH)


@pytest.mark.parametrize(("options", "cross"), [
    ({}, CROSS_SUM / 4),  # normalise: masked (4 masked tokens), multi_token: all, unaligned: skip
    ({"normalise": "targeted"}, CROSS_SUM / 3),  # 3 masked tokens have targets
    ({"multi_token": "first"}, -(LOW + HIGH + HIGH) / 4),  # c → z only (##w is not a word start)
    ({"unaligned": "self"}, (CROSS_SUM - LOW) / 4),  # y predicts y at position 4 (favours c): LOW
], ids=["default", "targeted", "first", "self"])
def test_weam_single_hand_computed(pair_data, options, cross):
    batch = batch_of(pair_data, "single")
    for weight in (1.0, 3.0):
        objective = ObjectiveConfig(name="partner_id_prediction", weam={"cross_weight": weight, **options})
        out = losses_for(batch, objective, WEAM_MASKED)
        assert out["mlm"] == pytest.approx(-LOW)
        assert out["cross"] == pytest.approx(cross)
        assert out["loss"] == pytest.approx(-LOW + weight * cross)


def test_cross_targets_exact(pair_data):
    batch = batch_of(pair_data, "single")
    labels = torch.full_like(batch.input_ids, IGNORE)
    for row, pos in WEAM_MASKED:
        labels[row, pos] = batch.input_ids[row, pos]
    predicted, targets, weights = cross_targets(labels, batch.input_ids, batch.links, batch.word_start,
                                                ObjectiveConfig().weam)
    width = batch.input_ids.shape[1]
    got = sorted((int(p) // width, int(p) % width, int(t), round(float(w), 6)) for p, t, w in
                 zip(predicted, targets, weights))
    assert got == [(0, 1, Y, 0.25), (2, 1, Z, 0.125), (2, 1, W, 0.125), (2, 3, X, 0.25)]


def test_weam_pair_hand_computed(pair_data):
    """Pair input, co-masked groups {a, y} and {c, a, z, ##w} (reset positions: a 1, y 2; c 1, a 2,
    z 1, ##w 2). Own ids: only z at position 1 scores HIGH. Cross: c → {z HIGH, ##w LOW}, every
    other target LOW."""
    masked = [(0, 1), (0, 5), (1, 1), (1, 2), (1, 5), (1, 6)]
    out = losses_for(batch_of(pair_data, "pair"), ObjectiveConfig(name="partner_id_prediction", weam={"input": "pair"}), masked)
    assert out["mlm"] == pytest.approx(-(5 * LOW + HIGH) / 6)
    assert out["cross"] == pytest.approx(-(5 * LOW + (HIGH + LOW) / 2) / 6)


def test_word_aligned_hand_computed_against_the_frozen_copy(pair_data):
    """Cao et al. on unmasked rows. Toy vectors: f(token) = one-hot(id) + s·one-hot(FAVOURED[pos]),
    s = log 9. The trained copy's 'a' moved by d along dimension 0; the frozen copy did not.
    Links a↔y, b↔x, b↔x (last subwords, one-to-one):
      a(pos 1)↔y(pos 2): |e_y + s·e_b − e_a − s·e_z|² = 2 + 2s²
      b(pos 2)↔x(pos 1): |e_x + s·e_z − (1 + s)·e_b|² = 1 + s² + (1 + s)²
      b(pos 3)↔x(pos 3): |(1 + s)·e_x − e_b − s·e_x|² = 2
    L_align = their sum / (3 links × 12 dims), whatever d (the anchor is the frozen copy);
    R = 2 'a' words × d² / (5 English words × 12 dims)."""
    batch = batch_of(pair_data, "single", links="last_subword_one_to_one")
    s, d = SCALE, 3.0
    model = ToyMaskedLM()
    frozen = copy.deepcopy(model.toy)
    with torch.no_grad():
        model.toy.tokens.weight[A, 0] += d
    for reg_weight in (1.0, 2.0):
        objective = ObjectiveConfig(name="word_aligned", word_aligned={"reg_weight": reg_weight})
        out = losses_for(batch, objective, [], model=model, frozen=frozen)
        align = ((2 + 2 * s**2) + (1 + s**2 + (1 + s) ** 2) + 2) / 36
        assert out["align"] == pytest.approx(align)
        assert out["reg"] == pytest.approx(d**2 / 30)
        assert out["mlm"] == 0.0 and out["loss"] == pytest.approx(align + reg_weight * d**2 / 30)


def test_word_aligned_does_not_mask_unless_it_has_an_mlm_term(pair_data):
    batch = batch_of(pair_data, "single", links="last_subword_one_to_one")
    gen = torch.Generator().manual_seed(0)
    inputs, labels = mask_batch(batch, ObjectiveConfig(name="word_aligned"), MASK, 12, gen)
    assert torch.equal(inputs, batch.input_ids) and (labels == IGNORE).all()
    _, labels = mask_batch(batch, ObjectiveConfig(name="word_aligned", word_aligned={"mlm_weight": 1.0}), MASK, 12, gen)
    assert (labels != IGNORE).any()


# --- masking -------------------------------------------------------------------------------------
def test_alignment_groups_are_the_connected_components(pair_data):
    batch = batch_of(pair_data, "pair")
    groups = alignment_groups(batch.links, tuple(batch.input_ids.shape))
    width = batch.input_ids.shape[1]
    assert groups[0, 1] == groups[0, 5] == 1 and groups[0, 2] == groups[0, 4] == 2
    assert groups[1, 1] == groups[1, 2] == groups[1, 5] == groups[1, 6] == width + 1
    assert groups[1, 3] == groups[1, 7] == width + 3 and groups[1, 8] == width + 8  # y: alone


def test_weam_pair_masks_whole_groups_of_the_hand_made_batch(pair_data):
    """Groups of the pair batch: row 0 {a, y} {b, x}; row 1 {c, a, z, ##w} {b, x}, y alone. Whatever
    the seed, a group is masked whole and its tokens read [MASK]."""
    batch = batch_of(pair_data, "pair")
    groups = [[(0, 1), (0, 5)], [(0, 2), (0, 4)], [(1, 1), (1, 2), (1, 5), (1, 6)], [(1, 3), (1, 7)]]
    objective = ObjectiveConfig(name="partner_id_prediction", weam={"input": "pair"})
    for seed in range(20):
        inputs, labels = mask_batch(batch, objective, MASK, 12, torch.Generator().manual_seed(seed))
        for group in groups:
            masked = [labels[r, p].item() != IGNORE for r, p in group]
            assert all(masked) or not any(masked), (seed, group)
            assert not any(masked) or all(inputs[r, p].item() == MASK for r, p in group)
        row0, row1 = (labels != IGNORE).sum(1).tolist()
        assert row0 >= round(4 * 0.3) and row1 >= round(8 * 0.3)  # 4 and 8 maskable tokens


def test_weam_pair_input_cannot_see_the_counterpart_of_a_masked_token(corpus, tmp_path):
    """Over 40 maskings of real pair batches: every cross-lingual target of every masked token is
    [MASK] in the input. Under TLM's plain masking (the state before co-masking) many are visible."""
    config = tiny_config(corpus, tmp_path, objective="partner_id_prediction", objective__weam__input="pair", batch_size=8,
                         max_seq_len=48)
    tok = AutoTokenizer.from_pretrained(corpus["tokenizer"])
    stream = PackedStream.for_config(config, tok, count_lines_checked(config.data.pairs))
    visible = {"weam": 0, "tlm": 0}
    checked = 0
    for step in range(40):
        batch = stream.next_batch()
        for name, objective in (("weam", config.objective), ("tlm", ObjectiveConfig(name="tlm"))):
            gen = torch.Generator().manual_seed(step)
            inputs, labels = mask_batch(batch, objective, tok.mask_token_id, len(tok), gen)
            predicted, _, _ = cross_targets(labels, batch.input_ids, batch.links, batch.word_start,
                                            config.objective.weam)
            width = batch.input_ids.shape[1]
            seen = inputs.reshape(-1)
            # the target positions of every (predicted, target) pair: rebuild them from the links
            src = batch.links[:, 0] * width + batch.links[:, 1]
            tgt = batch.links[:, 2] * width + batch.links[:, 3]
            flat_labels = labels.reshape(-1)
            pairs = [(p, q) for p, q in zip(torch.cat([src, tgt]).tolist(), torch.cat([tgt, src]).tolist())
                     if flat_labels[p] != IGNORE]
            visible[name] += sum(int(seen[q]) != tok.mask_token_id for _, q in pairs)
            if name == "weam":
                checked += len(pairs)
                assert set(predicted.tolist()) == {p for p, _ in pairs}
    assert checked > 200 and visible["weam"] == 0 and visible["tlm"] > 50, (checked, visible)


def test_masking_rate_specials_and_alignment_awareness():
    ids = torch.randint(5, 100, (64, 40))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    aligned = torch.zeros_like(special)
    aligned[:, 1:11] = True
    gen = torch.Generator().manual_seed(0)
    corrupted, labels = mask_tokens(ids, special, aligned, 0.3, MaskingConfig(), 4, 100, gen)
    chosen = labels != IGNORE
    assert chosen.sum(1).eq(round(38 * 0.3)).all() and not chosen[special].any()
    assert torch.equal(labels[chosen], ids[chosen])
    share_mask = (corrupted[chosen] == 4).float().mean().item()
    assert 0.7 < share_mask < 0.9
    assert torch.equal(corrupted[~chosen], ids[~chosen])
    gen = torch.Generator().manual_seed(0)
    _, aware = mask_tokens(ids, special, aligned, 0.3, MaskingConfig(alignment_aware=True, aligned_weight=10), 4, 100, gen)
    uniform_share = chosen[aligned].float().mean().item()
    aware_share = (aware != IGNORE)[aligned].float().mean().item()
    assert aware_share > 2 * uniform_share


def test_grouped_masking_takes_whole_groups_and_keeps_the_rate():
    ids = torch.randint(5, 100, (32, 20))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    groups = torch.arange(ids.numel()).reshape(ids.shape)
    groups[:, 2] = groups[:, 1]  # tokens 1, 2 and 3 form one group in every row
    groups[:, 3] = groups[:, 1]
    grouped = torch.zeros_like(special)
    grouped[:, 1:4] = True
    gen = torch.Generator().manual_seed(1)
    corrupted, labels = mask_tokens(ids, special, torch.zeros_like(special), 0.3, MaskingConfig(), 4, 100, gen,
                                    groups=groups, always_mask=grouped)
    chosen = labels != IGNORE
    whole = chosen[:, 1:4]
    assert (whole.all(1) | ~whole.any(1)).all()  # never part of the group
    assert whole.all(1).any()
    k = round(19 * 0.3)
    assert (chosen.sum(1) >= k).all() and (chosen.sum(1) <= k + 2).all()
    assert (corrupted[:, 1:4][whole] == 4).all()  # grouped tokens are always [MASK]


@pytest.mark.parametrize("name, mode", [("mlm", "single"), ("tlm", "pair"), ("weam", "pair"),
                                        ("partner_id_prediction", "single")])
def test_output_layer_runs_where_the_flop_count_says(pair_data, name, mode):
    """The FLOP count (api.Meter, benchmarks/pretrain_bench.py) takes the output layer at
    masked positions x ObjectiveSpec.output_passes: count the rows the head actually computes."""
    model = ToyMaskedLM()
    rows = []
    model.cls.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
    masked = [(0, 1), (1, 2)] if mode == "pair" else [(0, 1), (1, 1), (2, 2)]
    losses_for(batch_of(pair_data, mode), ObjectiveConfig(name=name), masked, model=model)
    assert sum(rows) == len(masked) * ObjectiveConfig(name=name).spec.output_passes
    assert ObjectiveConfig(name=name).spec.output_passes == (2 if name == "weam" else 1)
