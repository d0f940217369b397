"""Bad input and broken tools: a clear error naming the problem, and nothing that looks finished."""

from __future__ import annotations

import subprocess
import sys

import pytest

from weam.alignment.api import align_corpus
from weam.alignment.config import AlignConfig, FastAlignConfig
from tests.alignment.conftest import TEST_RAY
from weam.core.errors import InputError, WeamError


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def good(tmp_path):
    return write(tmp_path / "a.en", ["the cat", "a dog"]), write(tmp_path / "a.de", ["die Katze", "ein Hund"])


def assert_nothing_finished(out):
    assert not (out / "manifest.json").exists()
    assert not (out / "alignment.txt").exists()


def test_mismatched_line_counts(tmp_path, good):
    tgt = write(tmp_path / "short.de", ["die Katze"])
    with pytest.raises(InputError, match=r"short\.de.*line-count mismatch|line-count mismatch") as caught:
        align_corpus(good[0], tgt, tmp_path / "out", AlignConfig(engine="eflomal", ray=TEST_RAY))
    assert caught.value.line == 2
    assert_nothing_finished(tmp_path / "out")


def test_empty_line(tmp_path, good):
    src = write(tmp_path / "gap.en", ["the cat", "  "])
    with pytest.raises(InputError, match="empty source side") as caught:
        align_corpus(src, good[1], tmp_path / "out", AlignConfig(engine="eflomal", ray=TEST_RAY))
    assert caught.value.path.endswith("gap.en") and caught.value.line == 2
    assert_nothing_finished(tmp_path / "out")


def test_missing_binary_says_how_to_get_it(tmp_path, good):
    cfg = AlignConfig(engine="fast_align", fast_align=FastAlignConfig(binary=str(tmp_path / "nope")), ray=TEST_RAY)
    with pytest.raises(WeamError, match="github.com/clab/fast_align") as caught:
        align_corpus(*good, tmp_path / "out", cfg)
    assert "FAST_ALIGN_BIN" in str(caught.value) and "--engine thot" in str(caught.value)
    assert_nothing_finished(tmp_path / "out")


def test_auto_engine_falls_back_to_seeded_thot_without_fast_align(tmp_path, monkeypatch):
    from weam.alignment.engines import resolve_engine

    monkeypatch.setenv("PATH", str(tmp_path))  # no fast_align on PATH, none configured
    assert resolve_engine(AlignConfig()) == "thot"


@pytest.mark.server
@pytest.mark.parametrize("shards", [1, 2], ids=["in-process", "on-ray"])
def test_binary_exiting_non_zero_surfaces_its_stderr(tmp_path, good, shards, request):
    if shards > 1:
        request.getfixturevalue("ray_cluster")
    fake = tmp_path / "fast_align"
    fake.write_text("#!/bin/sh\necho 'fast_align: out of cheese' >&2\nexit 1\n")
    fake.chmod(0o755)
    atools = tmp_path / "atools"
    atools.write_text("#!/bin/sh\nexit 0\n")
    atools.chmod(0o755)
    out = tmp_path / "out"
    cfg = AlignConfig(engine="fast_align", fast_align=FastAlignConfig(binary=str(fake), atools=str(atools)),
                      ray=TEST_RAY, max_retries=0, shards=shards)
    with pytest.raises(WeamError, match="out of cheese") as caught:
        align_corpus(*good, out, cfg)
    assert "exited with status 1" in str(caught.value)
    assert_nothing_finished(out)
    assert not list(out.glob(".work-*/shard-*"))


def test_stale_output_is_removed_before_a_failing_rerun(tmp_path, good):
    out = tmp_path / "out"
    align_corpus(*good, out, AlignConfig(engine="eflomal", ray=TEST_RAY))
    assert (out / "manifest.json").exists()
    write(good[0], ["the cat", ""])
    with pytest.raises(InputError):
        align_corpus(*good, out, AlignConfig(engine="eflomal", ray=TEST_RAY))
    assert_nothing_finished(out)


def test_cli_reports_bad_input_without_traceback(tmp_path, good):
    tgt = write(tmp_path / "short.de", ["die Katze"])
    done = subprocess.run([sys.executable, "-m", "weam", "align", "run", "--src", str(good[0]), "--tgt", str(tgt),
                           "--out", str(tmp_path / "out"), "--engine", "eflomal"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "line-count mismatch" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_config_file_and_overrides(tmp_path):
    from weam.alignment.cli import build_config

    path = tmp_path / "align.yaml"
    path.write_text("engine: eflomal\nshards: 3\neflomal:\n  n_samplers: 2\n")
    cfg = build_config(path, ["eflomal.model=2"], None, 5, None,
                       environ={"FAST_ALIGN_BIN": "/opt/fa", "RAY_ADDRESS": "http://head:8265"})
    assert (cfg.engine, cfg.shards, cfg.eflomal.n_samplers, cfg.eflomal.model) == ("eflomal", 5, 2, 2)
    assert cfg.fast_align.binary == "/opt/fa" and cfg.ray_address == "auto"
    from weam.core.errors import ConfigError

    with pytest.raises(ConfigError, match="shard"):
        build_config(None, ["shardz=2"], None, None, None, environ={})
