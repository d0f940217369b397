"""Faults around the alignment stage: stale resume state, leftovers, locks, long lines, bad
addresses, untrusted cache files. Each test injects one fault and checks what the user sees and
what is left on disk."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from weam.alignment import api
from weam.alignment.api import align_corpus
from weam.alignment.config import AlignConfig, FastAlignConfig
from weam.alignment.django_corpus import write_corpus
from tests.alignment.conftest import TEST_RAY
from weam.core.errors import InputError, WeamError
from weam.core.lock import LockedError, lock_output

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def counts(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())["counts"]


def interrupted_run(monkeypatch, src, tgt, out, cfg) -> list[Path]:
    """A run killed after its shards were saved, before the output was stitched: what resumes."""
    def killed(*_):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(api, "_concatenate", killed)
        with pytest.raises(KeyboardInterrupt):
            align_corpus(src, tgt, out, cfg)
    shards = sorted(out.glob(".work-*/shard-*.txt"))
    assert shards and not (out / "manifest.json").exists()
    return shards


def edit_keeping_size_and_mtime(path: Path, old: str, new: str) -> None:
    assert len(old.encode()) == len(new.encode())
    info = path.stat()
    text = path.read_text(encoding="utf-8")
    assert old in text
    with open(path, "r+", encoding="utf-8") as handle:  # in place: same inode
        handle.write(text.replace(old, new))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (info.st_size, info.st_mtime_ns, info.st_ino)


@pytest.mark.server
@pytest.mark.parametrize("shards", [1, 3], ids=["in-process", "on-ray-with-global-model"])
def test_same_size_same_mtime_edit_is_realigned(monkeypatch, tmp_path, pairs, shards, request, fast_align_config):
    if shards > 1:
        request.getfixturevalue("ray_cluster")
    src, tgt = write_corpus(pairs[:150], tmp_path / "corpus")
    cfg = AlignConfig(engine="fast_align", shards=shards, ray=TEST_RAY, fast_align=fast_align_config)
    out = tmp_path / "out"
    interrupted_run(monkeypatch, src, tgt, out, cfg)
    line = next(line.split() for line in src.read_text().splitlines() if line.split() != line.split()[::-1])
    edit_keeping_size_and_mtime(src, " ".join(line), " ".join(reversed(line)))
    result = align_corpus(src, tgt, out, cfg)
    assert counts(out)["shards_reused"] == 0 and counts(out)["shards_run"] == shards
    fresh = align_corpus(src, tgt, tmp_path / "fresh", cfg)
    assert result.read_text() == fresh.read_text()  # identical to an uninterrupted run on the new data


def test_unchanged_inputs_still_resume(monkeypatch, tmp_path, pairs):
    src, tgt = write_corpus(pairs[:60], tmp_path / "corpus")
    cfg = AlignConfig(engine="eflomal", ray=TEST_RAY, eflomal={"n_samplers": 1})
    saved = interrupted_run(monkeypatch, src, tgt, tmp_path / "out", cfg)
    before = saved[0].read_text()
    assert align_corpus(src, tgt, tmp_path / "out", cfg).read_text() == before
    assert counts(tmp_path / "out")["shards_reused"] == 1


def test_failed_runs_leave_no_work_folders_after_a_successful_rerun(tmp_path):
    src = write(tmp_path / "a.en", ["the cat", "   "])
    tgt = write(tmp_path / "a.de", ["die Katze", "ein Hund"])
    out = tmp_path / "out"
    cfg = AlignConfig(engine="eflomal", ray=TEST_RAY, eflomal={"n_samplers": 1})
    with pytest.raises(InputError):
        align_corpus(src, tgt, out, cfg)
    assert list(out.glob(".work-*"))  # the failed run's resume folder
    write(src, ["the cat", "a dog"])
    align_corpus(src, tgt, out, cfg)
    assert not list(out.glob(".work-*"))


def test_a_second_writer_of_one_output_is_refused(tmp_path):
    src = write(tmp_path / "a.en", ["the cat"])
    tgt = write(tmp_path / "a.de", ["die Katze"])
    hold = ("import sys, time; from weam.core.lock import lock_output\n"
            "with lock_output(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "out")], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=f"PID {proc.pid}"):
            align_corpus(src, tgt, tmp_path / "out", AlignConfig(engine="eflomal", ray=TEST_RAY))
    finally:
        proc.kill()
        proc.wait()
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_overlong_line_is_refused_like_data_check_and_pretrain(tmp_path):
    from weam.training.config import PairData
    from weam.training.data import check_pair

    long_line = " ".join(["word"] * 10_000)
    src = write(tmp_path / "a.en", ["the cat", long_line])
    tgt = write(tmp_path / "a.de", ["die Katze", "ein Hund"])
    started = time.monotonic()
    with pytest.raises(InputError) as aligned:
        align_corpus(src, tgt, tmp_path / "out", AlignConfig(engine="eflomal", ray=TEST_RAY))
    assert time.monotonic() - started < 30
    assert (aligned.value.path, aligned.value.line) == (str(src), 2) and "limit" in aligned.value.reason
    with pytest.raises(InputError) as trained:
        check_pair(PairData(src="en", tgt="de", src_file=src, tgt_file=tgt))
    assert str(trained.value) == str(aligned.value)
    done = subprocess.run([sys.executable, "-m", "weam", "data", "check", "--src", str(src), "--tgt", str(tgt)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and str(aligned.value) in done.stderr


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_unreachable_ray_address_fails_fast_with_a_clear_error(tmp_path, address):
    src = write(tmp_path / "a.en", ["the cat", "a dog"])
    tgt = write(tmp_path / "a.de", ["die Katze", "ein Hund"])
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "weam", "align", "run", "--src", str(src), "--tgt", str(tgt), "--out",
         str(tmp_path / "out"), "--engine", "eflomal", "--ray-address", address],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert time.monotonic() - started < 60
    assert done.returncode == 2 and done.stderr.startswith(f"error: cannot reach the Ray cluster at {address}")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("case", ["missing-src", "out-is-a-file", "src-is-a-folder"])
def test_cli_path_mistakes_are_error_lines(tmp_path, case):
    src = write(tmp_path / "a.en", ["the cat"])
    tgt = write(tmp_path / "a.de", ["die Katze"])
    out = tmp_path / "out"
    if case == "missing-src":
        src = tmp_path / "nope.en"
    elif case == "out-is-a-file":
        out.write_text("x")
    else:
        src = tmp_path
    done = subprocess.run([sys.executable, "-m", "weam", "align", "run", "--src", str(src), "--tgt", str(tgt),
                           "--out", str(out), "--engine", "eflomal"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert str(out if case == "out-is-a-file" else src) in done.stderr


def test_configured_fast_align_that_is_missing_is_an_error_under_auto(tmp_path):
    src = write(tmp_path / "a.en", ["the cat"])
    tgt = write(tmp_path / "a.de", ["die Katze"])
    done = subprocess.run([sys.executable, "-m", "weam", "align", "run", "--src", str(src), "--tgt", str(tgt),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "FAST_ALIGN_BIN": str(tmp_path / "gone")})
    assert done.returncode == 2 and str(tmp_path / "gone") in done.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_killed_fast_align_run_leaves_no_corpus_copy_in_the_temp_dir(tmp_path, pairs, fast_align_config):
    """kill -9 during fast_align: its scratch folder (a copy of the corpus) is removed by the next run."""
    src, tgt = write_corpus(pairs, tmp_path / "corpus", copies=4)
    temp = tmp_path / "tmp"
    temp.mkdir()
    fa = fast_align_config.model_dump_json()
    script = ("import sys; from pathlib import Path; from weam.alignment.api import align_corpus; "
              "from weam.alignment.config import AlignConfig, FastAlignConfig; "
              "align_corpus(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), AlignConfig(engine='fast_align', "
              f"fast_align=FastAlignConfig.model_validate_json({fa!r})))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(temp)}
    driver = subprocess.Popen([sys.executable, "-c", script, str(src), str(tgt), str(tmp_path / "out")], env=env)
    deadline = time.monotonic() + 60
    while not list(temp.glob("weam-fa-*/corpus.src-tgt")) and time.monotonic() < deadline:
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert list(temp.glob("weam-fa-*/corpus.src-tgt"))  # the fault: a corpus copy left behind
    done = subprocess.run([sys.executable, "-c", script, str(src), str(tgt), str(tmp_path / "out")], env=env,
                          timeout=300)
    assert done.returncode == 0
    assert not list(temp.glob("weam-fa-*"))
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_scratch_folder_of_a_live_process_is_left_alone(tmp_path, monkeypatch):
    from weam.alignment.engines import scratch_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with scratch_dir("weam-fa-") as mine:
        with scratch_dir("weam-fa-") as other:  # sweeps, but `mine` is held
            assert mine.is_dir() and other.is_dir()
    assert not list(tmp_path.glob("weam-fa-*"))


def test_global_model_cache_is_not_unpickled(monkeypatch, tmp_path, pairs, ray_cluster):
    """A pickle planted in the resume folder (a shared volume) runs no code; the model is retrained."""
    src, tgt = write_corpus(pairs[:80], tmp_path / "corpus")
    cfg = AlignConfig(engine="eflomal", shards=2, ray=TEST_RAY, eflomal={"n_samplers": 1})
    out = tmp_path / "out"
    interrupted_run(monkeypatch, src, tgt, out, cfg)
    (work,) = out.glob(".work-*")
    cache = json.loads((work / "global-model.json").read_text())
    assert cache["engine"] == "eflomal" and isinstance(cache["model"], str)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for name in ("global-model.json", "global-model.pkl"):
        (work / name).write_bytes(pickle.dumps(Exploit()))
    for shard in work.glob("shard-*.txt"):
        shard.unlink()
    align_corpus(src, tgt, out, cfg)
    assert not marker.exists() and counts(out)["global_model"].startswith("trained on")


def test_bom_is_not_part_of_the_first_word(tmp_path):
    from weam.core.corpus import read_parallel

    (tmp_path / "a.en").write_bytes("\ufeffthe cat\n".encode())
    write(tmp_path / "a.de", ["die Katze"])
    (pair,) = read_parallel(tmp_path / "a.en", tmp_path / "a.de")
    assert pair.src.split()[0] == "the"


def test_empty_corpus_is_an_error_for_data_check(tmp_path):
    for name in ("a.en", "a.de"):
        (tmp_path / name).write_text("")
    done = subprocess.run([sys.executable, "-m", "weam", "data", "check", "--src", str(tmp_path / "a.en"), "--tgt",
                           str(tmp_path / "a.de")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and "no sentence pairs" in done.stderr


def test_alignment_changed_link_is_an_error_line(tmp_path):
    """`3-²`: str.isdigit() accepts '²' but int() does not; the reader must say file:line."""
    gold = write(tmp_path / "gold.txt", ["0-0"])
    pred = write(tmp_path / "pred.txt", ["3-\u00b2"])
    done = subprocess.run([sys.executable, "-m", "weam", "align", "score", "--pred", str(pred), "--gold", str(gold)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and f"{pred}:1" in done.stderr and "Traceback" not in done.stderr


def test_missing_shared_tool_is_a_weam_error(tmp_path):
    cfg = AlignConfig(engine="auto", fast_align=FastAlignConfig(binary=str(tmp_path / "nope")))
    from weam.alignment.engines import resolve_engine

    with pytest.raises(WeamError, match="nope"):
        resolve_engine(cfg)


def test_bench_pipelines_quote_paths(tmp_path, monkeypatch):
    """benchmarks/align_bench.py runs its by-hand pipelines through a shell: a path holding a space
    and `; touch …` must stay a path."""
    import benchmarks.align_bench as bench

    folder = tmp_path / "a dir; touch PWNED"
    folder.mkdir()
    fwd, rev = write(folder / "f", ["0-0 1-1"]), write(folder / "r", ["0-0"])
    monkeypatch.chdir(tmp_path)
    bench.measure(bench.symmetrize_by_hand(None, fwd, rev, folder / "out"))
    assert (folder / "out").read_text().split() == ["0-0", "1-1"]
    assert not (tmp_path / "PWNED").exists()


def test_a_local_ray_keeps_its_token_private_and_its_node_on_the_loopback(tmp_path):
    """Issue 26, item 6: Ray wrote ~/.ray/auth_token 0644; weam writes it 0600 first (or tightens
    it) before a local Ray starts, whose node address is 127.0.0.1 unless an address is given."""
    import stat

    from weam.alignment.ray_runtime import RayLocalConfig, init_kwargs, private_ray_token

    token = tmp_path / "ray" / "auth_token"
    env = {"RAY_AUTH_TOKEN_PATH": str(token)}
    assert private_ray_token(env) == token and stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(token.read_text()) == 64
    before = token.read_text()
    token.chmod(0o644)
    assert private_ray_token(env) == token and stat.S_IMODE(token.stat().st_mode) == 0o600
    assert token.read_text() == before  # an existing token is kept, only tightened
    assert private_ray_token({**env, "RAY_AUTH_MODE": "disabled"}) is None
    assert init_kwargs(None, RayLocalConfig())["_node_ip_address"] == "127.0.0.1"
    assert "_node_ip_address" not in init_kwargs("10.0.0.5:6379", RayLocalConfig())
