"""A hand-made 2-pair corpus, a 12-token WordPiece vocabulary and a toy encoder whose outputs can
be worked out on paper, for the hand-computed objective tests.

Vocabulary: 0 [PAD] 1 [UNK] 2 [CLS] 3 [SEP] 4 [MASK] 5 a 6 b 7 c 8 x 9 y 10 z 11 ##w.

    pair 1: en "a b"    de "x y"     links 0-1 1-0       (a↔y, b↔x)
    pair 2: en "c a b"  de "zw x y"  links 0-0 1-0 2-1   (c↔zw, a↔zw, b↔x; y unaligned)

"zw" is two subwords (z ##w). Toy encoder: hidden(token) = E[id] + P[position] in 12 dimensions,
the output layer is the identity (logits = hidden). E[id] = one-hot(id), except E[[MASK]] = 0;
P[position] = log 9 · one-hot(FAVOURED[position]). A [MASK] token at position p therefore has
softmax 9/20 on FAVOURED[p] and 1/20 on each of the 11 other ids.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "x", "y", "z", "##w"]
ID = {token: k for k, token in enumerate(VOCAB)}
FAVOURED = {1: ID["z"], 2: ID["b"], 3: ID["x"], 4: ID["c"]}
"""Position → the id a [MASK] there favours (other positions favour [PAD])."""
SCALE = math.log(9)
HIGH, LOW = math.log(9 / 20), math.log(1 / 20)
"""log-probabilities of the favoured id and of any other id at a [MASK]."""


def write_corpus(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (folder / "train.en").write_text("a b\nc a b\n", encoding="utf-8")
    (folder / "train.de").write_text("x y\nzw x y\n", encoding="utf-8")
    (folder / "alignment.txt").write_text("0-1 1-0\n0-0 1-0 2-1\n", encoding="utf-8")
    return {"src": "en", "tgt": "de", "src_file": folder / "train.en", "tgt_file": folder / "train.de",
            "alignment": folder / "alignment.txt"}


def tokenizer(folder: Path | None = None):
    """A fast WordPiece tokenizer over exactly VOCAB (BERT's pre-tokenizer, no training)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordPiece(vocab=ID, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


class ToyEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(len(VOCAB), len(VOCAB))
        self.positions = nn.Embedding(32, len(VOCAB))
        with torch.no_grad():
            self.tokens.weight.copy_(torch.eye(len(VOCAB)))
            self.tokens.weight[ID["[MASK]"]] = 0
            self.positions.weight.zero_()
            for position, token in FAVOURED.items():
                self.positions.weight[position, token] = SCALE
            for position in range(32):
                if position not in FAVOURED:
                    self.positions.weight[position, ID["[PAD]"]] = SCALE

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None):
        return SimpleNamespace(last_hidden_state=self.tokens(input_ids) + self.positions(position_ids))


class ToyMaskedLM(nn.Module):
    """The two attributes PretrainingModel uses: the encoder under base_model_prefix, and cls."""

    base_model_prefix = "toy"

    def __init__(self):
        super().__init__()
        self.toy = ToyEncoder()
        self.cls = nn.Identity()
