"""The Hugging Face datasets that carry XTREME-R's data, read through datasets.load_dataset from local
parquet files in each dataset's own schema (nothing downloads in tests): columns mapped by the
registry, ClassLabels named by the dataset, label facts per split."""

from __future__ import annotations

import json

import pytest

from weam.eval.api import evaluate
from weam.eval.config import EvalConfig
from weam.eval.data import load_split
from weam.eval.tasks import get_task
from weam.core.errors import InputError

CONTEXT = "The cat sat on the mat. Anna lives in New York."


def _answers(text):
    return {"text": [text], "answer_start": [CONTEXT.index(text)]}


def _parquet(tmp_path, name, rows, features=None):
    import datasets

    table = datasets.Dataset.from_list(rows, features=features)
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(str(path))
    return path


def _config(tmp_path, task, **extra):
    return EvalConfig(hf_datasets={task: str(tmp_path / task / "{split}-{lang}.parquet")}, **extra)


def test_facebook_xnli(tmp_path):
    import datasets

    features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])})
    _parquet(tmp_path, "xnli/test-sw.parquet", [{"premise": "a", "hypothesis": "c", "label": 0},
                                                {"premise": "b", "hypothesis": "d", "label": 2}], features)
    records = load_split(_config(tmp_path, "xnli"), get_task("xnli"), "test", "sw")
    assert [(r["sentence1"], r["sentence2"], r["label"]) for r in records] == [
        ("a", "c", "entailment"), ("b", "d", "contradiction")]  # facebook/xnli's test labels are gold
    bad = EvalConfig(hf_datasets={"xnli": str(tmp_path / "xnli/{split}-{lang}.parquet")},
                     hf_columns={"xnli": {"sentence1": "sentence_a"}})
    with pytest.raises(InputError, match="lacks column"):
        load_split(bad, get_task("xnli"), "test", "sw")


def test_cambridgeltl_xcopa_test_is_labelled(tmp_path):
    rows = [{"premise": "The man broke his toe.", "choice1": "a", "choice2": "b", "question": "cause", "label": 1,
             "idx": 1, "changed": False}]
    _parquet(tmp_path, "xcopa/test-qu.parquet", rows)
    records = load_split(_config(tmp_path, "xcopa"), get_task("xcopa"), "test", "qu")
    assert records[0]["label"] == 1 and records[0]["question"] == "cause"


def test_unimelb_wikiann(tmp_path):
    import datasets

    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
                                  "langs": datasets.Sequence(datasets.Value("string")),
                                  "spans": datasets.Sequence(datasets.Value("string"))})
    _parquet(tmp_path, "panx/test-yo.parquet", [{"tokens": ["Anna", "ni", "Lagos"], "ner_tags": [1, 0, 5],
                                                 "langs": ["yo"] * 3, "spans": ["PER: Anna", "LOC: Lagos"]}], features)
    records = load_split(_config(tmp_path, "panx"), get_task("panx"), "test", "yo")
    assert records[0]["tags"] == ["B-PER", "O", "B-LOC"]


def test_izhx_xtreme_r_udpos(tmp_path):
    _parquet(tmp_path, "udpos/test-wo.parquet", [{"tokens": ["Mu", "dem"], "pos_tags": ["PRON", "VERB"]}])
    records = load_split(_config(tmp_path, "udpos"), get_task("udpos"), "test", "wo")
    assert records[0] == {"tokens": ["Mu", "dem"], "tags": ["PRON", "VERB"], "line": 1}


@pytest.mark.parametrize("task, lang", [("xquad", "ro"), ("mlqa", "hi"), ("lareqa", "de")])
def test_squad_schema_datasets(task, lang, tmp_path):
    row = {"id": "q1", "title": "t", "context": CONTEXT, "question": "Where?", "answers": _answers("the mat")}
    _parquet(tmp_path, f"{task}/test-{lang}.parquet", [row])
    records = load_split(_config(tmp_path, task), get_task(task), "test", lang)
    assert records[0]["answers"] == [{"text": "the mat", "answer_start": CONTEXT.index("the mat")}]


def test_tydiqa_secondary_task_rows_are_split_by_language(tmp_path):
    rows = [{"id": f"{name}-{i}", "title": "t", "context": CONTEXT, "question": "Where?", "answers": _answers("the mat")}
            for i, name in enumerate(("swahili", "english", "swahili"))]
    _parquet(tmp_path, "tydiqa/test-sw.parquet", rows)
    records = load_split(_config(tmp_path, "tydiqa"), get_task("tydiqa"), "test", "sw")
    assert [r["id"] for r in records] == ["swahili-0", "swahili-2"] and records[0]["answers"]


def test_tydiqa_from_hf_is_scored(tiny_model_dir, tmp_path):
    """TyDiQA-GoldP's validation set keeps its answers on the hub (the download strips them)."""
    rows = [{"id": f"{name}-{i}", "title": "t", "context": CONTEXT, "question": "Where?", "answers": _answers("the mat")}
            for i, name in enumerate(("swahili", "english", "english"))]
    for split in ("test", "train"):
        _parquet(tmp_path, f"tydiqa/{split}-{'en' if split == 'train' else 'sw'}.parquet", rows)
    config = _config(tmp_path, "tydiqa", tasks=["tydiqa"], langs=["sw"], out_dir=tmp_path / "out",
                     tracking={"enabled": False}, hyperparams={"tydiqa": {"max_steps": 1, "max_seq_len": 64}})
    assert config.require_labelled(["sw"]) == "test"
    result = evaluate(tiny_model_dir, config)["tydiqa"]
    assert result["split"] == "test" and result["labels"]["sw"] == "hf" and "sw" in result["per_language"]


def test_izhx_mewsli_x_contextual_mentions(tmp_path):
    from tests.eval.conftest import mewslix_context

    text = "Anna wohnt in New York."
    record = mewslix_context("de", text, 0, 4, "de-0", "Q1")
    _parquet(tmp_path, "mewslix/dev-de.parquet", [record])
    rows = load_split(_config(tmp_path, "mewslix"), get_task("mewslix"), "dev", "de")
    from weam.eval import formats

    mentions = formats.mentions_of(rows[0], "x", 1)
    assert mentions == [{"example_id": "de-0", "query": "Anna: { Anna } wohnt in New York.", "entity_id": "Q1"}]


def test_mteb_tatoeba_bitext_mining_is_aligned_gold(tiny_model_dir, tmp_path):
    sentences = ["the cat sat on the mat .", "a dog ran home .", "rain falls ."]
    _parquet(tmp_path, "tatoeba/test-swh.parquet", [{"sentence1": s, "sentence2": s} for s in sentences])
    config = EvalConfig(tasks=["tatoeba"], langs=["sw"], tatoeba_encoder="pretrained", out_dir=tmp_path / "out",
                        hf_datasets={"tatoeba": str(tmp_path / "tatoeba/{split}-{code}.parquet")},
                        tracking={"enabled": False})
    result = evaluate(tiny_model_dir, config)["tatoeba"]
    assert result["per_language"]["sw"]["accuracy"] == pytest.approx(100.0) and result["labels"]["sw"] == "hf"
    assert json.loads((tmp_path / "out/tatoeba/seed1/sw.json").read_text())["split"] == "test"


def test_registry_names_current_namespaced_ids():
    ids = {name: get_task(name).hf.id for name in ("xnli", "xcopa", "panx", "udpos", "xquad", "mlqa", "tydiqa",
                                                    "mewslix", "lareqa", "tatoeba")}
    assert ids == {"xnli": "facebook/xnli", "xcopa": "cambridgeltl/xcopa", "panx": "unimelb-nlp/wikiann",
                   "udpos": "izhx/xtreme-r-udpos", "xquad": "google/xquad", "mlqa": "facebook/mlqa",
                   "tydiqa": "google-research-datasets/tydiqa", "mewslix": "izhx/mewsli-x",
                   "lareqa": "google-research-datasets/xquad_r", "tatoeba": "mteb/tatoeba-bitext-mining"}
