"""The stage table and its one skip rule: content hashes of inputs and result-affecting config."""

import os
import shutil
from pathlib import Path

import pytest

from weam.core.config import load_config, not_result, result_config, StrictModel
from weam.core.manifest import check_stage, read_manifest, write_manifest
from weam.stages import STAGES, Step, plan_status, table_rows, upstream

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class Inner(StrictModel):
    kept: int = 1
    progress: bool = not_result(True)


class Outer(StrictModel):
    lr: float = 0.1
    log_dir: str = not_result("logs")
    inner: Inner = Inner()
    items: list[Inner] = [Inner()]


def test_result_config_leaves_out_marked_fields_at_any_depth():
    assert result_config(Outer()) == {"lr": 0.1, "inner": {"kept": 1}, "items": [{"kept": 1}]}


def test_pretrain_fingerprint_ignores_tracking_logging_and_paths_but_not_lr():
    from weam.training.config import PretrainConfig

    def config(**sections):
        data = {"model": "preset:tiny", "tokenizer": "tok", "objective": {"name": "mlm"}, "optim": {"max_steps": 3},
                "data": {"pairs": [{"src": "en", "tgt": "de", "src_file": "a.en", "tgt_file": "a.de"}]}}
        for key, value in sections.items():
            data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
        return PretrainConfig.model_validate(data)

    base = config()
    same = config(out_dir="elsewhere", logging={"log_every": 1, "run_name": "x",
                                                "tracking": {"uri": "http://server", "experiment": "e"}},
                  data={"pairs": [{"src": "en", "tgt": "de", "src_file": "/moved/a.en", "tgt_file": "/moved/a.de"}]})
    assert same.fingerprint_config() == base.fingerprint_config()
    assert config(optim={"max_steps": 3, "lr": 1e-3}).fingerprint_config() != base.fingerprint_config()


@pytest.fixture
def finished(tmp_path):
    data = tmp_path / "in.txt"
    data.write_text("hello\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.txt").write_text("42\n")
    write_manifest(out, "toy", {"data": data}, {"lr": 0.1, "inner": {"kept": 1}}, {"result": "result.txt"})
    return data, out


def test_done_only_for_the_same_input_contents_and_config(finished):
    data, out = finished
    assert check_stage(out, {"data": data}, {"lr": 0.1, "inner": {"kept": 1}}).state == "done"
    changed = check_stage(out, {"data": data}, {"lr": 0.2, "inner": {"kept": 2}})
    assert changed.state == "stale" and changed.reason == "config inner.kept: 1 → 2; lr: 0.1 → 0.2"
    data.write_text("other\n")
    assert check_stage(out, {"data": data}, {"lr": 0.1, "inner": {"kept": 1}}).reason == f"input data changed ({data})"
    assert check_stage(out.parent / "nowhere", {}, {}).state == "missing"


def test_touched_or_copied_inputs_with_the_same_content_stay_done(finished):
    data, out = finished
    config = {"lr": 0.1, "inner": {"kept": 1}}
    os.utime(data, ns=(1, 1))  # new mtime, same content: re-hashed, still done
    assert check_stage(out, {"data": data}, config).done
    copy = data.with_name("copy.txt")
    shutil.copy(data, copy)  # another inode: hashed, not trusted by size and mtime
    assert check_stage(out, {"data": copy}, config).done


def test_the_size_and_mtime_shortcut_holds_only_for_the_recorded_inode(finished):
    data, out = finished
    config = {"lr": 0.1, "inner": {"kept": 1}}
    manifest = read_manifest(out)
    # Same size, same mtime, other content, another inode (written beside it while the old one
    # still exists, then renamed over it): the recorded hash must not be trusted.
    info = data.stat()
    replacement = data.with_name("replacement.txt")
    replacement.write_text("HELLO\n")
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(replacement, data)
    assert data.stat().st_ino != manifest["inputs"]["data"]["inode"]
    assert data.stat().st_size == info.st_size and data.stat().st_mtime_ns == info.st_mtime_ns
    verdict = check_stage(out, {"data": data}, config)
    assert verdict.state == "stale" and "input data changed" in verdict.reason


def test_the_recorded_hash_is_reused_for_the_same_inode_size_and_mtime(finished, monkeypatch):
    """The shortcut exists (a multi-GB corpus is not re-hashed on every status), for the recorded
    inode only: a copy of the file is hashed."""
    from weam.core import manifest as manifest_module

    data, out = finished
    hashed = []
    real = manifest_module.file_sha256
    monkeypatch.setattr(manifest_module, "file_sha256", lambda path, *a: hashed.append(Path(path).name) or real(path))
    monkeypatch.setattr(manifest_module, "_HASHES", {})
    config = {"lr": 0.1, "inner": {"kept": 1}}
    assert check_stage(out, {"data": data}, config).done and hashed == []
    copy = data.with_name("copy.txt")
    shutil.copy2(data, copy)  # same size and mtime, another inode
    assert check_stage(out, {"data": copy}, config).done and hashed == ["copy.txt"]


def test_an_in_place_edit_with_the_mtime_put_back_is_seen(finished, monkeypatch, tmp_path):
    """Issue 26, item 8: `rsync --inplace -t` keeps inode, size and mtime; the sampled hash that
    guards the shortcut sees the edit (small files whole; big ones by 64 spread blocks)."""
    from weam.core import manifest as manifest_module

    data, out = finished
    config = {"lr": 0.1, "inner": {"kept": 1}}
    for path, edit_at in ((data, 0), (tmp_path / "big.bin", None)):
        if edit_at is None:  # a file of 6 MiB: sampled, not read whole
            path.write_bytes(bytes(6 << 20))
            write_manifest(out, "toy", {"data": path}, config, {"result": "result.txt"})
            edit_at = (6 << 20) - 1  # the last byte is always in the sample
        monkeypatch.setattr(manifest_module, "_HASHES", {})
        info = path.stat()
        assert check_stage(out, {"data": path}, config).done
        with open(path, "r+b") as handle:
            handle.seek(edit_at)
            handle.write(b"H")
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
        assert (path.stat().st_ino, path.stat().st_size, path.stat().st_mtime_ns) == (
            info.st_ino, info.st_size, info.st_mtime_ns)
        monkeypatch.setattr(manifest_module, "_HASHES", {})  # a new process
        verdict = check_stage(out, {"data": path}, config)
        assert verdict.state == "stale" and "input data changed" in verdict.reason, path


def test_rehash_sees_an_edit_between_the_sampled_blocks(tmp_path):
    """The sampled hash reads 64 blocks of 64 KiB of a file over 4 MiB: an in-place edit between
    them (mtime put back) is missed, as `weam study status --help` says; --rehash
    (manifest.rehash_all) reads every file whole and sees it."""
    from weam.core import manifest as manifest_module
    from weam.core.manifest import rehash_all

    data, out = tmp_path / "big.bin", tmp_path / "out"
    data.write_bytes(bytes(6 << 20))
    out.mkdir()
    (out / "result.txt").write_text("42\n")
    write_manifest(out, "toy", {"data": data}, {}, {"result": "result.txt"})
    info = data.stat()
    with open(data, "r+b") as handle:
        handle.seek(70_000)  # after the first 64 KiB block, before the second (at ~98,800)
        handle.write(b"H")
    os.utime(data, ns=(info.st_atime_ns, info.st_mtime_ns))
    manifest_module._HASHES.clear()
    assert check_stage(out, {"data": data}, {}).done  # the documented blind spot
    with rehash_all():
        verdict = check_stage(out, {"data": data}, {})
    assert verdict.state == "stale" and "input data changed" in verdict.reason


def test_a_changed_output_makes_the_stage_stale(finished):
    data, out = finished
    (out / "result.txt").write_text("41\n")
    verdict = check_stage(out, {"data": data}, {"lr": 0.1, "inner": {"kept": 1}})
    assert verdict.state == "stale" and verdict.reason.startswith("output result")


def test_every_step_of_every_shipped_study_is_a_row_of_the_table():
    from weam.study.plan import load_study

    # The demo starts from the converted e5 (base_init, no tokenizer), its smoke version from a preset
    # (a tokenizer trained here, no base_init); the instrument check scores arms (word_gold, probe)
    # instead of evaluating conditions (tatoeba, eval); together they use every row.
    used = {}
    instrument = {"word_gold", "probe"}
    for name in ("demo.yaml", "demo-tiny.yaml", "instrument.yaml"):
        study, steps = load_study(CONFIGS / name)
        used[name] = {step.stage for step in steps}
        for step in steps:
            assert isinstance(step.config, STAGES[step.stage].config_class()), step.key
    assert used["demo.yaml"] == set(STAGES) - {"tokenizer"} - instrument
    assert used["demo-tiny.yaml"] == set(STAGES) - {"base_init"} - instrument
    assert used["instrument.yaml"] == set(STAGES) - {"tokenizer", "tatoeba", "eval"}
    assert [row[0] for row in table_rows()] == list(STAGES)


def test_a_study_without_a_tracking_uri_logs_every_stage_to_its_work_dirs_store():
    """No tracking.uri: every step that logs names <work_dir>/mlflow.db, the URI weam.core.tracking.store_uri
    builds (the plan built its own ``sqlite:///…`` string before)."""
    from weam.core.tracking import store_uri
    from weam.study.plan import load_study

    study, steps = load_study(CONFIGS / "demo-tiny.yaml")
    assert study.tracking.uri is None
    uris = {step.stage: (getattr(step.config, "tracking", None) or step.config.logging.tracking).uri
            for step in steps if step.stage in ("pretrain", "base", "eval")}
    assert uris == dict.fromkeys(("pretrain", "base", "eval"), store_uri(study.work_dir.resolve()))


def test_upstream_steps_are_found_from_the_inputs_and_staleness_propagates(tmp_path):
    from weam.training.stage import TokenizerConfig

    corpus = tmp_path / "data" / "train.en"
    corpus.parent.mkdir()
    corpus.write_text("a b c\n")
    producer = Step("data", "data", tmp_path / "data", load_config(STAGES["data"].config_class(), None,
                                                                     [f"out_dir={tmp_path / 'data'}", "languages=[sw]"]))
    consumer = Step("tokenizer", "tokenizer", tmp_path / "tok",
                    TokenizerConfig(files=[corpus], vocab_size=100, out_dir=tmp_path / "tok"))
    assert upstream(consumer, [producer, consumer]) == [producer]
    # The tokenizer's own manifest matches, but its producer has not finished: stale, with the reason.
    write_manifest(consumer.out_dir, "tokenizer", {"0": corpus}, {"vocab_size": 100}, {})
    states = plan_status([producer, consumer])
    assert states["data"].state == "missing"
    assert (states["tokenizer"].state, states["tokenizer"].reason) == ("stale", "upstream data is missing")


def test_within_is_pathlibs_is_relative_to_on_resolved_paths():
    from weam.stages import _within

    paths = [Path(p) for p in ("/", "/w", "/w/align", "/w/align/en-fi", "/w/align/en-fi/alignment.txt", "/w/al", "/x/w")]
    assert {(a, b): _within(a, b) for a in paths for b in paths} == {(a, b): a.is_relative_to(b) for a in paths for b in paths}
