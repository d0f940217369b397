import json
import os

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


def test_weights_honour_the_umask(tmp_path, tiny_model_dir):
    """Issue 26, item 6: safetensors writes model.safetensors 0600; every folder weam swaps in (and
    every saved model) gets the umask's mode instead: 0644 under 022, 0640 under 027."""
    import stat

    import torch
    from safetensors.torch import save_file

    from weam.core.manifest import atomic_directory

    old = os.umask(0o027)
    os.umask(old)
    assert stat.S_IMODE((tiny_model_dir / "model.safetensors").stat().st_mode) == 0o666 & ~old  # save_model_and_tokenizer
    old = os.umask(0o027)
    try:
        with atomic_directory(tmp_path / "model") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp / "model.safetensors"))
            (tmp / "run.sh").write_text("#!/bin/sh\n")
            (tmp / "run.sh").chmod(0o755)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "model" / "model.safetensors").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "model" / "run.sh").stat().st_mode) == 0o750
