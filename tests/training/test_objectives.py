"""The objectives on hand-made batches: WEAM's cross-lingual targets are exactly the aligned
tokens, unaligned tokens add nothing to L_cross, λ scales it; masking follows its config."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from training.config import MaskingConfig, PretrainConfig, WeamOptions
from training.objectives import IGNORE, PretrainingModel, cross_targets, mask_tokens
from weam.modeling import build_masked_lm

# Row 0: [CLS] s1 s2 s3 [SEP] pad ; row 1: [CLS] t1 t2a t2b [SEP] pad  (t2 is two subwords)
IDS = torch.tensor([[2, 10, 11, 12, 3, 0], [2, 20, 21, 22, 3, 0]])
WORD_START = torch.tensor([[0, 1, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0]], dtype=torch.bool)
# s1-t2 (both subwords of t2), s2-t1; s3 unaligned.
LINKS = torch.tensor([[0, 1, 1, 2], [0, 1, 1, 3], [0, 2, 1, 1]])


def labels_at(*positions):
    labels = torch.full_like(IDS, IGNORE)
    for row, pos in positions:
        labels[row, pos] = IDS[row, pos]
    return labels


def as_set(predicted, targets, weights, seq=6):
    return {(int(p) // seq, int(p) % seq, int(t), round(float(w), 6)) for p, t, w in zip(predicted, targets, weights)}


def test_cross_targets_are_the_aligned_tokens_and_skip_unaligned():
    labels = labels_at((0, 1), (0, 2), (0, 3), (1, 2))  # s3 at (0,3) is masked but unaligned
    got = as_set(*cross_targets(labels, IDS, LINKS, WORD_START, WeamOptions()))
    # three masked tokens have targets: s1 → {t2a, t2b}, s2 → {t1}, t2a → {s1}; each counts 1/3.
    sixth, third = round(1 / 6, 6), round(1 / 3, 6)
    assert got == {(0, 1, 21, sixth), (0, 1, 22, sixth), (0, 2, 20, third), (1, 2, 10, third)}


def test_multi_token_first_and_unaligned_self_options():
    labels = labels_at((0, 1), (0, 3))
    first = as_set(*cross_targets(labels, IDS, LINKS, WORD_START, WeamOptions(multi_token="first")))
    assert first == {(0, 1, 21, 1.0)}
    self_target = as_set(*cross_targets(labels, IDS, LINKS, WORD_START, WeamOptions(unaligned="self")))
    assert self_target == {(0, 1, 21, 0.25), (0, 1, 22, 0.25), (0, 3, 12, 0.5)}


@pytest.fixture(scope="module")
def model_pair():
    torch.manual_seed(0)
    mlm = build_masked_lm("tiny", vocab_size=40, max_position_embeddings=16).eval()
    return mlm


def run(mlm, labels, objective="weam", weight=1.0, links=LINKS):
    config = PretrainConfig.model_construct(objective=objective, cross_weight=weight, weam=WeamOptions())
    model = PretrainingModel(mlm, config)
    return model(input_ids=IDS, attention_mask=(IDS != 0).long(), token_type_ids=torch.zeros_like(IDS),
                 labels=labels, original_ids=IDS, links=links, word_start=WORD_START)


def test_weam_loss_is_mlm_plus_lambda_times_cross(model_pair):
    labels = labels_at((0, 1), (0, 2), (1, 2))
    with torch.no_grad():
        hidden = model_pair.bert(input_ids=IDS, attention_mask=(IDS != 0).long()).last_hidden_state
        logp = F.log_softmax(model_pair.cls(hidden), dim=-1)
        out1, out3 = run(model_pair, labels, weight=1.0), run(model_pair, labels, weight=3.0)
    mlm = -(logp[0, 1, 10] + logp[0, 2, 11] + logp[1, 2, 21]) / 3
    cross = -((logp[0, 1, 21] + logp[0, 1, 22]) / 2 + logp[0, 2, 20] + logp[1, 2, 10]) / 3
    assert out1["mlm"].item() == pytest.approx(mlm.item(), rel=1e-5)
    assert out1["cross"].item() == pytest.approx(cross.item(), rel=1e-5)
    assert out1["loss"].item() == pytest.approx((mlm + cross).item(), rel=1e-5)
    assert out3["loss"].item() == pytest.approx((mlm + 3 * cross).item(), rel=1e-5)


def test_unaligned_masked_token_adds_nothing_to_cross(model_pair):
    with torch.no_grad():
        base = run(model_pair, labels_at((0, 1), (0, 2)))
        more = run(model_pair, labels_at((0, 1), (0, 2), (0, 3)))  # s3 has no link
        none = run(model_pair, labels_at((0, 3)))
    assert more["cross"].item() == pytest.approx(base["cross"].item(), rel=1e-6)
    assert more["mlm"].item() != pytest.approx(base["mlm"].item(), rel=1e-6)
    assert none["cross"].item() == 0.0 and none["loss"].item() == pytest.approx(none["mlm"].item())


def test_mlm_and_tlm_ignore_links_and_word_aligned_uses_visible_links(model_pair):
    labels = labels_at((0, 3))
    with torch.no_grad():
        mlm = run(model_pair, labels, objective="mlm")
        aligned = run(model_pair, labels, objective="word_aligned", weight=2.0)
        hidden = model_pair.bert(input_ids=IDS, attention_mask=(IDS != 0).long()).last_hidden_state
    assert set(mlm) == {"mlm", "loss"} and mlm["loss"].item() == mlm["mlm"].item()
    expected = torch.stack([(hidden[1, j] - hidden[0, i]).pow(2).mean() for _, i, _, j in LINKS.tolist()]).mean()
    assert aligned["align"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert aligned["loss"].item() == pytest.approx((mlm["mlm"] + 2 * expected).item(), rel=1e-5)


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
