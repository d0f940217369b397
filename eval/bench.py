"""A tiny-model end-to-end run and a Tatoeba speed table (``python -m weam.eval.bench [--device cpu]``).

Writes synthetic data in XTREME's real formats (Tatoeba, Mewsli-X, LAReQA/XQuAD-R, SQuAD, XNLI),
builds a tiny BERT with weam.modeling, evaluates it on the retrieval tasks and XNLI with MLflow in a
temporary SQLite store, and prints the per-language scores, family aggregates and wall times.
The numbers measure the plumbing, not a model: the data are synthetic. On a busy shared CPU run it
with OMP_NUM_THREADS=1: with 2 OpenMP threads under load, the tiny model ran ~20x slower here.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

LANGS = ("sw", "yo", "de", "ur", "ta", "tr", "ar")
WORDS = "cat dog house river tree sun moon book water fire stone bird fish road city hand eye king".split()


def _sentence(rng: random.Random, n: int = 6) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + " ."


def _noisy(rng: random.Random, sentence: str, lang: str) -> str:
    """A 'translation': the English words with a language tag suffix on some (keeps shared sub-words)."""
    return " ".join(w + (lang if rng.random() < 0.3 else "") for w in sentence.split())


def build_data(root: Path, sentences: int, seed: int = 0) -> None:
    import csv
    import json

    from weam.eval.formats import write_tatoeba

    rng = random.Random(seed)
    eng = [_sentence(rng) for _ in range(sentences)]
    for lang in LANGS:
        write_tatoeba(root / "tatoeba", lang, [_noisy(rng, s, lang) for s in eng], eng)
    labels = ["entailment", "neutral", "contradiction"]
    rows = [(s, s if i % 3 == 0 else _sentence(rng), labels[i % 3]) for i, s in enumerate(eng)]
    for name in ("train-en", "dev-en", "dev-sw", "dev-ur", "dev-de"):  # dev: the split the download labels
        path = root / "xnli" / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, delimiter="\t").writerows(rows[:64])
    squad = {"version": "1.1", "data": [{"paragraphs": []}]}
    for p in range(8):
        sents = [_sentence(rng) for _ in range(3)]
        context = " ".join(sents)
        starts = [context.index(s) for s in sents]
        breaks = [[a, a + len(s)] for a, s in zip(starts, sents)]
        qas = [{"id": f"p{p}q{i}", "question": "where is " + sents[i].split()[1] + " ?",
                "answers": [{"text": sents[i].split()[1], "answer_start": starts[i] + len(sents[i].split()[0]) + 1}]}
               for i in range(3)]
        squad["data"][0]["paragraphs"].append({"context": context, "qas": qas, "sentence_breaks": breaks})
    for path in ("squad/train-v1.1.json", "squad/dev-v1.1.json", "lareqa/xquad-r/en.json", "lareqa/xquad-r/de.json",
                 "lareqa/xquad-r/ar.json"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(json.dumps(squad), encoding="utf-8")
    _mewslix(root, rng)


def _mewslix(root: Path, rng: random.Random) -> None:
    import json

    entities = [(f"Q{i}", f"{w} is a thing near the {rng.choice(WORDS)} .") for i, w in enumerate(WORDS)]
    folder = root / "mewslix"
    (folder / "wikinews_mentions").mkdir(parents=True, exist_ok=True)
    (folder / "wikinews_labels").mkdir(parents=True, exist_ok=True)

    def entity(e, d):
        return {"entity_id": e, "title": e, "description": d, "sentence_spans": [{"start": 0, "end": len(d)}],
                "description_language": "en", "description_url": "u"}

    def context(lang, text, word, example_id, entity_id):
        start = text.index(word)
        return ({"document_title": "t", "document_url": "u", "document_id": example_id, "language": lang, "text": text,
                 "sentence_spans": [{"start": 0, "end": len(text)}]},
                {"example_id": example_id, "mention_span": {"start": start, "end": start + len(word), "text": word},
                 "entity_id": entity_id})

    with open(folder / "candidate_set_entities.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(entity(e, d)) + "\n" for e, d in entities)
    pairs = []
    for i, (e, d) in enumerate(entities * 3):
        ctx, mention = context("en", f"we saw the {WORDS[int(e[1:])]} today .", WORDS[int(e[1:])], f"en{i}", e)
        pairs.append({"contextual_mention": {"context": ctx, "mention": mention}, "entity": entity(e, d)})
    for split in ("train", "dev"):
        (folder / f"wikipedia_pairs-{split}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    for lang in ("de", "tr", "ta", "ar"):
        records, labels = [], {}
        for i, (e, _) in enumerate(entities):
            word = WORDS[int(e[1:])]
            ctx, mention = context(lang, f"{word} {lang} nachricht {rng.choice(WORDS)} .", word, f"{lang}{i}", "")
            records.append({"context": ctx, "mentions": [mention]})
            labels[f"{lang}{i}"] = [e]
        (folder / "wikinews_mentions" / f"dev-{lang}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        (folder / "wikinews_labels" / f"dev-{lang}.json").write_text(json.dumps(labels))


def build_model(folder: Path, root: Path) -> Path:
    from weam.modeling import build_masked_lm, save_model_and_tokenizer, train_wordpiece_tokenizer

    texts = [line for path in sorted((root / "tatoeba").glob("*-en.*")) for line in path.read_text().splitlines()]
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=500)
    model = build_masked_lm("tiny", vocab_size=len(tokenizer), max_position_embeddings=128)
    return save_model_and_tokenizer(model, tokenizer, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from transformers.utils import logging as hf_logging

    from weam.eval.api import evaluate
    from weam.eval.config import EvalConfig
    from weam.core.tracking import RunLogger, store_uri

    hf_logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        root, work = Path(tmp) / "download", Path(tmp)
        build_data(root, args.sentences)
        model = build_model(work / "model", root)
        uri = store_uri(work)
        parent = RunLogger(uri, "bench", "tiny-model")
        steps = {"max_steps": 5, "batch_size": 16, "max_seq_len": 64}
        task_langs = {"tatoeba": list(LANGS), "mewslix": ["de", "tr", "ta", "ar"], "lareqa": ["en", "de", "ar"],
                      "xnli": ["sw", "ur", "de"]}
        config = EvalConfig(tasks=list(task_langs), data_dir=root, out_dir=work / "out", device=args.device,
                            labels_dir=root / "labels", tatoeba_encoder="pretrained",
                            hyperparams={t: steps for t in ("mewslix", "lareqa", "xnli")},
                            tracking={"uri": uri, "experiment": "bench"})
        started = time.perf_counter()
        timings = {}
        results = {}
        for task in config.tasks:
            t0 = time.perf_counter()
            results.update(evaluate(model, config.model_copy(update={"tasks": [task], "langs": task_langs[task]}), logger=parent))
            timings[task] = time.perf_counter() - t0
        total = time.perf_counter() - started
        _print(results, timings, total)
        t0 = time.perf_counter()
        for task in config.tasks:
            evaluate(model, config.model_copy(update={"tasks": [task], "langs": task_langs[task]}),
                     logger=parent)
        print(f"re-run with every cell cached: {time.perf_counter() - t0:.2f} s")
        quiet = config.model_copy(update={"tasks": ["tatoeba"], "langs": list(LANGS), "out_dir": work / "out2",
                                          "tracking": config.tracking.model_copy(update={"enabled": False})})
        t0 = time.perf_counter()
        evaluate(model, quiet)
        print(f"Tatoeba alone, tracking off: {len(LANGS)} languages × {args.sentences} sentences in "
              f"{time.perf_counter() - t0:.2f} s (model load included)")
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        runs = client.search_runs([client.get_experiment_by_name("bench").experiment_id])
        nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.run_id]
        logged = sorted(client.get_run(parent.run_id).data.metrics)
        print(f"MLflow: {len(logged)} metrics in the run evaluate() was handed (e.g. {logged[:4]} …); "
              f"{len(nested)} child runs, one per fine-tuning seed of a task fine-tuned with several")


def _print(results: dict, timings: dict, total: float) -> None:
    print(f"{'task':8} {'lang':5} {'family':15} {'low':4} {'score':>7}")
    from weam.core.languages import get_language

    for task, result in results.items():
        from weam.eval.tasks import get_task

        spec = get_task(task)
        for lang, values in result["per_language"].items():
            language = get_language(lang)
            print(f"{task:8} {lang:5} {language.family:15} {'yes' if language.low_resource else '':4} "
                  f"{spec.score_of(values):7.1f}")
        families = ", ".join(f"{k} {v:.1f}" for k, v in result["families"].items())
        low = "-" if result["low_resource"] is None else f"{result['low_resource']:.1f}"
        print(f"{task:8} avg {result['avg']:.1f} | low-resource {low} | {families} | {timings[task]:.1f} s")
    print(f"total wall time: {total:.1f} s")


if __name__ == "__main__":
    main()
