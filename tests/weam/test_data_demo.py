"""The demo data builder on the real catalogs shipped in Django, pycountry and babel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from weam.cli import app
from weam.core.config import load_config
from weam.data.catalogs import _read_po
from weam.data.config import DemoDataConfig
from weam.data.demo import PLACEHOLDER, build_demo, clean, has_words, is_heldout
from weam.core.errors import ConfigError, InputError, WeamError

LANGS = ["de", "fi", "sw"]
REPO = Path(__file__).resolve().parents[2]


def _config(out: Path, **changes) -> DemoDataConfig:
    return DemoDataConfig(**{"out_dir": out, "languages": LANGS, "min_pairs": 100, **changes})


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[DemoDataConfig, dict]:
    config = _config(tmp_path_factory.mktemp("demo") / "data")
    return config, build_demo(config)


def test_layout_and_line_counts(built):
    config, summary = built
    out = config.out_dir
    assert set(summary["counts"]) == set(LANGS)
    for code in LANGS:
        folder = out / f"en-{code}"
        manifest = json.loads((folder / "manifest.json").read_text())
        for split in ("train", "heldout"):
            en, xx = _lines(folder / f"{split}.en"), _lines(folder / f"{split}.{code}")
            assert len(en) == len(xx) > 0
            assert all(line and "  " not in line and line == line.strip() for line in en + xx)
            assert len(set(zip(en, xx))) == len(en)  # deduplicated
            assert all(a != b for a, b in zip(en, xx))  # identical pairs dropped
        assert manifest["counts"]["pairs"] == len(_lines(folder / "train.en"))
        tgt_words = sum(len(line.split()) for line in _lines(folder / f"train.{code}"))
        assert manifest["counts"]["tgt_words"] == tgt_words
        assert any(key.startswith("django:") for key in manifest["inputs"])
        assert summary["counts"][code]["family"] in {"Indo-European", "Uralic", "Atlantic-Congo"}
    assert (out / "manifest.json").is_file()


def test_heldout_is_shared_and_disjoint_from_train(built):
    config, _ = built
    train = {code: set(_lines(config.out_dir / f"en-{code}" / "train.en")) for code in LANGS}
    heldout = {code: set(_lines(config.out_dir / f"en-{code}" / "heldout.en")) for code in LANGS}
    all_train = set().union(*train.values())
    for code in LANGS:
        assert not heldout[code] & all_train
        assert all(is_heldout(line, config.seed, config.heldout_fraction) for line in heldout[code])
        assert not any(is_heldout(line, config.seed, config.heldout_fraction) for line in train[code])
    shared = set.intersection(*heldout.values())
    assert len(shared) > 50  # a multi-way parallel retrieval set across the three languages
    held = sum(len(lines) for lines in heldout.values())
    fraction = held / (held + sum(len(lines) for lines in train.values()))
    assert 0.1 < fraction < 0.3


def test_rerun_is_skipped_and_changed_config_rebuilds(tmp_path):
    config = _config(tmp_path / "data", languages=["de", "sw"])
    first = build_demo(config)
    manifest = tmp_path / "data" / "manifest.json"
    train = tmp_path / "data" / "en-de" / "train.de"
    stamps = (manifest.stat().st_mtime_ns, train.stat().st_mtime_ns)
    heldout_before = _lines(tmp_path / "data" / "en-de" / "heldout.en")
    assert build_demo(config) == first
    assert (manifest.stat().st_mtime_ns, train.stat().st_mtime_ns) == stamps

    reseeded = build_demo(config.model_copy(update={"seed": 7}))
    assert reseeded["fingerprint"] != first["fingerprint"]
    assert train.stat().st_mtime_ns != stamps[1]
    assert _lines(tmp_path / "data" / "en-de" / "heldout.en") != heldout_before
    assert json.loads(manifest.read_text())["config"]["seed"] == 7


def test_crash_leaves_no_finished_looking_output(tmp_path, monkeypatch):
    import weam.data.demo as demo

    real_write = demo._write_pair

    def write_then_crash(folder, corpus, *args):
        real_write(folder, corpus, *args)
        if corpus.code == "sw":
            raise KeyboardInterrupt("killed while writing en-sw")

    config = _config(tmp_path / "data", languages=["de", "sw"])
    monkeypatch.setattr(demo, "_write_pair", write_then_crash)
    with pytest.raises(KeyboardInterrupt):
        build_demo(config)
    out = tmp_path / "data"
    assert sorted(p.name for p in out.iterdir()) == ["en-de"]  # finished pair only, no temp dirs
    assert (out / "en-de" / "manifest.json").is_file()

    monkeypatch.setattr(demo, "_write_pair", real_write)
    finished = (out / "en-de" / "train.de").stat().st_mtime_ns
    summary = build_demo(config)
    assert set(summary["counts"]) == {"de", "sw"} and (out / "manifest.json").is_file()
    assert (out / "en-de" / "train.de").stat().st_mtime_ns == finished  # the finished pair is reused


def test_unknown_language_fails_clearly_and_writes_nothing(tmp_path):
    out = tmp_path / "data"
    result = CliRunner().invoke(app, ["data", "demo", "--out", str(out), "--langs", "de,xx"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "unknown language code 'xx'" in str(result.exception)
    assert not out.exists()


def test_too_few_pairs_fails_before_writing(tmp_path):
    config = DemoDataConfig(out_dir=tmp_path / "data", languages=["sw"], min_pairs=1_000_000)
    with pytest.raises(WeamError, match=r"sw \(\d+ pairs\) below min_pairs=1000000"):
        build_demo(config)
    assert not (tmp_path / "data").exists()


def test_cli_languages_lists_families(tmp_path):
    result = CliRunner().invoke(app, ["data", "languages", "--set", "sources=[pycountry]"])
    assert result.exit_code == 0, result.output
    for expected in ("Swahili", "Atlantic-Congo", "Finnish", "Uralic", "Burmese", "Sino-Tibetan"):
        assert expected in result.output
    assert "English" not in result.output


def test_cli_demo_prints_table(tmp_path):
    out = tmp_path / "data"
    args = ["data", "demo", "--out", str(out), "--langs", "sw", "--set", "min_pairs=10"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Swahili" in result.output and "Atlantic-Congo" in result.output
    assert (out / "en-sw" / "train.sw").is_file()


def test_po_reading_plurals_fuzzy_obsolete(tmp_path):
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
        '"Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n\n'
        'msgid "%(count)d item"\nmsgid_plural "%(count)d items"\n'
        'msgstr[0] "%(count)d Element"\nmsgstr[1] "%(count)d Elemente"\n\n'
        '#, fuzzy\nmsgid "Maybe"\nmsgstr "Vielleicht"\n\n'
        '#~ msgid "Old"\n#~ msgstr "Alt"\n\n'
        'msgid "Untranslated"\nmsgstr ""\n',
        encoding="utf-8",
    )
    pairs = list(_read_po(po))
    assert ("%(count)d item", "%(count)d Element") in pairs
    assert ("%(count)d items", "%(count)d Elemente") in pairs
    assert all(src not in {"Maybe", "Old"} for src, _ in pairs)
    assert clean("%(count)d items") == f"{PLACEHOLDER} items"
    assert clean('<a href="{url}">Log in</a> at 100%% &amp; {0}') == f"Log in at 100 % & {PLACEHOLDER}"
    assert clean("请输入有效的日期。") == "请 输 入 有 效 的 日 期 。"
    assert not has_words(clean("%(value)s:")) and has_words(clean("%(value)s st"))


def test_check_names_file_and_line(tmp_path):
    src, tgt = tmp_path / "c.en", tmp_path / "c.de"
    src.write_text("a b\nc d\ne f\n", encoding="utf-8")
    tgt.write_text("A B\nC D\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["data", "check", "--src", str(src), "--tgt", str(tgt)])
    assert isinstance(result.exception, InputError)
    assert str(src) in str(result.exception) and ":3:" in str(result.exception)

    tgt.write_bytes(b"A B\nC \xff D\nE F\n")
    result = runner.invoke(app, ["data", "check", "--src", str(src), "--tgt", str(tgt)])
    assert isinstance(result.exception, InputError)
    assert f"{tgt}:2:" in str(result.exception) and "UTF-8" in str(result.exception)

    tgt.write_text("A B\nC D\nE F G\n", encoding="utf-8")
    result = runner.invoke(app, ["data", "check", "--src", str(src), "--tgt", str(tgt)])
    assert result.exit_code == 0
    assert "3 pairs, 6 source words, 7 target words" in result.output


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "data").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    config = load_config(DemoDataConfig, path)
    assert "sw" in config.languages and config.min_pairs > 0


def test_locale_forms_normalise():
    assert load_config(DemoDataConfig, None, ["languages=[pt_BR, zh_Hans]"]).languages == ["pt", "zh"]
