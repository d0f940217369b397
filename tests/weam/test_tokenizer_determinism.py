"""Tokenizer training is deterministic: the same data gives a byte-identical tokenizer.json, in
separate processes (the tokenizers trainer's hash maps are seeded per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAIN = (
    "import sys\n"
    "from weam.alignment.django_corpus import django_pairs\n"
    "from weam.modeling import train_wordpiece_tokenizer\n"
    "texts = (side for lang in ('de', 'fi', 'tr') for pair in django_pairs(lang) for side in pair)\n"
    "train_wordpiece_tokenizer(texts, vocab_size=1500).save_pretrained(sys.argv[1])\n"
)


def test_two_trainings_on_the_same_data_are_byte_identical(tmp_path):
    outputs = []
    for run in range(2):
        out = tmp_path / f"run{run}"
        subprocess.run([sys.executable, "-c", TRAIN, str(out)], check=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert "tokenizer.json" in outputs[0]
    assert outputs[0] == outputs[1]


def test_trained_tokenizer_is_an_ordinary_wordpiece_with_five_special_tokens():
    from transformers import PreTrainedTokenizerFast

    from weam.modeling import SPECIAL_TOKENS, train_wordpiece_tokenizer

    tokenizer = train_wordpiece_tokenizer(["the cat sat on the mat", "die Katze sitzt"] * 20, vocab_size=200)
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    assert tokenizer.convert_ids_to_tokens(list(range(5))) == SPECIAL_TOKENS
    assert sorted(tokenizer.all_special_tokens) == sorted(SPECIAL_TOKENS)
    ids = tokenizer("the cat")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "the cat"
    assert "##a" in tokenizer.get_vocab() and "##a" not in tokenizer.all_special_tokens
