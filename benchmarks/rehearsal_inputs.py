"""Make the dress rehearsal's inputs, in the real formats, from what the repository ships or builds.

    python benchmarks/rehearsal_inputs.py [--study configs/studies/rehearsal.yaml]

Reads the study (and the fetch and clean configs it names: ``corpora_fetch``, ``corpora_clean``) for
where each input goes, then writes, nothing downloaded:

* **OPUS-100** as the Hugging Face repository ``Helsinki-NLP/opus-100`` lays it out (dataset card with
  ``configs``, ``<pair>/train-00000-of-00001.parquet``, ``{"translation": {...}}`` records) for every
  language of the fetch config's ``hf`` source, at that source's ``dataset`` folder;
* **the second corpus** (CCMatrix, WikiMatrix: every ``opus`` source) as OPUS serves it in Moses
  format, a zip per pair under the file name opustools' ``OpusGet`` gives the release that its
  shipped index lists (so ``weam data fetch`` resolves the real release and reads the zip it finds);
* **XTREME-R's download folder** for all ten tasks, for every language of the study a task covers,
  in the bytes XTREME's own preprocessing writes (tests/eval/conftest.py ``write_xtreme``, checked
  against google-research/xtreme's output by tests/eval/test_fixture_bytes.py), with Tatoeba's gold
  kept apart in the leaderboard layout (``labels/``) as a user keeps it;
* **a tiny mBERT-shaped base model**: a cased WordPiece vocabulary trained on the corpora and a
  randomly initialised 2-layer ``BertForMaskedLM`` (weam.modeling), saved as an HF folder.

The sentences are real translations shipped in pip packages (the demo's source, weam/data/README.md),
split between the two corpora of a pair; one pair of en-<first pool language> copies an English
Tatoeba sentence of the XTREME-R files, so the clean step's contamination check has something to find.
Outputs already there are kept (``--force`` rewrites them). Then: ``weam data fetch``, ``weam data clean``, ``weam study run``
(``make rehearsal`` runs all four).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.eval import conftest as xtreme  # noqa: E402  - the eval tests' XTREME-R writer
from tests.weam import opus_fixtures  # noqa: E402  - OPUS-100's hub layout

PAIRS_PER_CORPUS = 300
"""Sentence pairs per language and corpus: enough for the rehearsal's budget after cleaning."""


def moses_zip(path: Path, corpus: str, lang: str, rows: list[tuple[str, str]], licence: str) -> Path:
    """A Moses release as OPUS serves it: ``<corpus>.<a>-<b>.<side>`` (codes sorted), README, LICENSE."""
    first, second = sorted(("en", lang))
    stem = f"{corpus}.{first}-{second}"
    path.parent.mkdir(parents=True, exist_ok=True)
    sides = {"en": [en for en, _ in rows], lang: [xx for _, xx in rows]}
    with zipfile.ZipFile(path, "w") as bundle:
        for side, lines in sides.items():
            bundle.writestr(f"{stem}.{side}", "".join(line + "\n" for line in lines))
        if corpus == "CCMatrix":
            bundle.writestr(f"{stem}.scores", "".join("1.06\n" for _ in rows))
        bundle.writestr("README", f"{corpus} from OPUS, Moses format\n")
        bundle.writestr("LICENSE", licence + "\n")
    return path


def translations(lang: str, wanted: int) -> list[tuple[str, str]]:
    """Up to ``wanted`` (English, lang) pairs from the catalogs pip packages ship (the demo's data)."""
    from weam.data.config import DemoDataConfig
    from weam.data.demo import extract_language

    corpus = extract_language(lang, DemoDataConfig(languages=[lang], heldout_fraction=0.0))
    return corpus.splits["train"][:wanted]


def write_corpora(fetch, contamination: str, per_corpus: int) -> dict[str, int]:
    """OPUS-100's hub folder and every OPUS source's Moses zips; pairs per language written."""
    from weam.data.config import HFSource
    from weam.data.fetch import _opus_entry, _opus_getter

    counts: dict[str, int] = {}
    hf_rows: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for lang in fetch.languages:
        sources = fetch.sources_for(lang)
        rows = translations(lang, per_corpus * len(sources))
        if len(rows) < len(sources) * 20:
            raise SystemExit(f"{lang}: only {len(rows)} shipped translations; the rehearsal needs more")
        counts[lang] = len(rows)
        if lang == fetch.languages[0]:  # a copy of an evaluation sentence, for the contamination check
            rows = [(contamination, rows[0][1]), *rows[1:]]
        share = -(-len(rows) // len(sources))
        for i, source in enumerate(sources):
            part = rows[i * share:(i + 1) * share]
            if isinstance(source, HFSource):
                hf_rows.setdefault(source.dataset, {})[lang] = part
            else:
                getter = _opus_getter(source, lang)  # the release the index opustools ships lists
                archive = Path(getter.make_file_name(_opus_entry(getter, source, lang)))
                moses_zip(archive, source.corpus, lang, part,
                          f"{source.corpus}: the rehearsal's stand-in with translations shipped in pip packages")
    for dataset, pairs in hf_rows.items():
        shutil.rmtree(dataset, ignore_errors=True)
        opus_fixtures.opus100_repo(Path(dataset), pairs)
    return counts


def task_languages(study) -> dict[str, list[str]]:
    """Per task, every language of the study (targets, checks, pools, English) that eval reads for it
    (weam.eval.api.task_languages: the task's XTREME-R languages; Tatoeba any language but English, so
    the rehearsal writes Tatoeba files beyond XTREME-R's list, which a real download does not have)."""
    from weam.eval.api import task_languages as eval_languages
    from weam.eval.tasks import get_task
    from weam.study.plan import pool_languages

    wanted = list(dict.fromkeys(["en", *study.held_out, *study.high_resource, *pool_languages(study)]))
    out = {}
    for name in xtreme.WRITTEN_LANGS:
        spec = get_task(name)
        out[name] = eval_languages(spec, wanted) + (["en"] if name not in ("xcopa", "tatoeba") else [])
        out[name] = list(dict.fromkeys(out[name]))
    return out


def write_withheld_gold(download: Path, labels: Path, langs: dict[str, list[str]]) -> list[Path]:
    """The gold the download withholds, in the leaderboard layout (as a user keeps it apart): UD-POS
    test tags and TyDiQA-GoldP answers of the sentences write_xtreme wrote (Tatoeba's it writes itself)."""
    from weam.eval.tasks import get_task

    gold = {"udpos": lambda lang: [[tag for _, tag in sentence] for sentence in xtreme.POS_SENTENCES],
            "tydiqa": lambda lang: xtreme.squad(lang)}  # the leaderboard layout's label files: as predictions
    written = []
    for task, labels_of in gold.items():
        spec = get_task(task)
        for lang in langs[task]:
            path = labels / task / f"test-{lang}.{spec.prediction_ext}"
            spec.kind.write_predictions(path, labels_of(lang))
            written.append(path)
    return written


def write_model(texts: list[Path], out_dir: Path, vocab_size: int) -> Path:
    """A cased WordPiece tokenizer trained on ``texts`` and a randomly initialised tiny BertForMaskedLM."""
    from weam.modeling import build_masked_lm, save_model_and_tokenizer, train_wordpiece_tokenizer

    lines = [line for path in texts for line in path.read_text(encoding="utf-8").splitlines()]
    tokenizer = train_wordpiece_tokenizer(lines, vocab_size=vocab_size)
    model = build_masked_lm("tiny", vocab_size=len(tokenizer), max_position_embeddings=512)
    shutil.rmtree(out_dir, ignore_errors=True)
    return save_model_and_tokenizer(model, tokenizer, out_dir)


def main(argv: list[str] | None = None) -> int:
    from weam.core.config import load_config
    from weam.data.config import CleanConfig, FetchConfig
    from weam.study.plan import load_study

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=Path, default=ROOT / "configs/studies/rehearsal.yaml")
    parser.add_argument("--pairs", type=int, default=PAIRS_PER_CORPUS, help="pairs per language and corpus")
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--force", action="store_true", help="rewrite inputs that are already there")
    args = parser.parse_args(argv)
    t0 = time.time()
    study, _ = load_study(args.study)
    if study.corpora_fetch is None or study.xtreme_data_dir is None:
        raise SystemExit(f"{args.study}: names no corpora_fetch or xtreme_data_dir")
    fetch = load_config(FetchConfig, study.corpora_fetch)
    done = [Path(study.xtreme_data_dir), Path(study.base.model) / "config.json",
            *(Path(s.dataset) / "README.md" for s in fetch.sources if s.kind == "hf")]
    if not args.force and all(path.exists() for path in done):
        print(f"rehearsal inputs already there ({', '.join(map(str, done))}); --force rewrites them")
        return 0
    clean = load_config(CleanConfig, study.corpora_clean) if study.corpora_clean else None
    if clean is not None and clean.xtreme_data_dir and Path(clean.xtreme_data_dir).resolve() != study.xtreme_data_dir.resolve():
        raise SystemExit(f"{study.corpora_clean}: xtreme_data_dir {clean.xtreme_data_dir} is not the study's "
                         f"{study.xtreme_data_dir}: the contamination check would read other files")

    download = Path(study.xtreme_data_dir)
    shutil.rmtree(download, ignore_errors=True)
    langs = task_languages(study)
    xtreme.write_xtreme(download, langs)
    eval_step = next(step for step in load_study(args.study)[1] if step.stage == "eval")
    if eval_step.config.labels_dir is not None:
        write_withheld_gold(download, Path(eval_step.config.labels_dir), langs)
    print(f"XTREME-R download layout, ten tasks: {download} ({sum(1 for p in download.rglob('*') if p.is_file())} files)")

    counts = write_corpora(fetch, xtreme.TATOEBA_EN[0], args.pairs)
    print(f"OPUS-100 and {', '.join(s.corpus for s in fetch.sources if s.kind == 'opus')} files for "
          f"{len(counts)} pairs ({min(counts.values())}-{max(counts.values())} shipped translations each)")

    texts = []
    for source in fetch.sources:
        if source.kind == "hf":
            texts += sorted(Path(source.dataset).rglob("*.parquet"))
    lines_dir = download.parent / "tokenizer-texts"
    lines_dir.mkdir(parents=True, exist_ok=True)
    import pyarrow.parquet as pq

    corpus_text = lines_dir / "corpora.txt"
    with open(corpus_text, "w", encoding="utf-8") as handle:
        for path in texts:
            for record in pq.read_table(path).column("translation").to_pylist():
                handle.writelines(f"{text}\n" for text in record.values())
    xtreme_text = [p for p in download.rglob("*") if p.is_file() and p.suffix in {".tsv", ".en", ".json", ".jsonl"}
                   or p.parent.name == "tatoeba"]
    model = write_model([corpus_text, *xtreme_text], Path(study.base.model), args.vocab_size)
    print(f"tiny mBERT-shaped base (cased WordPiece, 2 layers, random init): {model}")
    print(f"done in {time.time() - t0:.1f} s; next: weam data fetch --config {study.corpora_fetch}"
          + (f" && weam data clean --config {study.corpora_clean}" if study.corpora_clean else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
