import gzip

import pytest

from weam.core.corpus import read_parallel
from weam.core.errors import InputError


def write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


def test_moses_pair_plain_and_gzip(tmp_path):
    src = write_bytes(tmp_path / "corpus.en", b"hello world\nsave file\n")
    tgt = tmp_path / "corpus.de.gz"
    with gzip.open(tgt, "wb") as handle:
        handle.write("hallo Welt\nDatei speichern\n".encode())
    pairs = list(read_parallel(src, tgt))
    assert [(p.src, p.tgt, p.line) for p in pairs] == [
        ("hello world", "hallo Welt", 1),
        ("save file", "Datei speichern", 2),
    ]


def test_tsv_and_fast_align_formats(tmp_path):
    tsv = write_bytes(tmp_path / "c.tsv", "a b\tc d\n".encode())
    fa = write_bytes(tmp_path / "c.txt", "a b ||| c d\n".encode())
    assert [(p.src, p.tgt) for p in read_parallel(tsv)] == [("a b", "c d")]
    assert [(p.src, p.tgt) for p in read_parallel(fa)] == [("a b", "c d")]


def test_line_count_mismatch_names_longer_file_and_line(tmp_path):
    src = write_bytes(tmp_path / "corpus.en", b"a\nb\nc\n")
    tgt = write_bytes(tmp_path / "corpus.de", b"x\ny\n")
    with pytest.raises(InputError) as info:
        list(read_parallel(src, tgt))
    assert info.value.path == str(src) and info.value.line == 3
    assert "line-count mismatch" in str(info.value)


def test_invalid_utf8_names_file_and_line(tmp_path):
    src = write_bytes(tmp_path / "corpus.en", b"ok\nbad \xff byte\n")
    tgt = write_bytes(tmp_path / "corpus.de", b"ok\nok\n")
    with pytest.raises(InputError, match=r"corpus.en:2: invalid UTF-8"):
        list(read_parallel(src, tgt))


def test_empty_side_and_overlong_line(tmp_path):
    src = write_bytes(tmp_path / "corpus.en", b"a\n\n")
    tgt = write_bytes(tmp_path / "corpus.de", b"x\ny\n")
    with pytest.raises(InputError, match=r"corpus.en:2: empty source side"):
        list(read_parallel(src, tgt))
    long_src = write_bytes(tmp_path / "long.en", b"w " * 50 + b"\n")
    long_tgt = write_bytes(tmp_path / "long.de", b"x\n")
    with pytest.raises(InputError, match=r"long.en:1: line has 100 characters"):
        list(read_parallel(long_src, long_tgt, max_chars=20))


def test_separator_errors(tmp_path):
    tsv = write_bytes(tmp_path / "c.tsv", b"a\tb\nno tab here\n")
    with pytest.raises(InputError, match=r"c.tsv:2: expected exactly one TAB separator, found 0"):
        list(read_parallel(tsv))
