"""Loaders on XTREME's file formats, the Tatoeba writer, and bad input named by file and line."""

from __future__ import annotations

import pytest

from weam.eval import formats
from weam.eval.api import evaluate
from weam.eval.config import EvalConfig
from weam.eval.data import load_english, load_split
from weam.eval.tasks import get_task
from weam.core.errors import ConfigError, InputError
from weam.core.config import load_config


def test_loaders_read_the_download_layout(xtreme_dir):
    config = EvalConfig(data_dir=xtreme_dir)
    xnli = load_split(config, get_task("xnli"), "dev", "sw")
    assert xnli[3] == {"sentence1": 'he said "hello" .', "sentence2": "he spoke .", "label": "entailment", "line": 4}
    assert {r["label"] for r in load_split(config, get_task("xnli"), "test", "sw")} == {None}  # no label column
    panx = load_split(config, get_task("panx"), "dev", "yo")
    assert panx[0]["tokens"][:2] == ["Anna", "lives"] and panx[0]["tags"][3:5] == ["B-LOC", "I-LOC"]
    assert len(panx) == 3 and load_split(config, get_task("panx"), "test", "yo")[0]["tags"] is None
    copa = load_split(config, get_task("xcopa"), "dev", "qu")
    assert copa[1]["question"] == "effect" and copa[1]["label"] == 1
    assert [r["label"] for r in load_split(config, get_task("xcopa"), "test", "qu")] == [None, None]  # 0s dropped
    qa = load_split(config, get_task("mlqa"), "dev", "zh")
    assert qa[1]["answers"][0]["text"] == "New York" and qa[1]["id"] == "q2"
    assert all(r["answers"] == [] for r in load_split(config, get_task("tydiqa"), "test", "sw"))
    train = load_english(config, get_task("tydiqa"), "train")
    assert train[0]["id"] == "q1" and train[0]["answers"][0]["text"] == "the mat"  # tydiqa_preprocess's ids
    mentions = formats.read_mewslix_mentions(xtreme_dir / "mewslix/wikinews_mentions/test-de.jsonl")
    assert mentions == [{"example_id": "de-0", "query": "Anna: { Anna } wohnt in New York.", "entity_id": None}]
    src, eng, gold, layout = formats.read_tatoeba_any(xtreme_dir / "tatoeba", "sw", "swh")
    assert eng == sorted(eng) and gold is None and layout == "download"


def test_a_file_under_its_other_name_is_read(xtreme_dir, tmp_path):
    """TyDiQA's English train file as train_qa.sh names it (tydiqa.en.train.json, TaskSpec.file_aliases)
    is read when tydiqa_preprocess's name is absent; a missing file is still named by its own path."""
    import shutil

    spec = get_task("tydiqa")
    shutil.copytree(xtreme_dir / "tydiqa", tmp_path / "tydiqa")
    own = tmp_path / spec.files["train"]
    expected = load_english(EvalConfig(data_dir=tmp_path), spec, "train")
    own.rename(tmp_path / spec.file_aliases["train"][0])
    assert load_english(EvalConfig(data_dir=tmp_path), spec, "train") == expected and expected
    (tmp_path / spec.file_aliases["train"][0]).unlink()
    with pytest.raises(InputError, match="tydiqa.goldp.en.train.json"):
        load_english(EvalConfig(data_dir=tmp_path), spec, "train")


def test_missing_language_file_is_named(tiny_model_dir, xtreme_dir, tmp_path):
    config = EvalConfig(tasks=["xnli"], langs=["ar"], data_dir=xtreme_dir, out_dir=tmp_path / "out",
                        hyperparams={"xnli": {"max_steps": 1}}, tracking={"enabled": False})
    with pytest.raises(InputError, match=r"xnli/dev-ar\.tsv: missing file"):
        evaluate(tiny_model_dir, config)


def test_missing_tatoeba_language_is_named(tiny_model_dir, xtreme_dir, tmp_path):
    config = EvalConfig(tasks=["tatoeba"], langs=["yo"], data_dir=xtreme_dir, out_dir=tmp_path / "out",
                        tracking={"enabled": False})
    with pytest.raises(InputError, match=r"tatoeba/yo-en\.yo: missing file: .*yo-en\.en.*tatoeba\.yor-eng\.yor"):
        evaluate(tiny_model_dir, config)


def test_malformed_tsv_line(tmp_path):
    path = tmp_path / "test-sw.tsv"
    path.write_text("a\tb\tentailment\njust one field\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"test-sw\.tsv:2: expected 2 or 3 tab-separated fields") as info:
        formats.read_pair_tsv(path, get_task("xnli").labels)
    assert info.value.line == 2


def test_label_outside_label_set(tmp_path):
    path = tmp_path / "train-en.tsv"
    path.write_text("Anna\tB-PER\n\nGoogle\tB-ORG\nhired\tB-FOO\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"train-en\.tsv:4: label 'B-FOO' is not in the task's label set"):
        formats.read_conll_tsv(path, get_task("panx").labels)
    xnli = tmp_path / "dev-en.tsv"
    xnli.write_text("a\tb\tmaybe\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"dev-en\.tsv:1: label 'maybe'"):
        formats.read_pair_tsv(xnli, get_task("xnli").labels)


def test_malformed_json_lines(tmp_path):
    copa = tmp_path / "test-qu.jsonl"
    copa.write_text('{"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 0}\n{oops\n')
    with pytest.raises(InputError, match=r"test-qu\.jsonl:2: not valid JSON"):
        formats.read_copa(copa)
    copa.write_text('{"premise": "p", "choice1": "a", "choice2": "b", "question": "why", "label": 0}\n')
    with pytest.raises(InputError, match=r"test-qu\.jsonl:1: question must be"):
        formats.read_copa(copa)
    copa.write_text('{"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 2}\n')
    with pytest.raises(InputError, match=r"test-qu\.jsonl:1: label 2 is not in the task's label set"):
        formats.read_copa(copa)
    siqa = tmp_path / "socialIQa_v1.4_trn.jsonl"
    siqa.write_text('{"context": "c", "question": "q", "answerA": "a", "answerB": "b", "answerC": "c", "correct": "D"}\n')
    with pytest.raises(InputError, match=r"socialIQa_v1\.4_trn\.jsonl:1: correct must be A, B or C"):
        formats.read_siqa(siqa)
    squad = tmp_path / "xquad.de.json"
    squad.write_text('{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1"}]}]}]}')
    with pytest.raises(InputError, match=r"xquad\.de\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\]: missing field"):
        formats.read_squad(squad)


def test_dev_split_only_where_xtreme_has_one(xtreme_dir):
    from weam.core.errors import WeamError

    config = EvalConfig(data_dir=xtreme_dir, split="dev")
    with pytest.raises(WeamError, match="task xquad has no dev split in XTREME's download"):
        load_split(config, get_task("xquad"), "dev", "de")
    assert load_english(config, get_task("xnli"), "dev")


def test_tatoeba_sides_must_align(tmp_path):
    for suffix, lines in (("swh", "a\nb\n"), ("eng", "x\n")):
        (tmp_path / f"tatoeba.swh-eng.{suffix}").write_text(lines, encoding="utf-8")
    with pytest.raises(InputError, match=r"tatoeba\.swh-eng\.eng:2: has 1 lines but tatoeba\.swh-eng\.swh has 2"):
        formats.read_tatoeba(tmp_path, "swh")
    formats.write_tatoeba(tmp_path, "sw", ["a", "b"], ["x", "y"])
    (tmp_path / "sw-en.en").write_text("x\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"sw-en\.en:2: has 1 lines but sw-en\.sw has 2"):
        formats.read_tatoeba_any(tmp_path, "sw", "swh")


def test_shipped_configs_validate(tmp_path):
    from pathlib import Path

    for path in sorted(Path("configs/eval").glob("*.yaml")):
        config = load_config(EvalConfig, path)
        assert config.tasks
    with pytest.raises(ConfigError, match="unknown task 'xnlj'"):
        load_config(EvalConfig, None, ["tasks=[xnlj]"])


class _Payload:
    """A class a pickle names: torch.load(weights_only=True) refuses to build it."""


def test_bad_utf8_in_an_eval_file_and_a_pickled_model_are_error_lines(tiny_model_dir, tmp_path):
    """Issue 26, item 7: a non-UTF-8 line is named by file and line (not a UnicodeDecodeError); a
    pytorch_model.bin that is not plain tensors is refused before any work (no traceback)."""
    import shutil

    import torch

    path = tmp_path / "test-sw.tsv"
    path.write_bytes(b"a\tb\tentailment\n" * 3000 + b"caf\xe9\tb\tentailment\n")  # far past the decoder's first block
    with pytest.raises(InputError, match=r"test-sw\.tsv:3001: not UTF-8 text \(byte b'\\xe9' at column 4\)"):
        formats.read_pair_tsv(path, get_task("xnli").labels)
    jsonl = tmp_path / "test-qu.jsonl"
    jsonl.write_bytes(b'{"premise": "\xff"}\n')
    with pytest.raises(InputError, match=r"test-qu\.jsonl:1: not UTF-8 text"):
        list(formats.read_jsonl(jsonl))

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "model.safetensors").unlink()
    torch.save({"payload": _Payload()}, model / "pytorch_model.bin")
    config = EvalConfig(tasks=["tatoeba"], langs=["sw"], data_dir=tmp_path, out_dir=tmp_path / "out",
                        tracking={"enabled": False})
    with pytest.raises(InputError, match=r"pytorch_model\.bin: does not load as plain weights"):
        evaluate(model, config)
    assert not (tmp_path / "out").exists()
