"""conftest.write_xtreme writes what XTREME's own preprocessing writes, byte for byte (fixtures made by
tests/eval/fixtures/make_download.py running google-research/xtreme's utils_preprocess.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "download"
FILES = sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*") if p.is_file())


def test_fixtures_cover_every_rewritten_task():
    tasks = {name.split("/")[0] for name in FILES}
    assert tasks == {"xnli", "panx", "udpos", "tatoeba", "xquad", "mlqa", "tydiqa", "xcopa", "mewslix"}


@pytest.mark.parametrize("name", FILES)
def test_writer_matches_xtreme_preprocessing(name, xtreme_dir):
    ours = xtreme_dir / name
    assert ours.is_file(), f"write_xtreme does not write {name}"
    assert ours.read_bytes() == (FIXTURES / name).read_bytes(), name
