"""Tiny XTREME-R data in the exact layout and formats scripts/download_data.sh produces."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from eval.formats import write_tatoeba

XNLI_ROWS = [
    ("the cat sat on the mat .", "a cat is on the mat .", "entailment"),
    ("the cat sat on the mat .", "the cat is not on the mat .", "contradiction"),
    ("save the file before closing .", "the window is open .", "neutral"),
    ('he said "hello" .', "he spoke .", "entailment"),
]

PANX_SENTENCES = [
    [("Anna", "B-PER"), ("lives", "O"), ("in", "O"), ("New", "B-LOC"), ("York", "I-LOC"), (".", "O")],
    [("Google", "B-ORG"), ("hired", "O"), ("Anna", "B-PER"), (".", "O")],
    [("the", "O"), ("cat", "O"), ("sat", "O")],
]
POS_SENTENCES = [
    [("the", "DET"), ("cat", "NOUN"), ("sat", "VERB"), (".", "PUNCT")],
    [("kissa", "NOUN"), ("istuu", "VERB"), ("matolla", "NOUN"), (".", "PUNCT")],
]


def _tsv(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter="\t").writerows(rows)


def _conll(path: Path, sentences, with_tags: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = ["\n".join(f"{w}\t{t}" if with_tags else w for w, t in s) for s in sentences]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def _jsonl(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def _json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def squad(lang: str, with_breaks: bool = False) -> dict:
    context = "The cat sat on the mat. Anna lives in New York. The file was saved before closing."
    qas = [("q1", "Where did the cat sit?", "the mat"), ("q2", "Where does Anna live?", "New York"),
           ("q3", "What was saved?", "The file")]
    paragraph = {"context": context, "qas": [
        {"id": qid, "question": q, "answers": [{"text": a, "answer_start": context.index(a)}]} for qid, q, a in qas]}
    if with_breaks:
        paragraph["sentence_breaks"] = [[0, 23], [24, 47], [48, len(context)]]
    return {"version": "1.1", "data": [{"title": f"t-{lang}", "paragraphs": [paragraph]}]}


COPA = [
    {"premise": "The man broke his toe.", "choice1": "He dropped a hammer on his foot.",
     "choice2": "He got a hole in his sock.", "question": "cause", "label": 0, "idx": 1},
    {"premise": "I tipped the bottle.", "choice1": "The liquid in the bottle froze.",
     "choice2": "The liquid in the bottle poured out.", "question": "effect", "label": 1, "idx": 2},
]


SIQA = [
    {"context": "Tracy didn't go home that evening.", "question": "What does Tracy need to do before this?",
     "answerA": "make a new plan", "answerB": "Go home and see Riley", "answerC": "Find somewhere to go",
     "correct": "C"},
    {"context": "Sydney walked past a homeless woman.", "question": "How would you describe Sydney?",
     "answerA": "sympathetic", "answerB": "like a person who was unable to help", "answerC": "incredulous",
     "correct": "A"},
]


def mewslix_context(lang: str, text: str, start: int, end: int, example_id: str, entity: str) -> dict:
    return {
        "context": {"document_title": "t", "document_url": "u", "document_id": "d", "language": lang, "text": text,
                    "sentence_spans": [{"start": 0, "end": len(text)}], "section_title": None},
        "mentions": [{"example_id": example_id, "mention_span": {"start": start, "end": end, "text": text[start:end]},
                      "entity_id": entity, "metadata": None}],
    }


ENTITIES = [("Q1", "Anna is a person who lives in New York."), ("Q2", "New York is a city."),
            ("Q3", "Google is a company.")]


def write_mewslix(root: Path) -> None:
    _jsonl(root / "mewslix/candidate_set_entities.jsonl", [
        {"entity_id": e, "title": e, "description": d, "sentence_spans": [{"start": 0, "end": len(d)}],
         "description_language": "en", "description_url": "u"} for e, d in ENTITIES])
    pairs = []
    for i, (entity, text, mention) in enumerate([("Q1", "Anna lives in New York.", "Anna"),
                                                 ("Q2", "Anna lives in New York.", "New York"),
                                                 ("Q3", "Google hired Anna.", "Google")]):
        start = text.index(mention)
        cm = mewslix_context("en", text, start, start + len(mention), f"en-{i}", entity)
        description = dict(ENTITIES)[entity]
        pairs.append({"contextual_mention": {"context": cm["context"], "mention": cm["mentions"][0]},
                      "entity": {"entity_id": entity, "title": entity, "description": description,
                                 "sentence_spans": [{"start": 0, "end": len(description)}],
                                 "description_language": "en", "description_url": "u"}})
    _jsonl(root / "mewslix/wikipedia_pairs-train.jsonl", pairs)
    _jsonl(root / "mewslix/wikipedia_pairs-dev.jsonl", pairs)
    for lang, text, mention, entity in [("de", "Anna wohnt in New York.", "Anna", "Q1"),
                                        ("tr", "Google Anna'yı işe aldı.", "Google", "Q3")]:
        start = text.index(mention)
        record = mewslix_context(lang, text, start, start + len(mention), f"{lang}-0", "")
        _jsonl(root / f"mewslix/wikinews_mentions/test-{lang}.jsonl", [record])
        _json(root / f"mewslix/wikinews_labels/test-{lang}.json", {f"{lang}-0": [entity]})


def write_xtreme(root: Path) -> Path:
    _tsv(root / "xnli/train-en.tsv", XNLI_ROWS * 2)
    _tsv(root / "xnli/dev-en.tsv", XNLI_ROWS)
    for lang in ("sw", "ur"):
        _tsv(root / f"xnli/test-{lang}.tsv", XNLI_ROWS)
    _jsonl(root / "xcopa/train-en.jsonl", COPA * 2)
    _jsonl(root / "xcopa/val-en.jsonl", COPA)
    _jsonl(root / "siqa/socialIQa_v1.4_trn.jsonl", SIQA * 2)
    _jsonl(root / "siqa/socialIQa_v1.4_dev.jsonl", SIQA)
    for lang in ("sw", "qu"):
        _jsonl(root / f"xcopa/test-{lang}.jsonl", COPA)
    _conll(root / "panx/train-en.tsv", PANX_SENTENCES * 2)
    _conll(root / "panx/dev-en.tsv", PANX_SENTENCES)
    for lang in ("sw", "yo"):
        _conll(root / f"panx/test-{lang}.tsv", PANX_SENTENCES)
    _conll(root / "udpos/train-en.tsv", POS_SENTENCES * 2)
    _conll(root / "udpos/dev-en.tsv", POS_SENTENCES)
    for lang in ("yo", "wo"):
        _conll(root / f"udpos/test-{lang}.tsv", POS_SENTENCES)
    _json(root / "squad/train-v1.1.json", squad("en"))
    _json(root / "squad/dev-v1.1.json", squad("en"))
    _json(root / "xquad/xquad.de.json", squad("de"))
    _json(root / "mlqa/MLQA_V1/test/test-context-de-question-de.json", squad("de"))
    _json(root / "mlqa/MLQA_V1/test/test-context-zh-question-zh.json", squad("zh"))
    _json(root / "tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json", squad("en"))
    _json(root / "tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.en.dev.json", squad("en"))
    _json(root / "tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.sw.dev.json", squad("sw"))
    write_mewslix(root)
    for lang in ("en", "de"):
        _json(root / f"lareqa/xquad-r/{lang}.json", squad(lang, with_breaks=True))
    eng = [f"sentence number {i} about the cat ." for i in range(12)]
    for lang in ("sw", "de", "ur", "ja"):
        write_tatoeba(root / "tatoeba", lang, [f"sentensi {i} paka ." for i in range(12)], eng)
    return root


# Target languages each task's fixture files cover.
FIXTURE_LANGS = {"xnli": ["sw", "ur"], "xcopa": ["sw", "qu"], "panx": ["sw", "yo"], "udpos": ["yo", "wo"],
                 "xquad": ["de"], "mlqa": ["de", "zh"], "tydiqa": ["sw"], "mewslix": ["de", "tr"],
                 "lareqa": ["en", "de"], "tatoeba": ["sw", "de"]}


@pytest.fixture(scope="session")
def xtreme_dir(tmp_path_factory) -> Path:
    return write_xtreme(tmp_path_factory.mktemp("download"))
