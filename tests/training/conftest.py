"""Small real inputs for the pre-training tests: Moses pairs with Pharaoh alignments and a
WordPiece tokenizer trained on them (the formats the data and align stages write)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

# Two toy "languages" with a word-by-word lexicon: German-like words are the English ones with a
# suffix, so alignments are known exactly and some words split into several subword tokens.
LEXICON = ["the", "cat", "dog", "sat", "on", "mat", "house", "red", "big", "small", "runs", "eats",
           "fish", "bird", "tree", "water", "green", "blue", "old", "new"]


def write_pair(folder: Path, src: str, tgt: str, n: int, seed: int, suffix: str) -> dict:
    """n sentence pairs; the target reverses word order (so links are not the diagonal)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    src_lines, tgt_lines, links = [], [], []
    for _ in range(n):
        words = [rng.choice(LEXICON) for _ in range(rng.randint(3, 9))]
        src_lines.append(" ".join(words))
        tgt_lines.append(" ".join(f"{w}{suffix}" for w in reversed(words)))
        links.append(" ".join(f"{i}-{len(words) - 1 - i}" for i in range(len(words)) if i % 4 != 3))
    paths = {"src_file": folder / f"train.{src}", "tgt_file": folder / f"train.{tgt}",
             "alignment": folder / "alignment.txt"}
    paths["src_file"].write_text("\n".join(src_lines) + "\n", encoding="utf-8")
    paths["tgt_file"].write_text("\n".join(tgt_lines) + "\n", encoding="utf-8")
    paths["alignment"].write_text("\n".join(links) + "\n", encoding="utf-8")
    return {"src": src, "tgt": tgt, **paths}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict:
    """Two aligned pairs (en-de, en-fi) and a tokenizer directory trained on them."""
    from weam.modeling import train_wordpiece_tokenizer

    root = tmp_path_factory.mktemp("corpus")
    pairs = [write_pair(root / "en-de", "en", "de", 120, 1, "en"), write_pair(root / "en-fi", "en", "fi", 60, 2, "ko")]
    texts = [line for p in pairs for f in (p["src_file"], p["tgt_file"]) for line in f.read_text().splitlines()]
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=120)
    tokenizer.save_pretrained(root / "tokenizer")
    return {"pairs": pairs, "tokenizer": root / "tokenizer", "root": root}


TORCH_ADAM = {"optimizer": {"params": {"torch_adam": True}}}
"""GPU tests keep torch's AdamW: DeepSpeed's FusedAdam would JIT-compile (minutes, needs nvcc)."""


def tiny_config(corpus: dict, out_dir: Path, **overrides):
    """A tiny-preset config; keyword overrides use the old flat names (``zero_stage=3``,
    ``objective="tlm"``) or dotted paths as ``section__key`` (``objective__weam__input="pair"``)."""
    from weam.training.config import MOVED, PretrainConfig
    from weam.core.config import deep_merge

    flat = {
        "model": "preset:tiny", "tokenizer": str(corpus["tokenizer"]), "objective": "weam",
        "pairs": corpus["pairs"], "batch_size": 8, "max_seq_len": 32, "max_steps": 6, "lr": 1e-3,
        "zero_stage": 0, "checkpoint_every": 3, "out_dir": out_dir, "tracking": {"enabled": False},
        "warmup_ratio": 0.0,
    }
    flat.update(overrides)
    data: dict = {}
    for key, value in flat.items():
        path = "objective.name" if key == "objective" else MOVED.get(key, key.replace("__", "."))
        node: dict = {}
        leaf = node
        *parents, last = path.split(".")
        for part in parents:
            leaf = leaf.setdefault(part, {})
        leaf[last] = value
        data = deep_merge(data, node)
    return PretrainConfig.model_validate(data)
