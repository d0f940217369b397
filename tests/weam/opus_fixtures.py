"""Tiny corpora in the real on-disk schemas of each source, made here (nothing is downloaded):

* OPUS-100 as the Hugging Face repository ``Helsinki-NLP/opus-100`` lays it out: a dataset card whose
  YAML ``configs`` map each pair (codes sorted: ``de-en``, ``en-fi``) to ``<pair>/<split>-00000-of-00001.parquet``,
  records ``{"translation": {"en": …, "fi": …}}``, ``license: unknown``.
* CCMatrix as OPUS serves it in Moses format: ``en-fi.txt.zip`` holding ``CCMatrix.en-fi.en``,
  ``CCMatrix.en-fi.fi``, ``CCMatrix.en-fi.scores``, ``README`` and ``LICENSE``, saved under the name
  opustools' OpusGet gives it (``CCMatrix_latest_moses_en-fi.txt.zip``); plus an OPUS index (the
  ``opusfile`` table of the SQLite database opustools ships) holding the real rows of those releases.
* XTREME-R's download folder, only the files the tests need (Tatoeba, XNLI, XQuAD, TyDiQA-GoldP).
"""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

# Sentences checked with py3langid: every side below is identified as its language.
EN_FI = [
    ("The cat sits on the windowsill and watches the birds.", "Kissa istuu ikkunalaudalla ja katselee lintuja."),
    ("It will probably rain all day tomorrow.", "Huomenna sataa luultavasti koko päivän."),
    ("She bought fresh strawberries at the market.", "Hän osti torilta tuoreita mansikoita."),
    ("The train leaves the station at eight o'clock.", "Juna lähtee asemalta kello kahdeksan."),
    ("The children played in the park all afternoon.", "Lapset leikkivät puistossa koko iltapäivän."),
    ("This book tells about Finnish history.", "Tämä kirja kertoo suomalaisesta historiasta."),
    ("I have lived in Helsinki for ten years.", "Olen asunut Helsingissä kymmenen vuotta."),
    ("The coffee is too hot to drink.", "Kahvi on liian kuumaa juotavaksi."),
]
EN_DE = [
    ("The cat sits on the windowsill and watches the birds.", "Die Katze sitzt auf der Fensterbank und beobachtet die Vögel."),
    ("It will probably rain all day tomorrow.", "Morgen wird es wahrscheinlich den ganzen Tag regnen."),
    ("She bought fresh strawberries at the market.", "Sie kaufte frische Erdbeeren auf dem Markt."),
]

TATOEBA_ENG = "Thank you for your help last night."
"""An English line of XTREME's ``tatoeba/fi-en.en``; a corpus pair copying it must be removed."""
TATOEBA_FIN = "Talvella järvet jäätyvät usein."
XQUAD_SENTENCE = "In winter the lakes often freeze."
"""A sentence of an XQuAD English context."""

# Real rows of opustools 1.9.0's index (opusdata.db, table opusfile).
OPUS_ROWS = [
    (38016, "en", "fi", "CCMatrix", "moses", "v1", "https://object.pouta.csc.fi/OPUS-CCMatrix/v1/moses/en-fi.txt.zip",
     2363659, "", 35982562, 345361390, 467601802, "True", 0),
    (37928, "de", "en", "CCMatrix", "moses", "v1", "https://object.pouta.csc.fi/OPUS-CCMatrix/v1/moses/de-en.txt.zip",
     20684503, "", 247470736, 3750866560, 3898679829, "True", 0),
]
OPUSFILE_SCHEMA = """CREATE TABLE opusfile (
    id integer PRIMARY KEY, source text, target text, corpus text, preprocessing text, version text, url text,
    size integer, documents integer, alignment_pairs integer, source_tokens integer, target_tokens integer,
    latest text, updated integer)"""
CCMATRIX_LICENSE = ("CCMatrix is released by Meta under the terms of the CC-BY-NC license; "
                    "see https://github.com/facebookresearch/LASER/tree/main/tasks/CCMatrix")


def opus100_repo(root: Path, pairs: dict[str, list[tuple[str, str]]]) -> Path:
    """A local copy of the hub repository's layout for the given ``{lang: [(en, xx), …]}`` train splits."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    configs = []
    for lang, rows in pairs.items():
        name = "-".join(sorted(("en", lang)))
        folder = root / name
        folder.mkdir(exist_ok=True)
        table = pa.table({"translation": pa.array([{"en": en, lang: xx} for en, xx in rows],
                                                  type=pa.struct([("en", pa.string()), (lang, pa.string())]))})
        pq.write_table(table, folder / "train-00000-of-00001.parquet")
        configs.append(f"- config_name: {name}\n  data_files:\n  - split: train\n    path: {name}/train-*\n")
    card = ("---\nlanguage:\n- en\nlicense: unknown\ntask_categories:\n- translation\npretty_name: OPUS-100\n"
            "configs:\n" + "".join(configs) + "---\n\n# Dataset Card for OPUS-100\n")
    (root / "README.md").write_text(card, encoding="utf-8")
    return root


def opus_index(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute(OPUSFILE_SCHEMA)
        db.executemany("INSERT INTO opusfile VALUES (" + ",".join("?" * 14) + ")", OPUS_ROWS)
    return path


def ccmatrix_zip(download_dir: Path, lang: str, rows: list[tuple[str, str]]) -> Path:
    first, second = sorted(("en", lang))
    stem = f"CCMatrix.{first}-{second}"
    download_dir.mkdir(parents=True, exist_ok=True)
    path = download_dir / f"CCMatrix_latest_moses_{first}-{second}.txt.zip"
    sides = {"en": [en for en, _ in rows], lang: [xx for _, xx in rows]}
    with zipfile.ZipFile(path, "w") as bundle:
        for side, lines in sides.items():
            bundle.writestr(f"{stem}.{side}", "".join(line + "\n" for line in lines))
        bundle.writestr(f"{stem}.scores", "".join("1.06\n" for _ in rows))
        bundle.writestr("README", "CCMatrix v1 from OPUS, Moses format\n")
        bundle.writestr("LICENSE", CCMATRIX_LICENSE + "\n")
    return path


def xtreme_download(root: Path) -> Path:
    """XTREME-R's download layout with the few evaluation files the tests read."""
    # tatoeba_preprocess's layout: fi-en.fi in LASER's order, fi-en.en sorted (gold withheld)
    (root / "tatoeba").mkdir(parents=True)
    (root / "tatoeba" / "fi-en.fi").write_text(f"{TATOEBA_FIN}\nHyvää huomenta.\n", encoding="utf-8")
    (root / "tatoeba" / "fi-en.en").write_text(f"{XQUAD_SENTENCE.replace('often ', '')}\n{TATOEBA_ENG}\n",
                                               encoding="utf-8")
    (root / "xnli").mkdir()
    (root / "xnli" / "test-de.tsv").write_text("Das ist ein Test.\tEs ist ein Test.\n", encoding="utf-8")
    (root / "xnli" / "dev-en.tsv").write_text("A man is sleeping.\tA person rests.\tentailment\n", encoding="utf-8")
    (root / "xquad").mkdir()
    context = f"Finland has many lakes. {XQUAD_SENTENCE} Skating is popular there."
    squad = {"data": [{"title": "Finland", "paragraphs": [{"context": context, "qas": [
        {"id": "q1", "question": "What happens to the lakes in winter?",
         "answers": [{"text": "freeze", "answer_start": context.index("freeze")}]}]}]}]}
    (root / "xquad" / "xquad.en.json").write_text(json.dumps(squad), encoding="utf-8")
    return root
