"""``weam data fetch``: English–X corpora from OPUS, through Hugging Face datasets or opustools.

Two kinds of source (:mod:`weam.data.config`):

* ``hf``: a Hugging Face dataset with OPUS-100's record schema, ``{"translation": {"en": …, "fi": …}}``,
  one config per pair named by the two codes sorted (``de-en``, ``en-fi``), splits train/validation/test
  (``Helsinki-NLP/opus-100``: parquet files ``<pair>/<split>-00000-of-00001.parquet``). Read with
  ``datasets.load_dataset(..., streaming=True)``, so a large split is never held in memory or cached whole.
* ``opus``: an OPUS release in Moses format (``CCMatrix``, ``WikiMatrix``, ``NLLB``…). opustools'
  ``OpusGet`` resolves corpus, release and pair to the release's zip (with the OPUS index the package
  ships, or the OPUS API) and downloads it into ``download_dir`` unless it is already there. The zip
  holds ``<Corpus>.<a>-<b>.<a>``, ``<Corpus>.<a>-<b>.<b>`` (line-aligned, codes sorted), ``LICENSE``,
  ``README`` and alignment metadata.

Output per pair: ``<out_dir>/en-<xx>/<source>.en`` and ``<source>.<xx>`` (one sentence a line; a line
break inside a record becomes a space, counted), ``manifest.json`` with each source's id, version
(hub commit or OPUS release), licence, URL and counts; ``<out_dir>/manifest.json`` (written last)
summarises all pairs. A re-run with the same sources and intact outputs is skipped per pair.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from weam.data.config import PIVOT, FetchConfig, HFSource, OpusSource
from weam.core.errors import InputError, WeamError
from weam.core.manifest import (MANIFEST_NAME, atomic_directory, atomic_write, atomic_write_json, describe_file,
                           fingerprint, package_versions, read_manifest)
from weam.core.progress import Progress

STAGE = "data.fetch"
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85\x0b\x0c]+")


def pair_name(lang: str) -> str:
    return f"{PIVOT}-{lang}"


def fetch(config: FetchConfig) -> dict[str, Any]:
    """Fetch every source for every language; returns the summary manifest."""
    out = Path(config.out_dir)
    check_releases(config)
    summary: dict[str, Any] = {"stage": STAGE, "pivot": PIVOT, "pairs": {}}
    for lang in config.languages:
        summary["pairs"][pair_name(lang)] = fetch_pair(config, lang)
    summary["created"] = _now()
    summary["versions"] = package_versions(("weam", "datasets", "opustools", "huggingface_hub"))
    atomic_write_json(out / MANIFEST_NAME, summary)
    return summary


def fetch_pair(config: FetchConfig, lang: str) -> dict[str, Any]:
    """Fetch one pair's sources into ``<out_dir>/en-<lang>`` (built under a temporary name, swapped in whole)."""
    pair_dir = Path(config.out_dir) / pair_name(lang)
    chosen, skipped = [], {}
    for source in config.sources_for(lang):
        if isinstance(source, OpusSource) and source.missing == "skip":
            try:
                _opus_entry(_opus_getter(source, lang), source, lang)
            except WeamError as exc:
                skipped[source.name] = str(exc)
                continue
        chosen.append(source)
    if not chosen:
        raise WeamError(f"en-{lang}: no source has data ({'; '.join(skipped.values())})")
    settings = {"lang": lang, "sources": [source.model_dump(mode="json", exclude={"languages"}) for source in chosen],
                "skipped": sorted(skipped)}
    key = fingerprint({}, settings)
    previous = read_manifest(pair_dir)
    if previous and previous.get("fingerprint") == key and _outputs_intact(pair_dir, previous):
        return previous
    with atomic_directory(pair_dir) as tmp:
        sources = {}
        for source in chosen:
            fetcher = _fetch_hf if isinstance(source, HFSource) else _fetch_opus
            sources[source.name] = fetcher(source, lang, tmp)
        manifest = {
            "stage": STAGE, "pair": pair_name(lang), "fingerprint": key, "config": settings, "sources": sources,
            "skipped": skipped,
            "outputs": {f"{name}.{side}": describe_file(tmp / f"{name}.{side}", tmp)
                        for name in sources for side in (PIVOT, lang)},
            "counts": {name: info["counts"] for name, info in sources.items()},
            "versions": package_versions(("weam", "datasets", "opustools", "huggingface_hub")),
            "created": _now(),
        }
        atomic_write_json(tmp / MANIFEST_NAME, manifest)
    return manifest


def _outputs_intact(folder: Path, manifest: dict[str, Any]) -> bool:
    for info in manifest.get("outputs", {}).values():
        path = folder / info["path"]
        if not path.is_file() or path.stat().st_size != info["bytes"]:
            return False
    return bool(manifest.get("outputs"))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def one_line(text: str) -> tuple[str, bool]:
    """The text on one line (line breaks become one space), and whether it had any."""
    flat = _LINE_BREAKS.sub(" ", text)
    return flat.strip(), flat != text


def write_pairs(pairs: Iterator[tuple[str, str]], folder: Path, name: str, lang: str, total: int | None,
                max_pairs: int | None, description: str) -> dict[str, int]:
    """Write a source's pairs as ``<name>.en`` / ``<name>.<lang>``; returns its counts."""
    counts = {"pairs": 0, "line_breaks_replaced": 0, "src_words": 0, "tgt_words": 0}
    limit = min(total, max_pairs) if total and max_pairs else (max_pairs or total)
    with atomic_write(folder / f"{name}.{PIVOT}") as src_out, atomic_write(folder / f"{name}.{lang}") as tgt_out, \
            Progress(description, total=limit, unit="pairs") as bar:
        for src, tgt in pairs:
            if max_pairs is not None and counts["pairs"] >= max_pairs:
                break
            src, src_broken = one_line(src)
            tgt, tgt_broken = one_line(tgt)
            counts["line_breaks_replaced"] += src_broken + tgt_broken
            src_out.write(src + "\n")
            tgt_out.write(tgt + "\n")
            counts["pairs"] += 1
            counts["src_words"] += len(src.split())
            counts["tgt_words"] += len(tgt.split())
            bar.update(counts["pairs"])
    return counts


# --- Hugging Face datasets ---------------------------------------------------------------------------

def _fetch_hf(source: HFSource, lang: str, folder: Path) -> dict[str, Any]:
    from datasets import load_dataset

    config_name = source.config_name.format(pair=pair_name(lang), sorted_pair="-".join(sorted((PIVOT, lang))))
    where = f"{source.dataset} (config {config_name}, split {source.split})"
    try:
        dataset = load_dataset(source.dataset, config_name, split=source.split, revision=source.revision,
                               streaming=True)
    except Exception as exc:  # datasets raises many kinds; the user needs the id, config and cause
        raise WeamError(f"{where}: cannot be loaded: {type(exc).__name__}: {exc}") from None
    info = dataset.info
    split_info = (info.splits or {}).get(source.split) if info else None
    total = split_info.num_examples if split_info is not None and split_info.num_examples else None

    def records() -> Iterator[tuple[str, str]]:
        for number, record in enumerate(dataset, start=1):
            translation = record.get(source.field)
            if not isinstance(translation, dict) or PIVOT not in translation or lang not in translation:
                raise InputError(where, f"record {number}: expected {source.field!r} with keys "
                                        f"{PIVOT!r} and {lang!r}, got {record!r:.200}")
            yield translation[PIVOT] or "", translation[lang] or ""

    counts = write_pairs(records(), folder, source.name, lang, total, source.max_pairs, f"fetch {source.name} {lang}")
    return {
        "kind": "hf", "source": source.dataset, "config": config_name, "split": source.split,
        "version": _hub_revision(source), "licence": source.licence or (info.license if info else None) or "unknown",
        "url": None if Path(source.dataset).exists() else f"https://huggingface.co/datasets/{source.dataset}",
        "counts": counts,
    }


def _hub_revision(source: HFSource) -> str:
    """The commit the hub resolves the requested revision to; a local folder: its data files' hash."""
    local = Path(source.dataset)
    if local.is_dir():
        from weam.core.manifest import file_sha256

        files = sorted(p for p in local.rglob("*") if p.is_file())
        digest = fingerprint({str(p.relative_to(local)): file_sha256(p) for p in files}, {})
        return f"local:{digest[:16]}"
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(source.dataset, revision=source.revision).sha or (source.revision or "main")
    except Exception:  # offline: record what was asked for
        return source.revision or "main"


# --- OPUS releases through opustools -----------------------------------------------------------------

def _fetch_opus(source: OpusSource, lang: str, folder: Path) -> dict[str, Any]:
    entry, archive = _opus_archive(source, lang)
    first, second = sorted((PIVOT, lang))
    stem = f"{entry['corpus']}.{first}-{second}"
    try:
        return _read_opus_archive(source, lang, folder, entry, archive, stem)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        # A cut-short download: removed, so the next run downloads it again instead of trusting it.
        archive.unlink(missing_ok=True)
        raise InputError(archive, f"not a complete zip archive ({exc}); removed it, the next run downloads it "
                                  "again") from None


def _read_opus_archive(source: OpusSource, lang: str, folder: Path, entry: dict[str, Any], archive: Path,
                       stem: str) -> dict[str, Any]:
    with zipfile.ZipFile(archive) as bundle:
        names = set(bundle.namelist())
        members = {side: _member(names, stem, side, archive) for side in (PIVOT, lang)}
        licence = source.licence or _licence_text(bundle, names)
        for extra in ("LICENSE", "README"):
            if extra in names:
                (folder / f"{source.name}.{extra}").write_bytes(bundle.read(extra))
        total = entry.get("alignment_pairs") if isinstance(entry.get("alignment_pairs"), int) else None
        with bundle.open(members[PIVOT]) as src_raw, bundle.open(members[lang]) as tgt_raw:
            src_lines = io.TextIOWrapper(src_raw, encoding="utf-8", newline="\n")
            tgt_lines = io.TextIOWrapper(tgt_raw, encoding="utf-8", newline="\n")
            pairs = _aligned(src_lines, tgt_lines, archive, members)
            try:
                counts = write_pairs(pairs, folder, source.name, lang, total, source.max_pairs,
                                     f"fetch {source.name} {lang}")
            except UnicodeDecodeError:
                raise _first_bad_line(bundle, archive, members) from None
    return {
        "kind": "opus", "source": f"OPUS {entry['corpus']}", "version": entry["version"], "licence": licence,
        "url": entry["url"], "archive": describe_file(archive), "opus_id": entry.get("id"),
        "opus_alignment_pairs": entry.get("alignment_pairs"), "counts": counts,
    }


def _opus_getter(source: OpusSource, lang: str):
    from opustools import OpusGet

    kwargs: dict[str, Any] = {}
    if source.database is not None:
        kwargs["database"] = str(source.database)
    Path(source.download_dir).mkdir(parents=True, exist_ok=True)
    return OpusGet(source=PIVOT, target=lang, directory=source.corpus, release=source.version,
                   preprocess="moses", local_db=source.local_db, download_dir=str(source.download_dir),
                   suppress_prompts=True, **kwargs)


def check_releases(config: FetchConfig) -> None:
    """Look every OPUS release up before downloading anything; name all that do not exist at once."""
    problems = []
    for lang in config.languages:
        for source in config.sources_for(lang):
            if isinstance(source, OpusSource) and source.missing == "fail":
                try:
                    _opus_entry(_opus_getter(source, lang), source, lang)
                except WeamError as exc:
                    problems.append(str(exc))
    if problems:
        raise WeamError("; ".join(problems) + " (limit a source to the pairs it has with its `languages` key)")


def _opus_entry(getter, source: OpusSource, lang: str) -> dict[str, Any]:
    what = f"OPUS {source.corpus} {source.version} en-{lang} (moses)"
    try:
        if source.local_db:
            entries = getter.dbo.get_corpora(dict(getter.parameters))
        else:
            entries = getter.get_response(getter.url)["corpora"]
    except Exception as exc:
        raise WeamError(f"{what}: cannot look the release up: {type(exc).__name__}: {exc}") from None
    wanted = sorted((PIVOT, lang))
    entries = [e for e in entries if e.get("preprocessing") == "moses" and sorted((e["source"], e["target"])) == wanted]
    if not entries:
        raise WeamError(f"{what}: OPUS lists no such release (check the corpus id, version and language codes)")
    return entries[0]


def _opus_archive(source: OpusSource, lang: str) -> tuple[dict[str, Any], Path]:
    """Resolve the release's Moses zip with OpusGet and download it unless it is already there."""
    getter = _opus_getter(source, lang)
    what = f"OPUS {source.corpus} {source.version} en-{lang} (moses)"
    entry = _opus_entry(getter, source, lang)
    archive = Path(getter.make_file_name(entry))
    if not archive.is_file():
        getter.download([entry], getter.format_size(entry["size"]))
        if not archive.is_file():  # OpusGet reports a failed download by printing, not raising
            raise WeamError(f"{what}: download of {entry['url']} to {archive} failed")
    return entry, archive


def _member(names: set[str], stem: str, side: str, archive: Path) -> str:
    name = f"{stem}.{side}"
    if name not in names:
        raise InputError(archive, f"no member {name!r} (members: {', '.join(sorted(names))})")
    return name


def _licence_text(bundle: zipfile.ZipFile, names: set[str]) -> str:
    for member in ("LICENSE", "README"):
        if member in names:
            text = bundle.read(member).decode("utf-8", errors="replace").strip()
            if text:
                return text
    return "unknown"


def _aligned(src_lines, tgt_lines, archive: Path, members: dict[str, str]) -> Iterator[tuple[str, str]]:
    number = 0
    for number, src in enumerate(src_lines, start=1):
        tgt = tgt_lines.readline()
        if not tgt:
            raise InputError(archive, f"{members[PIVOT]} has more lines than the other side", number)
        yield src.rstrip("\n"), tgt.rstrip("\n")
    if tgt_lines.readline():
        raise InputError(archive, f"the other side has more lines than {members[PIVOT]}", number + 1)


def _first_bad_line(bundle: zipfile.ZipFile, archive: Path, members: dict[str, str]) -> InputError:
    """The first line of either side that is not UTF-8 (the decoder reads ahead in blocks, so the
    line it failed on is not the line that holds the bad byte)."""
    for member in members.values():
        with bundle.open(member) as raw:
            for number, line in enumerate(raw, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return InputError(f"{archive}:{member}", f"not UTF-8 text (byte {line[exc.start:exc.start + 1]!r} "
                                                             f"at column {exc.start + 1})", number)
    return InputError(archive, "not UTF-8 text")


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str, str, str, int, int, int]]:
    """(pair, source, version, licence first line, pairs, en words, xx words) per pair and source."""
    rows = []
    for pair, manifest in summary["pairs"].items():
        for name, info in manifest["sources"].items():
            licence = (info.get("licence") or "").strip().splitlines()
            counts = info["counts"]
            rows.append((pair, name, str(info.get("version")), licence[0][:60] if licence else "unknown",
                         counts["pairs"], counts["src_words"], counts["tgt_words"]))
    return rows


def read_fetch_manifest(in_dir: Path) -> dict[str, Any]:
    path = Path(in_dir) / MANIFEST_NAME
    if not path.is_file():
        raise InputError(path, "not found: run `weam data fetch` first (or point in_dir at its out_dir)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON: {exc.msg}", exc.lineno) from None
    if data.get("stage") != STAGE:
        raise InputError(path, f"not a `weam data fetch` manifest (stage {data.get('stage')!r})")
    return data
