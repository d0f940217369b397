"""XTREME-R's ten tasks, one declarative entry each (sources: see :mod:`eval.tasks`).

Language lists are ``evaluate.py``'s ``XTREME_R_TASK2LANGS`` in its order; LAReQA's is XQuAD-R's.
Hyper-parameters are the mBERT settings of ``scripts/train_*.sh`` (effective batch = per-GPU batch
8 × gradient accumulation 4 = 32 for classification/tagging, 4 × 8 = 32 for QA, 64 × 4 = 256 for
Mewsli-X, 4 × 4 = 16 for LAReQA).
"""

from __future__ import annotations

from eval.tasks import FineTune, TaskSpec

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

TASKS: dict[str, TaskSpec] = {
    "xnli": TaskSpec(
        name="xnli", title="XNLI", kind="classification", group="classification",
        languages=tuple("ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh".split(",")),
        metrics=("accuracy",), score="accuracy", train_data="MultiNLI (English), XNLI-MT train-en.tsv",
        files={"train": "xnli/train-en.tsv", "dev": "xnli/dev-{lang}.tsv", "test": "xnli/test-{lang}.tsv"},
        input_format="TSV (csv quoting) sentence1<TAB>sentence2<TAB>label; test files have no label column",
        prediction_ext="tsv", labels=XNLI_LABELS,
        finetune=FineTune(learning_rate=2e-5, epochs=5.0, batch_size=32, max_seq_len=128),
        hf_dataset="xnli"),
    "xcopa": TaskSpec(
        name="xcopa", title="XCOPA", kind="multiple_choice", group="classification",
        languages=tuple("et,ht,id,it,qu,sw,ta,th,tr,vi,zh".split(",")),
        metrics=("accuracy",), score="accuracy",
        train_data="SIQA train, then COPA train (English), as train_xcopa.sh (SIQA when its files are present)",
        files={"train": "xcopa/train-en.jsonl", "dev": "xcopa/val-{lang}.jsonl", "test": "xcopa/test-{lang}.jsonl",
               "siqa_train": "siqa/socialIQa_v1.4_trn.jsonl", "siqa_dev": "siqa/socialIQa_v1.4_dev.jsonl"},
        input_format="JSONL {premise, choice1, choice2, question: cause|effect, label: 0|1, idx}; SIQA JSONL "
                     "{context, question, answerA, answerB, answerC, correct: A|B|C}",
        prediction_ext="jsonl", labels=("0", "1"),
        finetune=FineTune(learning_rate=2e-5, epochs=5.0, batch_size=32, max_seq_len=128),
        hf_dataset="xcopa"),
    "udpos": TaskSpec(
        name="udpos", title="UD-POS", kind="tagging", group="structured prediction",
        languages=tuple(("af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,ru,ta,te,th,tl,tr,"
                         "ur,vi,yo,zh,lt,pl,uk,wo,ro").split(",")),
        metrics=("f1", "accuracy"), score="f1",
        train_data="UD English treebanks (v2.5) train-en.tsv",
        files={"train": "udpos/train-en.tsv", "dev": "udpos/dev-{lang}.tsv", "test": "udpos/test-{lang}.tsv"},
        input_format="one token<TAB>UPOS tag per line, blank line between sentences; test: token only",
        prediction_ext="tsv", labels=UPOS_LABELS,
        finetune=FineTune(learning_rate=2e-5, epochs=10.0, batch_size=32, max_seq_len=128),
        hf_dataset="google/xtreme", notes="seqeval F1 as evaluate.py (token accuracy also reported)"),
    "panx": TaskSpec(
        name="panx", title="WikiANN-NER", kind="tagging", group="structured prediction",
        languages=tuple(("ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,"
                         "ko,th,sw,yo,my,zh,kk,tr,et,fi,hu,qu,pl,uk,az,lt,pa,gu,ro").split(",")),
        metrics=("f1", "precision", "recall"), score="f1",
        train_data="WikiANN (Rahimi et al. 2019 splits) English train-en.tsv",
        files={"train": "panx/train-en.tsv", "dev": "panx/dev-{lang}.tsv", "test": "panx/test-{lang}.tsv"},
        input_format="one token<TAB>IOB2 tag per line, blank line between sentences; test: token only",
        prediction_ext="tsv", labels=PANX_LABELS,
        finetune=FineTune(learning_rate=2e-5, epochs=10.0, batch_size=32, max_seq_len=128),
        hf_dataset="wikiann"),
    "xquad": TaskSpec(
        name="xquad", title="XQuAD", kind="qa", group="question answering",
        languages=tuple("en,es,de,el,ru,tr,ar,vi,th,zh,hi,ro".split(",")),
        metrics=("exact_match", "f1"), score="mean(exact_match,f1)", train_data="SQuAD v1.1 train",
        files={**_SQUAD_FILES, "test": "xquad/xquad.{lang}.json"},
        input_format="SQuAD v1.1 JSON {data: [{paragraphs: [{context, qas: [{id, question, answers}]}]}]}",
        prediction_ext="json", finetune=_QA_FT, hf_dataset="google/xquad"),
    "mlqa": TaskSpec(
        name="mlqa", title="MLQA", kind="qa", group="question answering",
        languages=tuple("en,es,de,ar,hi,vi,zh".split(",")),
        metrics=("exact_match", "f1"), score="mean(exact_match,f1)", train_data="SQuAD v1.1 train",
        files={**_SQUAD_FILES, "test": "mlqa/MLQA_V1/test/test-context-{lang}-question-{lang}.json",
               "target_dev": "mlqa/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json"},
        input_format="SQuAD v1.1 JSON", prediction_ext="json", finetune=_QA_FT, hf_dataset="facebook/mlqa",
        notes="MLQA's language-specific answer normalization (evaluate_mlqa.py)"),
    "tydiqa": TaskSpec(
        name="tydiqa", title="TyDiQA-GoldP", kind="qa", group="question answering",
        languages=tuple("en,ar,bn,fi,id,ko,ru,sw,te".split(",")),
        metrics=("exact_match", "f1"), score="mean(exact_match,f1)", train_data="TyDiQA-GoldP English train",
        files={"train": "tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json",
               "dev": "tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.en.dev.json",
               "test": "tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json"},
        input_format="SQuAD v1.1 JSON", prediction_ext="json", finetune=_QA_FT, hf_dataset="google/xtreme"),
    "mewslix": TaskSpec(
        name="mewslix", title="Mewsli-X", kind="retrieval_el", group="retrieval",
        languages=tuple("ar,de,en,es,fa,ja,pl,ro,ta,tr,uk".split(",")),
        metrics=("map@20",), score="map@20", train_data="English Wikipedia mention-entity pairs",
        files={"train": "mewslix/wikipedia_pairs-train.jsonl", "dev": "mewslix/wikipedia_pairs-dev.jsonl",
               "candidates": "mewslix/candidate_set_entities.jsonl",
               "test": "mewslix/wikinews_mentions/test-{lang}.jsonl",
               "test_labels": "mewslix/wikinews_labels/test-{lang}.json"},
        input_format="JSONL (utils_mewslix.py schema): Entity, MentionEntityPair, ContextualMentions; labels "
                     "JSON {example_id: [entity_id]}",
        prediction_ext="json",
        finetune=FineTune(learning_rate=2e-5, epochs=2.0, batch_size=256, max_seq_len=64)),
    "lareqa": TaskSpec(
        name="lareqa", title="LAReQA XQuAD-R", kind="retrieval_qa", group="retrieval",
        languages=tuple("ar,de,el,en,es,hi,ru,th,tr,vi,zh".split(",")),
        metrics=("map@20",), score="map@20", train_data="SQuAD v1.1 train as question → answer-sentence pairs",
        files={"train": "squad/train-v1.1.json", "dev": "squad/dev-v1.1.json", "test": "lareqa/xquad-r/{lang}.json"},
        input_format="SQuAD JSON with paragraph 'sentence_breaks' [[start, end], …]; pool = all languages",
        prediction_ext="json",
        finetune=FineTune(learning_rate=2e-5, epochs=3.0, batch_size=16, max_seq_len=352)),
    "tatoeba": TaskSpec(
        name="tatoeba", title="Tatoeba", kind="sentence_retrieval", group="retrieval",
        languages=tuple(("ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,"
                         "sw,zh,kk,tr,et,fi,hu,az,lt,pl,uk,ro").split(",")),
        metrics=("accuracy",), score="accuracy",
        train_data="none: the pre-trained encoder (XTREME); tatoeba_after_squad=true: after SQuAD v1.1 "
                   "fine-tuning, as XTREME-R's run_tatoeba.sh",
        files={"test": "tatoeba/tatoeba.{code}-eng.{code}", "test_eng": "tatoeba/tatoeba.{code}-eng.eng"},
        input_format="LASER v1 line-aligned pair: tatoeba.<xxx>-eng.<xxx> and tatoeba.<xxx>-eng.eng",
        prediction_ext="tsv", lang_codes=TATOEBA_CODES, hf_dataset="google/xtreme",
        notes="mean-pooled hidden states of one layer, cosine nearest neighbour (xx → en)"),
}
