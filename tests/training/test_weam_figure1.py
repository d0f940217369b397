"""WEAM as Figure 1 of Yang et al. 2021 (arXiv 2106.01732) draws it, checked by hand on the
figure's own example.

The pair "Is it raining today ?" / "今天 下雨 吗 ?", its alignment matrix (今天–today, 下雨–raining,
?–?), the figure's masks ("Is", "raining", "今天") and which final state predicts which id:

    L_mp: R2 → Is, R4 → raining, R8 → 今天         (each masked token's own state)
    L_cp: R2 → Is, R9 → raining, R5 → 今天         (after the word exchange)

The figure numbers states from R1 = [CLS] and puts a [PAD] before the last [SEP]; the data path
packs no padding inside a pair, so sequence index k holds the figure's R(k+1) up to the [SEP]
(index 6 = R7), and 今天, 下雨 sit at indices 7, 8 (R8, R9).

A probe encoder makes each state say where it is: the state at sequence index k is one-hot(k).
Its output layer maps state k to log 9 on the id FAVOURED[k] (0 on every other id), so a state
scores log(9 / (V + 8)) on its favoured id and log(1 / (V + 8)) on any other."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from weam.training.api import to_model_inputs
from weam.training.config import DataConfig, ObjectiveConfig, PairData
from weam.training.data import PackedStream
from weam.training.objectives import IGNORE, PretrainingModel, exchanged_states

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Is", "it", "raining", "today", "?", "今天", "下雨", "吗",
         "pour", "##ing"]
ID = {token: k for k, token in enumerate(VOCAB)}
WIDTH = 16
FAVOURED = {1: ID["Is"], 3: ID["?"], 4: ID["今天"], 7: ID["吗"], 8: ID["raining"]}
"""Sequence index → the id its state favours: R2 → Is, R5 → 今天, R9 → raining (what the figure's
L_cp predicts), and R4 → ?, R8 → 吗 (so L_mp's raining and 今天 score low)."""
SCALE = math.log(9)
HIGH, LOW = math.log(9 / (len(VOCAB) + 8)), math.log(1 / (len(VOCAB) + 8))


def figure_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordPiece(vocab=ID, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


class PositionProbe(nn.Module):
    """State at sequence index k = one-hot(k), whatever the token: which state predicts is visible."""

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None):
        rows, seq = input_ids.shape
        return SimpleNamespace(last_hidden_state=torch.eye(WIDTH)[:seq].expand(rows, seq, WIDTH).clone())


class ProbeMaskedLM(nn.Module):
    base_model_prefix = "probe"

    def __init__(self):
        super().__init__()
        self.probe = PositionProbe()
        self.cls = nn.Linear(WIDTH, len(VOCAB), bias=False)
        with torch.no_grad():
            self.cls.weight.zero_()
            for index, token in FAVOURED.items():
                self.cls.weight[token, index] = SCALE


def figure_batch(tmp_path, english="Is it raining today ?", chinese="今天 下雨 吗 ?", links="3-0 2-1 4-3"):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (tmp_path / "train.en").write_text(english + "\n", encoding="utf-8")
    (tmp_path / "train.zh").write_text(chinese + "\n", encoding="utf-8")
    (tmp_path / "alignment.txt").write_text(links + "\n", encoding="utf-8")
    pair = PairData(src="en", tgt="zh", src_file=tmp_path / "train.en", tgt_file=tmp_path / "train.zh",
                    alignment=tmp_path / "alignment.txt")
    config = DataConfig(pairs=[pair], batch_size=1, max_seq_len=WIDTH)
    return PackedStream(config, figure_tokenizer(), [1], mode="pair", links="subwords", seed=0).next_batch()


def masked_losses(batch, masked, objective=None):
    labels = torch.full_like(batch.input_ids, IGNORE)
    inputs = batch.input_ids.clone()
    for pos in masked:
        labels[0, pos] = batch.input_ids[0, pos]
        inputs[0, pos] = ID["[MASK]"]
    model = PretrainingModel(ProbeMaskedLM(), objective or ObjectiveConfig(name="weam"))
    with torch.no_grad():
        out = model(**to_model_inputs(batch, inputs, labels, 0, 1, "cpu"))
    return {name: value.item() for name, value in out.items()}


def test_figure1_pair_and_alignment_matrix(tmp_path):
    batch = figure_batch(tmp_path)
    tokens = [VOCAB[i] for i in batch.input_ids[0].tolist()]
    assert tokens[:12] == ["[CLS]", "Is", "it", "raining", "today", "?", "[SEP]", "今天", "下雨", "吗", "?", "[SEP]"]
    # The figure's matrix: 今天–today, 下雨–raining, ?–? (rows 0, sequence indices).
    assert sorted(batch.links.tolist()) == [[0, 3, 0, 8], [0, 4, 0, 7], [0, 5, 0, 10]]


def test_figure1_which_state_predicts_which_token(tmp_path):
    """Masked: Is (1), raining (3), 今天 (7). After the exchange Is keeps R2 (unaligned), raining
    takes R9 (下雨 at index 8), 今天 takes R5 (today at index 4)."""
    batch = figure_batch(tmp_path)
    hidden = torch.eye(WIDTH)[: batch.input_ids.shape[1]]
    states = exchanged_states(hidden, torch.tensor([1, 3, 7]), batch.links, batch.input_ids.shape[1])
    assert states.argmax(1).tolist() == [1, 8, 4] and torch.equal(states, hidden[[1, 8, 4]])


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_figure1_losses_hand_computed(tmp_path, weight):
    """L_mp: R2 → Is HIGH, R4 → raining LOW (R4 favours ?), R8 → 今天 LOW (R8 favours 吗).
    L_cp: R2 → Is, R9 → raining, R5 → 今天, all HIGH: the figure's own predictions."""
    out = masked_losses(figure_batch(tmp_path), [1, 3, 7], ObjectiveConfig(name="weam", weam={"cross_weight": weight}))
    assert out["mlm"] == pytest.approx(-(HIGH + 2 * LOW) / 3)
    assert out["cross"] == pytest.approx(-HIGH)
    assert out["loss"] == pytest.approx(-(HIGH + 2 * LOW) / 3 - weight * HIGH)


def test_partner_id_ablation_differs_on_the_figure(tmp_path):
    """The ablation predicts the partner's id from the masked token's own state (raining's R4 →
    下雨, 今天's R8 → today, both LOW here) and skips the unaligned Is: not Figure 1."""
    out = masked_losses(figure_batch(tmp_path), [1, 3, 7], ObjectiveConfig(name="partner_id_prediction"))
    assert out["cross"] == pytest.approx(-2 * LOW / 3)


def test_multi_piece_and_many_to_many_take_the_mean_partner_state(tmp_path):
    """[chosen here] "pouring" as two pieces (pour ##ing) aligned to 下雨, and "today ?" both aligned
    to 今天: masked 下雨 (index 9) is predicted from the mean of R(pour) and R(##ing), masked 今天
    from the mean of R(today) and R(?); masked "pour" from R(下雨) alone."""
    batch = figure_batch(tmp_path, english="Is it pouring today ?", chinese="今天 下雨 吗 ?", links="3-0 2-1 4-0")
    tokens = [VOCAB[i] for i in batch.input_ids[0].tolist()]
    assert tokens[:13] == ["[CLS]", "Is", "it", "pour", "##ing", "today", "?", "[SEP]", "今天", "下雨", "吗", "?",
                           "[SEP]"]
    hidden = torch.eye(WIDTH)[: batch.input_ids.shape[1]]
    states = exchanged_states(hidden, torch.tensor([3, 8, 9]), batch.links, batch.input_ids.shape[1])
    assert torch.equal(states[0], hidden[9])  # pour ← 下雨
    assert torch.equal(states[1], (hidden[5] + hidden[6]) / 2)  # 今天 ← mean(today, ?)
    assert torch.equal(states[2], (hidden[3] + hidden[4]) / 2)  # 下雨 ← mean(pour, ##ing)


def test_weam_refuses_options_of_the_ablation():
    with pytest.raises(ValueError, match="objective.weam.unaligned: options of the ablation 'partner_id_prediction'"):
        ObjectiveConfig(name="weam", weam={"unaligned": "self"})
    dumped = ObjectiveConfig(name="weam").model_dump()  # a written-out config (every key) loads again
    assert ObjectiveConfig.model_validate(dumped).name == "weam"
    assert ObjectiveConfig(name="partner_id_prediction", weam={"input": "pair"}).co_masks()
    assert not ObjectiveConfig(name="weam").co_masks()  # Figure 1: the sides are masked independently
