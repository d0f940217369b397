import json

import pytest

from weam.core.manifest import atomic_directory, atomic_write, is_up_to_date, read_manifest, write_manifest


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_swaps_in_whole(tmp_path):
    target = tmp_path / "stage"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "part").write_text("x")
            raise RuntimeError("crash")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_directory(target) as tmp:
        (tmp / "done").write_text("x")
    assert (target / "done").read_text() == "x"


def test_up_to_date_follows_inputs_config_and_outputs(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("a\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.txt").write_text("r\n")
    config = {"engine": "eflomal", "seed": 1}
    assert not is_up_to_date(out, {"src": source}, config)
    write_manifest(out, "test", {"src": source}, config, {"result": "result.txt"}, {"pairs": 1})
    manifest = read_manifest(out)
    assert manifest["counts"] == {"pairs": 1} and manifest["outputs"]["result"]["path"] == "result.txt"
    assert "torch" in manifest["versions"]
    assert is_up_to_date(out, {"src": source}, config)
    assert not is_up_to_date(out, {"src": source}, {**config, "seed": 2})
    (out / "result.txt").write_text("tampered\n")
    assert not is_up_to_date(out, {"src": source}, config)
    (out / "result.txt").write_text("r\n")
    source.write_text("b\n")
    assert not is_up_to_date(out, {"src": source}, config)
    json.loads((out / "manifest.json").read_text())
