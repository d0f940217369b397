"""Tiny XTREME-R data in the exact layout and formats scripts/download_data.sh produces."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from weam.eval.tasks import get_task


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
    """panx_preprocess / udpos_preprocess layout: token<TAB>tag lines (test: token only), a blank line
    between sentences, one newline at the end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = ["\n".join(f"{w}\t{t}" if with_tags else w for w, t in s) for s in sentences]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def _jsonl(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def _json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def squad(lang: str, with_breaks: bool = False, prefix: str = "") -> dict:
    context = "The cat sat on the mat. Anna lives in New York. The file was saved before closing."
    qas = [("q1", "Where did the cat sit?", "the mat"), ("q2", "Where does Anna live?", "New York"),
           ("q3", "What was saved?", "The file")]
    paragraph = {"context": context, "qas": [
        {"id": prefix + qid, "question": q, "answers": [{"text": a, "answer_start": context.index(a)}]}
        for qid, q, a in qas]}
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


def write_mewslix(root: Path, langs: list[str] | None = None) -> None:
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
    # mewslix_preprocess: dev keeps entity ids, test blanks them (labels file {id: [""]}); json.dumps'
    # defaults (ASCII escapes), one record per line; labels with json.dump, no newline.
    mentions = {lang: (text, mention, entity) for lang, text, mention, entity in MEWSLIX_MENTIONS}
    for lang in langs or list(mentions):
        text, mention, entity = mentions.get(lang, ("Google hired Anna.", "Google", "Q3"))
        start = text.index(mention)
        for split, gold in (("dev", entity), ("test", "")):
            record = mewslix_context(lang, text, start, start + len(mention), f"{lang}-0", gold)
            path = root / f"mewslix/wikinews_mentions/{split}-{lang}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record) + "\n", encoding="utf-8")
            labels = root / f"mewslix/wikinews_labels/{split}-{lang}.json"
            labels.parent.mkdir(parents=True, exist_ok=True)
            labels.write_text(json.dumps({f"{lang}-0": [gold]}), encoding="utf-8")


MEWSLIX_MENTIONS = [("de", "Anna wohnt in New York.", "Anna", "Q1"), ("tr", "Google Anna'yı işe aldı.", "Google", "Q3")]


def strip_squad(data: dict) -> dict:
    """remove_qa_test_annotations: one paragraph per question, every answer {answer_start: 0, text: ''}."""
    out = [{"paragraphs": [{"context": p["context"], "qas": [
        {"answers": [{"answer_start": 0, "text": ""}], "question": qa["question"], "id": qa["id"]}]}]}
        for doc in data["data"] for p in doc["paragraphs"] for qa in p["qas"]]
    return {"data": out, "version": data["version"]}


def _squad_file(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")  # json.dump's defaults, as utils_preprocess


def tydiqa_train(data: dict) -> dict:
    """tydiqa_preprocess's per-language train file: one paragraph per question, id = its last part."""
    out = [{"paragraphs": [{"context": p["context"], "qas": [
        {"answers": qa["answers"], "question": qa["question"], "id": qa["id"].split("-")[-1]}]}]}
        for doc in data["data"] for p in doc["paragraphs"] for qa in p["qas"]]
    return {"data": out, "version": data["version"]}


def write_tatoeba_download(folder: Path, lang: str, src: list[str], eng: list[str]) -> None:
    """tatoeba_preprocess: the xx file copied, the English file sorted (its gold order withheld)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{lang}-en.{lang}").write_text("".join(s + "\n" for s in src), encoding="utf-8")
    (folder / f"{lang}-en.en").write_text("".join(s + "\n" for s in sorted(eng)), encoding="utf-8")


def _xnli_test(path: Path) -> None:
    _tsv(path, [row[:2] for row in XNLI_ROWS])


WRITTEN_LANGS = {
    "xnli": ["en", "sw", "ur"], "xcopa": ["sw", "qu"], "panx": ["en", "sw", "yo"],
    "udpos": ["en", "yo", "wo"], "xquad": ["en", "de"], "mlqa": ["de", "zh"], "tydiqa": ["en", "sw"],
    "mewslix": ["de", "tr"], "lareqa": ["en", "de"], "tatoeba": ["sw", "de", "ur", "ja"],
}
"""The languages write_xtreme writes per task by default (the eval tests' tree; FIXTURE_LANGS below are
the target languages among them). English training files are always written."""


def write_xtreme(root: Path, langs: dict[str, list[str]] | None = None) -> Path:
    """The tree scripts/download_data.sh leaves, with its conventions: XNLI/PAN-X/UD-POS test files
    without labels, XCOPA test labels all 0, QA test files (and all TyDiQA dev files) with empty answers,
    Mewsli-X test entity ids blanked, Tatoeba's English side sorted; dev files keep their labels.

    ``langs``: task → the languages to write (default WRITTEN_LANGS; a task left out keeps its default);
    the same tiny sentences in every language. The dress rehearsal (benchmarks/rehearsal_inputs.py)
    writes every task for the study's languages this way."""
    langs = {**WRITTEN_LANGS, **(langs or {})}
    _tsv(root / "xnli/train-en.tsv", XNLI_ROWS * 2)
    for lang in langs["xnli"]:
        _tsv(root / f"xnli/dev-{lang}.tsv", XNLI_ROWS)
    for lang in langs["xnli"]:
        _xnli_test(root / f"xnli/test-{lang}.tsv")
    _jsonl(root / "xcopa/train-en.jsonl", COPA * 2)
    _jsonl(root / "xcopa/val-en.jsonl", COPA)
    _jsonl(root / "xcopa/test-en.jsonl", [{**r, "label": 0} for r in COPA])  # xcopa_preprocess: all 0
    _jsonl(root / "siqa/socialIQa_v1.4_trn.jsonl", SIQA * 2)
    _jsonl(root / "siqa/socialIQa_v1.4_dev.jsonl", SIQA)
    for lang in langs["xcopa"]:
        _jsonl(root / f"xcopa/val-{lang}.jsonl", COPA)
        _jsonl(root / f"xcopa/test-{lang}.jsonl", [{**r, "label": 0} for r in COPA])
    _conll(root / "panx/train-en.tsv", PANX_SENTENCES * 2)
    for lang in langs["panx"]:
        _conll(root / f"panx/dev-{lang}.tsv", PANX_SENTENCES)
        _conll(root / f"panx/test-{lang}.tsv", PANX_SENTENCES, with_tags=False)
    _conll(root / "udpos/train-en.tsv", POS_SENTENCES * 2)
    no_dev = get_task("udpos").splits["dev"].missing  # UD has no dev treebank for yo, kk, th, tl
    for lang in langs["udpos"]:
        if lang not in no_dev:  # the download has no dev-<lang>.tsv for those
            _conll(root / f"udpos/dev-{lang}.tsv", POS_SENTENCES)
    for lang in langs["udpos"]:
        _conll(root / f"udpos/test-{lang}.tsv", POS_SENTENCES, with_tags=False)
    _squad_file(root / "squad/train-v1.1.json", squad("en"))
    _squad_file(root / "squad/dev-v1.1.json", squad("en"))
    for lang in langs["xquad"]:  # download_xquad fetches no ro
        _squad_file(root / f"xquad/xquad.{lang}.json", strip_squad(squad(lang)))
    for lang in langs["mlqa"]:
        _squad_file(root / f"mlqa/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json", squad(lang))
        _squad_file(root / f"mlqa/MLQA_V1/test/test-context-{lang}-question-{lang}.json", strip_squad(squad(lang)))
    tydi = squad("en", prefix="english-")
    _squad_file(root / "tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json", tydiqa_train(tydi))
    for lang in langs["tydiqa"]:
        _squad_file(root / f"tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json", strip_squad(squad(lang)))
    write_mewslix(root, langs["mewslix"])
    for lang in langs["lareqa"]:
        _json(root / f"lareqa/xquad-r/{lang}.json", squad(lang, with_breaks=True))
    for lang in langs["tatoeba"]:
        write_tatoeba_download(root / "tatoeba", lang, TATOEBA_XX, TATOEBA_EN)
        # Not part of the download: the gold a user keeps apart (leaderboard layout, for labels_dir).
        gold = sorted(range(len(TATOEBA_EN)), key=lambda i: TATOEBA_EN[i])
        labels = root / "labels" / "tatoeba" / f"test-{lang}.tsv"
        labels.parent.mkdir(parents=True, exist_ok=True)
        labels.write_text("".join(f"{i}\n" for i in gold), encoding="utf-8")
    return root


TATOEBA_EN = [f"sentence number {i} about the cat ." for i in (3, 11, 0, 7, 5, 1, 9, 2, 10, 4, 8, 6)]
TATOEBA_XX = [f"sentensi {i} paka ." for i in (3, 11, 0, 7, 5, 1, 9, 2, 10, 4, 8, 6)]


# Target languages each task's fixture files cover.
FIXTURE_LANGS = {"xnli": ["sw", "ur"], "xcopa": ["sw", "qu"], "panx": ["sw", "yo"], "udpos": ["yo", "wo"],
                 "xquad": ["de", "ro"], "mlqa": ["de", "zh"], "tydiqa": ["sw"], "mewslix": ["de", "tr"],
                 "lareqa": ["en", "de"], "tatoeba": ["sw", "de"]}


@pytest.fixture(scope="session")
def xtreme_dir(tmp_path_factory) -> Path:
    return write_xtreme(tmp_path_factory.mktemp("download"))
