"""Loaders on XTREME's file formats, the Tatoeba writer, and bad input named by file and line."""

from __future__ import annotations

import json

import pytest

from eval import formats
from eval.api import evaluate
from eval.config import EvalConfig
from eval.data import load_records
from eval.tasks import get_task
from weam.errors import ConfigError, InputError
from weam.config import load_config


def test_loaders_read_the_fixture_layout(xtreme_dir):
    config = EvalConfig(data_dir=xtreme_dir)
    xnli = load_records(config, get_task("xnli"), "test", "sw")
    assert xnli[3] == {"sentence1": 'he said "hello" .', "sentence2": "he spoke .", "label": "entailment", "line": 4}
    panx = load_records(config, get_task("panx"), "test", "yo")
    assert panx[0]["tokens"][:2] == ["Anna", "lives"] and panx[0]["tags"][3:5] == ["B-LOC", "I-LOC"]
    assert len(panx) == 3
    copa = load_records(config, get_task("xcopa"), "test", "qu")
    assert copa[1]["question"] == "effect" and copa[1]["label"] == 1
    qa = load_records(config, get_task("mlqa"), "test", "zh")
    assert qa[1]["answers"][0]["text"] == "New York" and qa[1]["id"] == "q2"
    mentions = formats.read_mewslix_mentions(xtreme_dir / "mewslix/wikinews_mentions/test-de.jsonl")
    assert mentions == [{"example_id": "de-0", "query": "Anna: { Anna } wohnt in New York.", "entity_id": None}]


def test_write_tatoeba_uses_xtremes_three_letter_codes(tmp_path):
    formats.write_tatoeba(tmp_path, "sw", ["paka  ameketi", "mbwa"], ["the cat sat", "dog"])
    formats.write_tatoeba(tmp_path, "fa", ["گربه"], ["cat"])
    formats.write_tatoeba(tmp_path, "zh_Hans", ["猫"], ["cat"])
    formats.write_tatoeba(tmp_path, "pa", ["ਬਿੱਲੀ"], ["cat"])  # not a Tatoeba language in XTREME-R: ISO 639-3
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["tatoeba.cmn-eng.cmn", "tatoeba.cmn-eng.eng", "tatoeba.pan-eng.eng", "tatoeba.pan-eng.pan",
                     "tatoeba.pes-eng.eng", "tatoeba.pes-eng.pes", "tatoeba.swh-eng.eng", "tatoeba.swh-eng.swh"]
    assert formats.read_tatoeba(tmp_path, "swh") == (["paka ameketi", "mbwa"], ["the cat sat", "dog"])


def test_missing_language_file_is_named(tiny_model_dir, xtreme_dir, tmp_path):
    config = EvalConfig(tasks=["xnli"], langs=["ar"], data_dir=xtreme_dir, out_dir=tmp_path / "out",
                        hyperparams={"xnli": {"max_steps": 1}}, tracking={"enabled": False})
    with pytest.raises(InputError, match=r"xnli/test-ar\.tsv: missing file"):
        evaluate(tiny_model_dir, config)


def test_missing_tatoeba_language_is_named(tiny_model_dir, xtreme_dir, tmp_path):
    config = EvalConfig(tasks=["tatoeba"], langs=["yo"], data_dir=xtreme_dir, out_dir=tmp_path / "out",
                        tracking={"enabled": False})
    with pytest.raises(InputError, match=r"tatoeba\.yor-eng\.yor: missing file"):
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
    from weam.errors import WeamError

    config = EvalConfig(data_dir=xtreme_dir, split="dev")
    with pytest.raises(WeamError, match="task xquad has no de dev split"):
        load_records(config, get_task("xquad"), "dev", "de")
    assert load_records(config, get_task("xnli"), "dev", "en")


def test_tatoeba_sides_must_align(tmp_path):
    formats.write_tatoeba(tmp_path, "sw", ["a", "b"], ["x", "y"])
    (tmp_path / "tatoeba.swh-eng.eng").write_text("x\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"tatoeba\.swh-eng\.eng:2: has 1 lines but tatoeba\.swh-eng\.swh has 2"):
        formats.read_tatoeba(tmp_path, "swh")


def test_hugging_face_path_reads_the_same_schema(tiny_model_dir, tmp_path):
    """hf_datasets goes through datasets.load_dataset; offline we point it at local JSON lines."""
    folder = tmp_path / "hf"
    folder.mkdir()
    rows = [{"sentence1": "the cat sat", "sentence2": "a cat", "label": 1},
            {"sentence1": "the cat sat", "sentence2": "no cat", "label": 0}]
    for name in ("train-en", "dev-en", "test-sw"):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pattern = str(folder / "{split}-{lang}.jsonl")
    config = EvalConfig(tasks=["xnli"], langs=["sw"], hf_datasets={"xnli": pattern}, out_dir=tmp_path / "out",
                        hyperparams={"xnli": {"max_steps": 1, "batch_size": 2}}, tracking={"enabled": False})
    assert load_records(config, get_task("xnli"), "test", "sw")[0]["label"] == "entailment"
    result = evaluate(tiny_model_dir, config)["xnli"]
    assert set(result["per_language"]) == {"sw"}
    bad = folder / "test-sw.jsonl"
    bad.write_text(json.dumps({**rows[0], "label": 7}) + "\n")
    with pytest.raises(InputError, match="label index 7"):
        load_records(config, get_task("xnli"), "test", "sw")


def test_shipped_configs_validate(tmp_path):
    from pathlib import Path

    for path in sorted(Path("configs/eval").glob("*.yaml")):
        config = load_config(EvalConfig, path)
        assert config.tasks
    with pytest.raises(ConfigError, match="unknown task 'xnlj'"):
        load_config(EvalConfig, None, ["tasks=[xnlj]"])


def test_hugging_face_columns_and_class_labels_are_mapped(tmp_path):
    """A dataset with the hub's XNLI schema (premise/hypothesis, ClassLabel entailment/neutral/contradiction)."""
    import datasets

    features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])})
    table = datasets.Dataset.from_dict({"premise": ["a", "b"], "hypothesis": ["c", "d"], "label": [0, 2]},
                                       features=features)
    table.to_parquet(str(tmp_path / "test-sw.parquet"))
    config = EvalConfig(hf_datasets={"xnli": str(tmp_path / "{split}-{lang}.parquet")},
                        hf_columns={"xnli": {"sentence1": "premise", "sentence2": "hypothesis"}})
    records = load_records(config, get_task("xnli"), "test", "sw")
    assert [(r["sentence1"], r["sentence2"], r["label"]) for r in records] == [
        ("a", "c", "entailment"), ("b", "d", "contradiction")]
    unmapped = EvalConfig(hf_datasets={"xnli": str(tmp_path / "{split}-{lang}.parquet")})
    with pytest.raises(InputError, match="lacks column"):
        load_records(unmapped, get_task("xnli"), "test", "sw")
