"""Encoders built from a config and tokenizers trained on the fly: what runs where mBERT cannot be
downloaded. Both are ordinary Hugging Face objects (``save_pretrained`` / ``from_pretrained``), so
every later stage takes the same code path it takes with ``bert-base-multilingual-cased``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from weam.core.manifest import honour_umask

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

ENCODER_PRESETS: dict[str, dict[str, int]] = {
    # A few-minute CPU model for tests and the demo study.
    "tiny": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512},
    "small": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024},
    # bert-base-multilingual-cased's shape (vocab 119,547), for benchmarks without downloading it.
    "mbert-base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "vocab_size": 119547,
    },
}


def train_wordpiece_tokenizer(texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 1):
    """A cased multilingual WordPiece tokenizer (BERT's normalizer and pre-tokenizer) trained on ``texts``.

    Deterministic: the same texts give a byte-identical ``tokenizer.json``. The ``tokenizers``
    trainer alone is not (huggingface/tokenizers#1794): it numbers the ``##x`` continuation pieces
    in hash-map order, and those numbers break ties between equally frequent merges. Here every
    ``##x`` piece is numbered up front, in sorted order, so ties always break the same way; the
    learned vocabulary is then put into a fresh tokenizer with only the five real special tokens.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    def pipeline(backend: Tokenizer) -> Tokenizer:
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece()
        return backend

    backend = pipeline(Tokenizer(models.WordPiece(unk_token="[UNK]")))
    words: Counter[str] = Counter()
    for text in texts:
        normal = backend.normalizer.normalize_str(text)
        words.update(word for word, _ in backend.pre_tokenizer.pre_tokenize_str(normal))
    continuations = sorted({f"##{char}" for word in words for char in word[1:]})
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS + continuations
    )
    # Each word once per occurrence, in sorted order (the counts are what training sees).
    backend.train_from_iterator((" ".join([word] * count) for word, count in sorted(words.items())), trainer=trainer)
    final = pipeline(Tokenizer(models.WordPiece(backend.get_vocab(with_added_tokens=False), unk_token="[UNK]")))
    final.add_special_tokens(SPECIAL_TOKENS)
    cls_id, sep_id = final.token_to_id("[CLS]"), final.token_to_id("[SEP]")
    final.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=final,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )


def build_masked_lm(preset: str, vocab_size: int | None = None, max_position_embeddings: int = 512, seed: int = 0):
    """A freshly initialised ``BertForMaskedLM`` of a preset shape."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    if preset not in ENCODER_PRESETS:
        raise ValueError(f"unknown encoder preset {preset!r}; known: {', '.join(ENCODER_PRESETS)}")
    shape = dict(ENCODER_PRESETS[preset])
    if vocab_size is not None:
        shape["vocab_size"] = vocab_size
    torch.manual_seed(seed)
    config = BertConfig(max_position_embeddings=max_position_embeddings, **shape)
    return BertForMaskedLM(config)


def save_model_and_tokenizer(model, tokenizer, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    honour_umask(out_dir)  # safetensors writes its file 0600
    return out_dir


def freeze_lower_layers(model, layers: int) -> int:
    """Freeze the word/position embeddings and the lowest ``layers`` transformer blocks of a BERT-style
    model (0: nothing). A tied MLM decoder shares the embedding matrix, so it stays frozen with it;
    the head's transform and bias still train. Returns the number of parameters left trainable."""
    if layers <= 0:
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
    base = getattr(model, "base_model", model)
    blocks = base.encoder.layer
    if layers > len(blocks):
        raise ValueError(f"freeze_layers={layers} but the model has {len(blocks)} layers")
    for module in [base.embeddings, *blocks[:layers]]:
        for param in module.parameters():
            param.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


PLAIN_FAST_TOKENIZERS = ("TokenizersBackend", "PreTrainedTokenizerFast")
"""``tokenizer_class`` values AutoTokenizer resolves to transformers' plain fast tokenizer (what
:func:`train_wordpiece_tokenizer` saves)."""


def load_tokenizer(source: str | Path):
    """``AutoTokenizer.from_pretrained(source)``; a local folder whose tokenizer_config.json names the
    plain fast tokenizer is loaded by that class directly, the object AutoTokenizer returns, without
    the torch import AutoTokenizer's module makes (seconds of a step that only counts tokens)."""
    import json

    config = Path(source) / "tokenizer_config.json"
    try:
        named = json.loads(config.read_text(encoding="utf-8")).get("tokenizer_class")
    except (OSError, ValueError, AttributeError):
        named = None
    if named in PLAIN_FAST_TOKENIZERS:
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(str(source))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(source))
