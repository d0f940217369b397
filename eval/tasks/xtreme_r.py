"""XTREME-R's ten tasks, one declarative entry each (sources: see :mod:`weam.eval.tasks`).

Language lists are ``evaluate.py``'s ``XTREME_R_TASK2LANGS`` in its order; LAReQA's is XQuAD-R's.
Hyper-parameters are the mBERT settings of ``scripts/train_*.sh`` (effective batch = per-GPU batch
8 × gradient accumulation 4 = 32 for classification/tagging, 4 × 8 = 32 for QA, 64 × 4 = 256 for
Mewsli-X, 4 × 4 = 16 for LAReQA).
"""

from __future__ import annotations

from weam.eval.kinds import (CLASSIFICATION, ENTITY_LINKING, MULTIPLE_CHOICE, QA_RETRIEVAL, SENTENCE_RETRIEVAL, SPAN_QA,
                              TAGGING)
from weam.eval.metrics import REFERENCE_METRICS
from weam.eval.tasks import FineTune, HFSource, Split, TaskSpec

XNLI_LABELS = ("contradiction", "entailment", "neutral")
PANX_LABELS = ("B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O")
UPOS_LABELS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
               "PUNCT", "SCONJ", "SYM", "VERB", "X")

# utils_preprocess.py tatoeba_preprocess: LASER's 3-letter file codes (fa → pes, sw → swh, zh → cmn).
TATOEBA_CODES = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa", "et": "est",
    "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun", "id": "ind",
    "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz", "ko": "kor", "ml": "mal", "mr": "mar",
    "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh", "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl",
    "tr": "tur", "ur": "urd", "vi": "vie", "zh": "cmn", "en": "eng", "az": "aze", "lt": "lit", "pl": "pol",
    "uk": "ukr", "ro": "ron",
}

_QA_FT = FineTune(learning_rate=3e-5, epochs=3.0, batch_size=32, max_seq_len=384, warmup_steps=500,
                  weight_decay=1e-4)
_SQUAD_FILES = {"train": "squad/train-v1.1.json", "dev": "squad/dev-v1.1.json"}
_QA_STRIPPED = ("utils_preprocess.remove_qa_test_annotations replaces every answer with "
                "{answer_start: 0, text: ''}")
_QA_COLUMNS = {"id": "id", "question": "question", "context": "context", "answers": "answers"}
# UD 2.5/2.7 treebanks without a dev file for these languages: udpos_preprocess writes no dev-<lang>.tsv.
_UD_NO_DEV = {lang: f"UD has no {lang} dev treebank (test only), so the download writes no dev-{lang}.tsv"
              for lang in ("kk", "th", "tl", "yo")}
TYDIQA_NAMES = {"ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian",
                "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu"}

TASKS: dict[str, TaskSpec] = {
    "xnli": TaskSpec(
        name="xnli", title="XNLI", kind=CLASSIFICATION, group="classification",
        languages=tuple("ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh".split(",")),
        metrics=("accuracy",), score="accuracy", train_data="MultiNLI (English), XNLI-MT train-en.tsv",
        files={"train": "xnli/train-en.tsv", "dev": "xnli/dev-en.tsv"},
        splits={"dev": Split("xnli/dev-{lang}.tsv", True, "XNLI-1.0 dev labels, kept by xnli_preprocess"),
                "test": Split("xnli/test-{lang}.tsv", False,
                              "xnli_preprocess writes test files without the label column")},
        input_format="TSV (csv quoting) sentence1<TAB>sentence2<TAB>label; test files have no label column",
        prediction_ext="tsv", labels=XNLI_LABELS,
        finetune=FineTune(learning_rate=2e-5, epochs=5.0, batch_size=32, max_seq_len=128),
        selection="best_dev", save_steps=100,
        hf=HFSource("facebook/xnli", "{lang}", {"train": "train", "dev": "validation", "test": "test"},
                    {"sentence1": "premise", "sentence2": "hypothesis", "label": "label"},
                    ("train", "dev", "test"))),
    "xcopa": TaskSpec(
        name="xcopa", title="XCOPA", kind=MULTIPLE_CHOICE, group="classification",
        languages=tuple("et,ht,id,it,qu,sw,ta,th,tr,vi,zh".split(",")),
        metrics=("accuracy",), score="accuracy",
        train_data="SIQA train, then COPA train (English), as train_xcopa.sh (SIQA when its files are present)",
        files={"train": "xcopa/train-en.jsonl", "dev": "xcopa/val-en.jsonl",
               "siqa_train": "siqa/socialIQa_v1.4_trn.jsonl", "siqa_dev": "siqa/socialIQa_v1.4_dev.jsonl"},
        splits={"dev": Split("xcopa/val-{lang}.jsonl", True, "XCOPA validation labels, kept by the download"),
                "test": Split("xcopa/test-{lang}.jsonl", False,
                              "xcopa_preprocess sets every test label to 0 (a placeholder, not gold)")},
        input_format="JSONL {premise, choice1, choice2, question: cause|effect, label: 0|1, idx}; SIQA JSONL "
                     "{context, question, answerA, answerB, answerC, correct: A|B|C}",
        prediction_ext="jsonl", labels=("0", "1"),
        finetune=FineTune(learning_rate=2e-5, epochs=5.0, batch_size=32, max_seq_len=128),
        hf=HFSource("cambridgeltl/xcopa", "{lang}", {"dev": "validation", "test": "test"},
                    {c: c for c in ("premise", "choice1", "choice2", "question", "label")}, ("dev", "test"),
                    notes="English COPA (train) is not in it: train stays on xcopa/train-en.jsonl")),
    "udpos": TaskSpec(
        name="udpos", title="UD-POS", kind=TAGGING, group="structured prediction",
        languages=tuple(("af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,ru,ta,te,th,tl,tr,"
                         "ur,vi,yo,zh,lt,pl,uk,wo,ro").split(",")),
        metrics=("f1", "accuracy"), score="f1",
        train_data="UD English treebanks (v2.5) train-en.tsv",
        files={"train": "udpos/train-en.tsv", "dev": "udpos/dev-en.tsv"},
        splits={"dev": Split("udpos/dev-{lang}.tsv", True, "UD dev treebanks (v2.5; v2.7 for lt, pl, uk, wo, ro)",
                             missing=_UD_NO_DEV),
                "test": Split("udpos/test-{lang}.tsv", False, "udpos_preprocess writes test tokens without tags")},
        input_format="one token<TAB>UPOS tag per line, blank line between sentences; test: token only",
        prediction_ext="tsv", labels=UPOS_LABELS,
        finetune=FineTune(learning_rate=2e-5, epochs=10.0, batch_size=32, max_seq_len=128),
        selection="best_dev", save_steps=500,
        hf=HFSource("izhx/xtreme-r-udpos", "{lang}", {"train": "train", "dev": "validation", "test": "test"},
                    {"tokens": "tokens", "tags": "pos_tags"}, ("train", "dev", "test"),
                    notes="XTREME-R's UD-POS incl. lt, pl, uk, wo, ro (google/xtreme's udpos.* is v1); test "
                          "labelled; dev only for en. Column names are this registry's reading of the card: "
                          "override with hf_columns"),
        notes="seqeval F1 as evaluate.py (token accuracy also reported)"),
    "panx": TaskSpec(
        name="panx", title="WikiANN-NER", kind=TAGGING, group="structured prediction",
        languages=tuple(("ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,"
                         "ko,th,sw,yo,my,zh,kk,tr,et,fi,hu,qu,pl,uk,az,lt,pa,gu,ro").split(",")),
        metrics=("f1", "precision", "recall"), score="f1",
        train_data="WikiANN (Rahimi et al. 2019 splits) English train-en.tsv",
        files={"train": "panx/train-en.tsv", "dev": "panx/dev-en.tsv"},
        splits={"dev": Split("panx/dev-{lang}.tsv", True, "WikiANN (Rahimi et al.) dev tags, kept by panx_preprocess"),
                "test": Split("panx/test-{lang}.tsv", False, "panx_preprocess writes test tokens without tags")},
        input_format="one token<TAB>IOB2 tag per line, blank line between sentences; test: token only",
        prediction_ext="tsv", labels=PANX_LABELS,
        finetune=FineTune(learning_rate=2e-5, epochs=10.0, batch_size=32, max_seq_len=128),
        selection="best_dev", save_steps=1000,
        hf=HFSource("unimelb-nlp/wikiann", "{lang}", {"train": "train", "dev": "validation", "test": "test"},
                    {"tokens": "tokens", "tags": "ner_tags"}, ("train", "dev", "test"),
                    notes="the same Rahimi et al. splits; ner_tags is a ClassLabel")),
    "xquad": TaskSpec(
        name="xquad", title="XQuAD", kind=SPAN_QA, group="question answering",
        languages=tuple("en,es,de,el,ru,tr,ar,vi,th,zh,hi,ro".split(",")),
        metrics=("exact_match", "f1"), score="mean(exact_match,f1)", train_data="SQuAD v1.1 train",
        files=dict(_SQUAD_FILES),
        splits={"test": Split("xquad/xquad.{lang}.json", False, _QA_STRIPPED,
                              missing={"ro": "download_xquad fetches 11 languages, not ro (evaluate.py lists ro "
                                             "for XTREME-R: its label file lives with the leaderboard); put "
                                             "deepmind/xquad's xquad.ro.json there or read google/xquad"})},
        input_format="SQuAD v1.1 JSON {data: [{paragraphs: [{context, qas: [{id, question, answers}]}]}]}",
        prediction_ext="json", finetune=_QA_FT,
        hf=HFSource("google/xquad", "xquad.{lang}", {"test": "validation"}, dict(_QA_COLUMNS), ("test",),
                    notes="XQuAD's only split (validation) with answers, ro included")),
    "mlqa": TaskSpec(
        name="mlqa", title="MLQA", kind=SPAN_QA, group="question answering",
        languages=tuple("en,es,de,ar,hi,vi,zh".split(",")),
        metrics=("exact_match", "f1"), score="mean(exact_match,f1)", train_data="SQuAD v1.1 train",
        files=dict(_SQUAD_FILES),
        splits={"dev": Split("mlqa/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json", True,
                             "MLQA dev answers (the download strips only MLQA_V1/test)"),
                "test": Split("mlqa/MLQA_V1/test/test-context-{lang}-question-{lang}.json", False, _QA_STRIPPED)},
        input_format="SQuAD v1.1 JSON", prediction_ext="json", finetune=_QA_FT,
        hf=HFSource("facebook/mlqa", "mlqa.{lang}.{lang}", {"dev": "validation", "test": "test"},
                    dict(_QA_COLUMNS), ("dev", "test")),
        answer_normalisation="mlqa", notes="MLQA's language-specific answer normalization (evaluate_mlqa.py)"),
    "tydiqa": TaskSpec(
        name="tydiqa", title="TyDiQA-GoldP", kind=SPAN_QA, group="question answering",
        languages=tuple("en,ar,bn,fi,id,ko,ru,sw,te".split(",")),
        metrics=("exact_match", "f1"), score="mean(exact_match,f1)", train_data="TyDiQA-GoldP English train",
        files={"train": "tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json"},
        # train_qa.sh reads tydiqa.en.train.json; tydiqa_preprocess writes tydiqa.goldp.en.train.json.
        file_aliases={"train": ("tydiqa/tydiqa-goldp-v1.1-train/tydiqa.en.train.json",)},
        splits={"test": Split("tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json", False,
                              "tydiqa_preprocess strips the answers of every dev file (TyDiQA-GoldP's dev set "
                              "is XTREME's test set), English included")},
        input_format="SQuAD v1.1 JSON", prediction_ext="json", finetune=_QA_FT,
        hf=HFSource("google-research-datasets/tydiqa", "secondary_task", {"train": "train", "test": "validation"},
                    dict(_QA_COLUMNS), ("train", "test"), language_names=TYDIQA_NAMES, id_prefix="{name}-",
                    notes="GoldP is the secondary_task config; rows of all languages, told apart by the id "
                          "prefix (<language name>-…)"),
        notes="no English dev answers: XTREME trains with --save_steps -1 and predicts with the last model"),
    "mewslix": TaskSpec(
        name="mewslix", title="Mewsli-X", kind=ENTITY_LINKING, group="retrieval",
        languages=tuple("ar,de,en,es,fa,ja,pl,ro,ta,tr,uk".split(",")),
        metrics=("map@20",), score="map@20", train_data="English Wikipedia mention-entity pairs",
        files={"train": "mewslix/wikipedia_pairs-train.jsonl", "dev": "mewslix/wikipedia_pairs-dev.jsonl",
               "candidates": "mewslix/candidate_set_entities.jsonl",
               "dev_labels": "mewslix/wikinews_labels/dev-{lang}.json",
               "test_labels": "mewslix/wikinews_labels/test-{lang}.json"},
        splits={"dev": Split("mewslix/wikinews_mentions/dev-{lang}.jsonl", True,
                             "mewslix_preprocess keeps dev entity ids (wikinews_labels/dev-<lang>.json)"),
                "test": Split("mewslix/wikinews_mentions/test-{lang}.jsonl", False,
                              "mewslix_preprocess blanks every test entity_id")},
        input_format="JSONL (utils_mewslix.py schema): Entity, MentionEntityPair, ContextualMentions; labels "
                     "JSON {example_id: [entity_id]}",
        prediction_ext="json",
        finetune=FineTune(learning_rate=2e-5, epochs=2.0, batch_size=256, max_seq_len=64),
        hf=HFSource("izhx/mewsli-x", "{lang}", {"dev": "validation", "test": "test"},
                    {"context": "context", "mentions": "mentions"}, ("dev",),
                    notes="wikinews_mentions/<lang>/{dev,test}.jsonl in the download's ContextualMentions "
                          "schema; candidates and Wikipedia pairs stay on the download's files")),
    "lareqa": TaskSpec(
        name="lareqa", title="LAReQA XQuAD-R", kind=QA_RETRIEVAL, group="retrieval",
        languages=tuple("ar,de,el,en,es,hi,ru,th,tr,vi,zh".split(",")),
        metrics=("map@20",), score="map@20", train_data="SQuAD v1.1 train as question → answer-sentence pairs",
        files=dict(_SQUAD_FILES),
        splits={"test": Split("lareqa/xquad-r/{lang}.json", True, "XQuAD-R keeps its answers (download_lareqa)")},
        input_format="SQuAD JSON with paragraph 'sentence_breaks' [[start, end], …]; pool = all languages",
        prediction_ext="json",
        finetune=FineTune(learning_rate=2e-5, epochs=3.0, batch_size=16, max_seq_len=352),
        hf=HFSource("google-research-datasets/xquad_r", "{lang}", {"test": "validation"}, dict(_QA_COLUMNS),
                    ("test",), notes="no sentence_breaks column: sentences are split on . ! ? and CJK stops")),
    "tatoeba": TaskSpec(
        name="tatoeba", title="Tatoeba", kind=SENTENCE_RETRIEVAL, group="retrieval",
        languages=tuple(("ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,"
                         "sw,zh,kk,tr,et,fi,hu,az,lt,pl,uk,ro").split(",")),
        # XTREME's accuracy is the score; the rest (eval.metrics.retrieval_scores) read it against
        # chance and string overlap, wherever the gold and the similarity matrix are at hand.
        metrics=("accuracy", "mrr", "accuracy_no_shared_word", *REFERENCE_METRICS), score="accuracy",
        reference_metrics=REFERENCE_METRICS,
        train_data="SQuAD v1.1 (XTREME-R's run_tatoeba.sh embeds with the SQuAD-fine-tuned encoder); "
                   "tatoeba_encoder=pretrained: none (XTREME's zero-shot encoder)",
        files={"test_eng": "tatoeba/{lang}-en.en", "laser": "tatoeba/tatoeba.{code}-eng.{code}",
               "laser_eng": "tatoeba/tatoeba.{code}-eng.eng"},
        splits={"test": Split("tatoeba/{lang}-en.{lang}", False,
                              "tatoeba_preprocess sorts the English side (gold withheld); LASER's aligned "
                              "tatoeba.<xxx>-eng.* files or a labels folder carry the gold")},
        input_format="download: <xx>-en.<xx> (LASER's order) and <xx>-en.en (sorted); or LASER v1's aligned "
                     "tatoeba.<xxx>-eng.<xxx> and tatoeba.<xxx>-eng.eng",
        prediction_ext="tsv", lang_codes=TATOEBA_CODES,
        hf=HFSource("mteb/tatoeba-bitext-mining", "{code}-eng", {"test": "test"},
                    {"sentence": "sentence1", "english": "sentence2"}, ("test",),
                    notes="LASER's aligned pairs for all 41 XTREME-R languages (google/xtreme has 36)"),
        notes="en → xx as evaluate_retrieval.py: the xx sentences are indexed, each English sentence queries; "
              "mean-pooled hidden states of one layer, cosine"),
}
