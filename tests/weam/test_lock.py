"""Exclusive locks: a second writer is refused naming the holder; a dead holder's lock is taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from weam.core.lock import LockedError, exclusive, lock_output, lock_work_dir, read_holder

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time; from weam.core.lock import lock_work_dir\n"
    "with lock_work_dir(sys.argv[1]):\n"
    "    print('held', flush=True); time.sleep(120)\n"
)


@pytest.fixture
def holder(tmp_path):
    """Another process holding the work-dir lock of tmp_path/work until killed."""
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(work)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    yield work, proc
    proc.kill()
    proc.wait()


def test_second_writer_is_refused_naming_host_and_pid(holder):
    work, proc = holder
    with pytest.raises(LockedError) as caught:
        with lock_work_dir(work):
            pass
    message = str(caught.value)
    assert f"PID {proc.pid}" in message and socket.gethostname() in message and str(work) in message


def test_waiting_writer_gets_the_lock_when_the_holder_ends(holder):
    work, proc = holder
    proc.terminate()
    with lock_work_dir(work, wait_seconds=30):
        assert read_holder(work / ".weam.lock")["pid"] == os.getpid()


def test_lock_of_a_killed_holder_is_taken_over(holder):
    work, proc = holder
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert read_holder(work / ".weam.lock")["pid"] == proc.pid  # the record survives the kill
    with lock_work_dir(work):
        assert read_holder(work / ".weam.lock")["pid"] == os.getpid()


def test_reentrant_in_one_process_and_released_after(tmp_path):
    with lock_output(tmp_path / "out"):
        with lock_output(tmp_path / "out"):
            pass
        assert (tmp_path / ".out.lock").is_file()
    # released: another process can take it at once
    code = "import sys; from weam.core.lock import exclusive\nwith exclusive(sys.argv[1], 'x'): print('ok')"
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / ".out.lock")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_refusal_is_immediate_without_wait(holder):
    work, _ = holder
    started = time.monotonic()
    with pytest.raises(LockedError):
        with exclusive(work / ".weam.lock", "w"):
            pass
    assert time.monotonic() - started < 5


def test_concurrent_study_run_on_one_work_dir_is_refused(holder, tmp_path):
    """`weam study run` on a work dir another run holds: exit 2 naming the holder, nothing written."""
    work, proc = holder
    before = sorted(p.name for p in work.iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "weam.cli", "study", "run", str(ROOT / "configs/demo.yaml"), "--set", f"work_dir={work}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": ""},
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"PID {proc.pid}" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in work.iterdir()) == before  # no mlflow.db, no data, no marker


@pytest.mark.e2e
@pytest.mark.multiprocess
def test_two_real_study_runs_on_one_fresh_work_dir(tmp_path):
    """Two `weam study run` started together on a fresh work dir: the second is refused naming the
    first (no SQLite migration race, nothing trained twice); the first runs on."""
    work = tmp_path / "work"
    command = [sys.executable, "-m", "weam.cli", "study", "run", str(ROOT / "configs/demo.yaml"), "--set",
               f"work_dir={work}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": ""}
    first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while read_holder(work / ".weam.lock").get("pid") != first.pid:
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2 and f"PID {first.pid}" in second.stderr, second.stderr[-2000:]
        assert "Traceback" not in second.stderr and first.poll() is None
    finally:
        first.kill()
        first.wait()


HOLD_OUTPUT = (
    "import sys, time; from weam.core.lock import lock_output\n"
    "with lock_output(sys.argv[1]):\n"
    "    print('held', flush=True); time.sleep(120)\n"
)


def test_every_writer_of_a_stage_folder_takes_its_lock(tmp_path):
    """Issue 26, item 2: a study step and a standalone `weam <stage> run` on one folder used to both
    run (15 interleaved rows for 10 steps); both now go through weam.stages.execute, which holds
    the folder's lock: the second is refused naming the first, and writes nothing."""
    from weam.edge import run_stage
    from weam.stages import Step, execute
    from weam.training.stage import TokenizerConfig

    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\n" * 20, encoding="utf-8")
    out = tmp_path / "work" / "tokenizer"
    config = TokenizerConfig(files=[text], vocab_size=60, out_dir=out)
    proc = subprocess.Popen([sys.executable, "-c", HOLD_OUTPUT, str(out)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "held"
        for attempt in (lambda: execute(Step("tokenizer", "tokenizer", out, config)),  # a study's step
                        lambda: run_stage("tokenizer", config)):                       # `weam tokenizer run`
            with pytest.raises(LockedError, match=rf"output folder {out} is in use by PID {proc.pid}"):
                attempt()
        assert not out.exists()
    finally:
        proc.kill()
        proc.wait()
    assert execute(Step("tokenizer", "tokenizer", out, config)) is False and (out / "manifest.json").is_file()


@pytest.mark.multiprocess
def test_two_processes_creating_one_sqlite_store_both_log(tmp_path):
    """Issue 26, item 2: two standalone runs on one fresh store raced MLflow's migration
    (`_alembic_tmp_experiments already exists`) and buffered one run with a dangling parent; the
    first connection is now serialised by <store>.lock: both runs are in the store, none buffered."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = ("import sys; from weam.core.tracking import RunLogger\n"
            "with RunLogger(sys.argv[1], 'race', sys.argv[2], buffer_dir=sys.argv[3], system_metrics=False) as run:\n"
            "    run.log_metrics({'x': 1.0})\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [subprocess.Popen([sys.executable, "-c", code, uri, f"eval/{i}", str(tmp_path / "buffer")], env=env,
                             stderr=subprocess.PIPE, text=True) for i in range(2)]
    errors = [proc.communicate(timeout=300)[1] for proc in runs]
    assert [proc.returncode for proc in runs] == [0, 0], errors
    assert not any("tracking:" in err for err in errors), errors  # nothing went to the buffer
    client = MlflowClient(uri)
    found = client.search_runs([client.get_experiment_by_name("race").experiment_id])
    assert sorted(run.info.run_name for run in found) == ["eval/0", "eval/1"]
    assert not (tmp_path / "buffer" / "journal.jsonl").exists()
