"""``weam data fetch`` + ``weam data clean`` on local files in OPUS-100's (HF) and CCMatrix's (OPUS Moses zip)
real schemas: Moses pairs, manifests, per-filter counts, the contamination report. Nothing downloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.weam import opus_fixtures as fx
from weam.data.clean import FILTERS, clean, normal_form
from weam.data.config import CleanConfig, FetchConfig, HFSource, OpusSource
from weam.data.fetch import fetch
from weam.core.errors import ConfigError, WeamError

FI_HF = [
    ("The cat sits on the windowsill and watches the birds.", "Kissa istuu ikkunalaudalla\nja katselee lintuja."),
    *fx.EN_FI[1:4],
    ("", "Tyhjä rivi."),                                                   # empty
    (fx.TATOEBA_ENG.upper().replace(".", "!"), "Kiitos avustasi eilen illalla."),  # copies Tatoeba's English side
    ("word " * 120, "sana " * 120),                                          # too long
]
FI_CCMATRIX = [
    *fx.EN_FI[4:8],
    fx.EN_FI[0],                                                             # duplicate of the first OPUS-100 pair
    ("I have lived in Helsinki for ten years and I still love the city very much.", "Kyllä."),  # length ratio
    ("Good morning everyone in the room.", "Good morning everyone in the room."),             # copy
    ("The weather is nice today and the sun shines.", "Das Wetter ist heute schön und die Sonne scheint."),  # langid
    (fx.XQUAD_SENTENCE, fx.TATOEBA_FIN),                                     # XQuAD context + Tatoeba fin side
]
DE_CCMATRIX = [fx.EN_DE[0], ("This is a test.", "Das ist ein Test.")]     # duplicate; XNLI test-de sentence


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("opus")
    downloads = root / "downloads"
    fx.ccmatrix_zip(downloads, "fi", FI_CCMATRIX)
    fx.ccmatrix_zip(downloads, "de", DE_CCMATRIX)
    return {
        "hf": fx.opus100_repo(root / "opus-100", {"fi": FI_HF, "de": fx.EN_DE,
                                                  "ka": [("Good morning.", "დილა მშვიდობისა.")]}),
        "db": fx.opus_index(root / "opusdata.db"),
        "downloads": downloads,
        "xtreme": fx.xtreme_download(root / "xtreme"),
    }


def fetch_config(sources: dict[str, Path], out: Path) -> FetchConfig:
    return FetchConfig(languages=["fi", "de"], out_dir=out, sources=[
        HFSource(dataset=str(sources["hf"])),
        OpusSource(database=sources["db"], download_dir=sources["downloads"]),
    ])


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_fetch_writes_moses_pairs_and_manifest(sources, tmp_path):
    summary = fetch(fetch_config(sources, tmp_path / "fetched"))
    pair = tmp_path / "fetched" / "en-fi"
    assert lines(pair / "opus-100.en")[0] == FI_HF[0][0]
    assert lines(pair / "opus-100.fi")[0] == "Kissa istuu ikkunalaudalla ja katselee lintuja."  # line break → space
    assert len(lines(pair / "opus-100.en")) == len(lines(pair / "opus-100.fi")) == len(FI_HF)
    assert lines(pair / "ccmatrix.fi") == [fi for _, fi in FI_CCMATRIX]
    manifest = json.loads((pair / "manifest.json").read_text())
    hf, opus = manifest["sources"]["opus-100"], manifest["sources"]["ccmatrix"]
    assert hf["config"] == "en-fi" and hf["licence"] == "unknown" and hf["version"].startswith("local:")
    assert hf["counts"] == {"pairs": 7, "line_breaks_replaced": 1, "src_words": hf["counts"]["src_words"],
                            "tgt_words": hf["counts"]["tgt_words"]}
    assert opus["version"] == "v1" and opus["url"].endswith("/OPUS-CCMatrix/v1/moses/en-fi.txt.zip")
    assert opus["licence"] == fx.CCMATRIX_LICENSE and opus["counts"]["pairs"] == len(FI_CCMATRIX)
    assert opus["opus_alignment_pairs"] == 35982562
    assert (pair / "ccmatrix.LICENSE").is_file()
    # de: OPUS-100's config and CCMatrix's files are named by the sorted codes (de-en)
    de = summary["pairs"]["en-de"]["sources"]
    assert de["opus-100"]["config"] == "de-en" and de["ccmatrix"]["url"].endswith("/moses/de-en.txt.zip")
    assert lines(tmp_path / "fetched" / "en-de" / "ccmatrix.de") == [de_ for _, de_ in DE_CCMATRIX]
    top = json.loads((tmp_path / "fetched" / "manifest.json").read_text())
    assert set(top["pairs"]) == {"en-fi", "en-de"}


def test_fetch_rerun_is_skipped_and_unknown_release_fails(sources, tmp_path):
    config = fetch_config(sources, tmp_path / "fetched")
    fetch(config)
    stamp = (tmp_path / "fetched" / "en-fi" / "manifest.json").stat().st_mtime_ns
    fetch(config)
    assert (tmp_path / "fetched" / "en-fi" / "manifest.json").stat().st_mtime_ns == stamp
    bad = FetchConfig(languages=["fi"], out_dir=tmp_path / "bad",
                      sources=[OpusSource(corpus="NoSuchCorpus", database=sources["db"],
                                          download_dir=sources["downloads"])])
    with pytest.raises(WeamError, match="NoSuchCorpus.*lists no such release"):
        fetch(bad)
    assert not (tmp_path / "bad" / "en-fi").exists()  # nothing half-written


def test_clean_counts_every_filter_and_removes_eval_overlap(sources, tmp_path):
    fetch(fetch_config(sources, tmp_path / "fetched"))
    config = CleanConfig(in_dir=tmp_path / "fetched", out_dir=tmp_path / "clean", xtreme_data_dir=sources["xtreme"])
    report = clean(config)
    fi = report["pairs"]["en-fi"]
    assert fi["input_pairs"] == 16 and fi["input_by_source"] == {"opus-100": 7, "ccmatrix": 9}
    assert fi["removed"] == {"empty": 1, "contamination": 2, "length": 1, "length_ratio": 1, "copy": 1,
                             "langid": 1, "duplicate": 1}
    assert fi["kept"] == 8
    kept_en = lines(tmp_path / "clean" / "en-fi" / "train.en")
    kept_fi = lines(tmp_path / "clean" / "en-fi" / "train.fi")
    assert len(kept_en) == len(kept_fi) == 8
    assert not any(normal_form(text) == normal_form(fx.TATOEBA_ENG) for text in kept_en)
    assert fx.TATOEBA_FIN not in kept_fi and fx.XQUAD_SENTENCE not in kept_en
    overlaps = {(o["side"], o["task"], o["split"], o["lang"]): o["pairs_removed"] for o in fi["contamination"]["overlaps"]}
    assert overlaps == {("en", "tatoeba", "test_eng", "en"): 1, ("en", "xquad", "test", "en"): 1,
                        ("fi", "tatoeba", "test", "fi"): 1}
    de = report["pairs"]["en-de"]
    assert de["removed"]["contamination"] == 1 and de["removed"]["duplicate"] == 1 and de["kept"] == 3
    tsv = lines(tmp_path / "clean" / "contamination.tsv")
    assert tsv[0].split("\t") == ["pair", "side", "task", "split", "lang", "eval_sentences", "pairs_removed", "file"]
    assert any(line.startswith("en-fi\ten\ttatoeba\ttest_eng\ten\t2\t1\t") for line in tsv)
    assert any(line.startswith("en-de\tde\txnli\ttest\tde\t2\t1\t") for line in tsv)
    missing = {m["path"] for m in report["eval_files_missing"]}
    assert str(sources["xtreme"] / "mlqa/MLQA_V1/test/test-context-de-question-de.json") in missing
    assert str(sources["xtreme"] / "tatoeba/tatoeba.fin-eng.fin") in missing  # LASER's layout is read too
    assert json.loads((tmp_path / "clean" / "report.json").read_text())["pairs"]["en-fi"]["kept"] == 8


def test_clean_rerun_skips_and_eval_change_reruns(sources, tmp_path):
    fetch(fetch_config(sources, tmp_path / "fetched"))
    xtreme = tmp_path / "xtreme"
    fx.xtreme_download(xtreme)
    config = CleanConfig(in_dir=tmp_path / "fetched", out_dir=tmp_path / "clean", xtreme_data_dir=xtreme,
                         languages=["fi"], langid=False)
    assert clean(config)["pairs"]["en-fi"]["removed"]["contamination"] == 2
    stamp = (tmp_path / "clean" / "en-fi" / "train.en").stat().st_mtime_ns
    clean(config)
    assert (tmp_path / "clean" / "en-fi" / "train.en").stat().st_mtime_ns == stamp
    # a new Tatoeba sentence equal to a kept pair's Finnish side: the stale result is not reused
    with open(xtreme / "tatoeba" / "fi-en.fi", "a", encoding="utf-8") as handle:
        handle.write(fx.EN_FI[5][1] + "\n")
    assert clean(config)["pairs"]["en-fi"]["removed"]["contamination"] == 3


def test_clean_config_errors():
    with pytest.raises(ValueError, match="decontaminate needs xtreme_data_dir"):
        CleanConfig()
    from weam.data.clean import LanguageIdentifier

    with pytest.raises(ConfigError, match="py3langid has no model for 'wo'"):
        LanguageIdentifier(CleanConfig(decontaminate=False), "wo")


def test_cli_fetch_and_clean_print_counts(sources, tmp_path):
    from weam.cli import app

    config = tmp_path / "fetch.yaml"
    config.write_text(json.dumps(fetch_config(sources, tmp_path / "fetched").model_dump(mode="json")))
    runner = CliRunner()
    result = runner.invoke(app, ["data", "fetch", "--config", str(config), "--langs", "fi"])
    assert result.exit_code == 0, result.output
    assert "ccmatrix" in result.output and "opus-100" in result.output and "v1" in result.output
    result = runner.invoke(app, ["data", "clean", "--in", str(tmp_path / "fetched"), "--out", str(tmp_path / "clean"),
                                 "--xtreme", str(sources["xtreme"])])
    assert result.exit_code == 0, result.output
    assert "en-fi: 2 pairs overlapped evaluation sets" in result.output
    assert "en side = tatoeba test_eng (en): 1 pairs" in result.output
    row = next(line for line in result.output.splitlines() if line.strip().startswith("│ en-fi") or "en-fi │" in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")][1:] == ["16", "1", "2", "1", "1", "1", "1", "1", "8"]
    assert len(FILTERS) == 7
    shown = runner.invoke(app, ["data", "clean", "--show-config"])
    assert shown.exit_code == 0 and "not valid yet" in shown.output and "# max_length_ratio (default 3.0)" in shown.output


def test_study_fetch_config_resolves_in_the_opus_index_opustools_ships(tmp_path):
    """Every release configs/fetch/opus.yaml names exists in opustools' own OPUS index (offline)."""
    from weam.core.config import load_config
    from weam.data.fetch import check_releases
    from weam.study.config import StudyConfig

    config = load_config(FetchConfig, Path(__file__).parents[2] / "configs" / "fetch" / "opus.yaml")
    database = tmp_path / "opusdata.db"  # OpusGet unpacks the index it ships here on first use
    for source in config.sources:
        if isinstance(source, OpusSource):
            source.database = database
    check_releases(config)
    # Every pool language of the real study's template has its pair fetched, and its corpus listed.
    study = load_config(StudyConfig, Path(__file__).parents[2] / "configs" / "studies" / "family-diversity-mbert.yaml")
    pools = {code for condition in study.conditions for code in condition.draw.pool}
    assert pools == set(config.languages) and all(config.sources_for(code) for code in pools)
    assert {f"en-{code}" for code in pools} == set(study.corpora)
    config.sources[1].languages = None  # CCMatrix for every language: OPUS has no en-ka release
    with pytest.raises(WeamError, match=r"CCMatrix v1 en-ka \(moses\): OPUS lists no such release"):
        check_releases(config)


def test_a_source_set_to_skip_a_missing_release_is_skipped_and_recorded(sources, tmp_path):
    opus = OpusSource(database=sources["db"], download_dir=sources["downloads"], missing="skip")
    config = FetchConfig(languages=["fi", "ka"], out_dir=tmp_path / "fetched",
                         sources=[HFSource(dataset=str(sources["hf"])), opus])
    summary = fetch(config)  # OPUS has no CCMatrix en-ka: en-ka gets OPUS-100 only
    assert set(summary["pairs"]["en-fi"]["sources"]) == {"opus-100", "ccmatrix"}
    assert set(summary["pairs"]["en-ka"]["sources"]) == {"opus-100"}
    assert "CCMatrix latest en-ka (moses): OPUS lists no such release" in summary["pairs"]["en-ka"]["skipped"]["ccmatrix"]
    assert not (tmp_path / "fetched" / "en-ka" / "ccmatrix.ka").exists()
    with pytest.raises(ValueError, match="no source is read for ka"):
        FetchConfig(languages=["fi", "ka"], sources=[HFSource(dataset=str(sources["hf"]), languages=["fi"])])
    with pytest.raises(WeamError, match="en-ka: no source has data"):
        fetch(FetchConfig(languages=["ka"], out_dir=tmp_path / "none", sources=[opus]))
    assert FetchConfig().sources[1].missing == "skip"  # the default: CCMatrix where OPUS has it


def test_a_truncated_zip_or_bad_utf8_in_a_fetch_is_an_error_line_and_nothing_is_trusted(sources, tmp_path):
    """Issue 26, item 7: a cut-short download is an error naming the archive (removed, so the next
    run downloads it again); a non-UTF-8 line is an error naming archive, member and line. The
    pair's folder is not written in either case."""
    import shutil
    import zipfile

    downloads = tmp_path / "downloads"
    shutil.copytree(sources["downloads"], downloads)
    archive = downloads / "CCMatrix_latest_moses_en-fi.txt.zip"
    config = FetchConfig(languages=["fi"], out_dir=tmp_path / "fetched",
                         sources=[OpusSource(database=sources["db"], download_dir=downloads)])
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(WeamError, match=r"CCMatrix_latest_moses_en-fi.txt.zip: not a complete zip archive .*removed"):
        fetch(config)
    assert not archive.exists() and not (tmp_path / "fetched" / "en-fi").exists()

    fx.ccmatrix_zip(downloads, "fi", FI_CCMATRIX)
    with zipfile.ZipFile(archive) as bundle:
        members = {name: bundle.read(name) for name in bundle.namelist()}
    members["CCMatrix.en-fi.fi"] = members["CCMatrix.en-fi.fi"].replace("Kahvi".encode(), b"Ka\xe4hvi")  # Latin-1 'ä'
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    with pytest.raises(WeamError, match=r"en-fi.txt.zip:CCMatrix.en-fi.fi:4: not UTF-8 text \(byte b'\\xe4' at column 3\)"):
        fetch(config)
    assert not (tmp_path / "fetched" / "en-fi").exists()
