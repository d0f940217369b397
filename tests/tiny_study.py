"""The tiny study every whole-study test shares: built once per test session by `weam study run`
(the production path, in its own process), in the background from the end of collection, in a
folder both pytest-xdist workers see. tests/conftest.py hands it out as the ``tiny_study`` and
``tiny_study_offline`` fixtures; this module holds the config, the build and the copy helper."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from tests.ports import RESERVED, worker_port

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

STUDY = """
name: tiny
work_dir: {work}
conditions:
  - {{name: diverse, role: treatment, languages: [fi, tr], families: [Uralic, Turkic]}}
  - {{name: single, role: control, languages: [de, fr], families: [Indo-European]}}
held_out: [sw]
token_budget: 12000
seeds: [0]
base:
  model: "preset:tiny"
  vocab_size: 1500
  token_budget: 12000
  pretrain: {{_base_: {configs}/pretrain/tiny.yaml, optim: {{max_steps: null}}, checkpoint: {{every: 2}}, data: {{max_seq_len: 32}}}}
data: {{_base_: {configs}/data/demo.yaml}}
align: {{_base_: {configs}/align/default.yaml, engine: thot, thot: {{length: 0.3}}}}
pretrain: {{_base_: {configs}/pretrain/tiny.yaml, optim: {{max_steps: null}}, checkpoint: {{every: 2}}, data: {{max_seq_len: 32}}}}
eval: {{_base_: {configs}/eval/tatoeba.yaml}}
"""

PLANTED_PASSWORD = "planted-S3cret-9f2"
"""In the tracking URI the study is built with (issue 26): printed masked, never written to a file."""

BUILD_TIMEOUT_S = 3600
"""How long a test waits for the build at most; pytest-timeout's limit per test (600 s) comes first:
the build starts at the end of collection, so the first test that needs it waits for what is left
(31 min for the whole build on the shared 2-core machine under a load near 17, a 15-min DeepSpeed
op compile included)."""


def write_study(folder: Path) -> Path:
    """``folder/study.yaml``: the tiny study, its work directory ``folder/work``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.yaml"
    path.write_text(STUDY.format(work=folder / "work", configs=CONFIGS), encoding="utf-8")
    return path


@dataclass(frozen=True)
class TinyStudy:
    """A finished tiny study: ``folder`` holds ``study.yaml`` (``config``) and ``work/`` (``work``).
    Shared by every test of the session: read it, never change it; a test that changes a setting
    or re-runs a step takes ``copy(tmp_path)`` and runs only what its change makes stale."""

    folder: Path
    stdout: str
    """What `weam study run` printed on stdout (step lines, the held-out score table)."""
    stderr: str
    """What it printed on stderr (the one ``tracking:`` line saying the server is down)."""
    down_uri: str
    """The tracking URI it ran with: a server that was down (``http://weam:<password>@127.0.0.1:<port>``,
    a port of tests/ports.py's RESERVED range: nothing listens there until a test starts a server)."""

    @property
    def config(self) -> Path:
        return self.folder / "study.yaml"

    @property
    def work(self) -> Path:
        return self.folder / "work"

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def copy(self, dest: Path) -> TinyStudy:
        """The study copied to ``dest`` (``dest/work``, symlinks kept, and a ``dest/study.yaml``
        naming it): done there too, since manifests hold paths relative to the work directory."""
        shutil.copytree(self.work, dest / "work", symlinks=True)
        write_study(dest)
        return replace(self, folder=dest)


REUSE_VARIABLE = "WEAM_TEST_TINY_STUDY"
"""A folder to build the tiny study in and, when it holds a finished build, reuse from: for running
whole-study tests again without the build (remove the folder when the code the study runs changes)."""


def shared_folder(config) -> Path:
    """One folder per test session that every xdist worker sees (each worker's basetemp is a
    ``popen-gwN`` folder inside the session's); without xdist, the session's basetemp."""
    if os.environ.get(REUSE_VARIABLE):
        folder = Path(os.environ[REUSE_VARIABLE]).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    base = config._tmp_path_factory.getbasetemp()  # noqa: SLF001 - tmp_path_factory outside a fixture
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "tiny-study"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _env(uri: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": uri}


def start_build(shared: Path) -> subprocess.Popen | None:
    """Start `weam study run` on the tiny study in the background unless a worker already did;
    returns the process when this call started it."""
    try:
        os.close(os.open(shared / "started", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return None
    down = f"http://weam:{PLANTED_PASSWORD}@127.0.0.1:{worker_port(RESERVED)}"
    (shared / "down_uri").write_text(down, encoding="utf-8")
    study = write_study(shared / "study")
    script = ("import subprocess, sys\n"
              "done = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1] + '.stdout', 'w'),"
              " stderr=open(sys.argv[1] + '.stderr', 'w'))\n"
              "open(sys.argv[1] + '.rc', 'w').write(str(done.returncode))\n")
    return subprocess.Popen([sys.executable, "-c", script, str(shared / "build"),
                             sys.executable, "-m", "weam.cli", "study", "run", str(study)],
                            env=_env(down), cwd=shared, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finished(shared: Path) -> tuple[TinyStudy, TinyStudy]:
    """Wait for the build (starting it if nobody has), then, once per session under a file lock,
    keep a copy of the work directory as the run left it (``offline/``: runs in its tracking
    buffer) and sync the buffer into the study's own SQLite store (``study/``), as
    `weam tracking sync --uri` does. Returns (study, offline)."""
    start_build(shared)
    rc_file, deadline = shared / "build.rc", time.time() + BUILD_TIMEOUT_S
    while not rc_file.is_file():
        if time.time() > deadline:
            raise TimeoutError(f"the tiny study took over {BUILD_TIMEOUT_S} s ({shared})")
        time.sleep(0.5)
    time.sleep(0.2)  # the rc file is written in one call; let it land
    stdout, stderr = ((shared / f"build.{kind}").read_text(encoding="utf-8") for kind in ("stdout", "stderr"))
    if rc_file.read_text().strip() != "0":
        raise RuntimeError(f"`weam study run` on the tiny study failed (exit {rc_file.read_text()}):\n"
                           f"{stdout[-3000:]}\n{stderr[-3000:]}")
    down = (shared / "down_uri").read_text(encoding="utf-8")
    study = TinyStudy(shared / "study", stdout, stderr, down)
    with open(shared / "synced.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "synced").is_file():
            study.copy(shared / "offline")  # before the sync: the buffer as the run left it
            store = f"sqlite:///{study.work / 'mlflow.db'}"
            done = subprocess.run([sys.executable, "-m", "weam.cli", "tracking", "sync", "--buffer", str(study.work),
                                   "--uri", store], capture_output=True, text=True, env=_env(""), timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"syncing the tiny study's buffer failed:\n{done.stdout}\n{done.stderr}")
            (shared / "synced").write_text(done.stdout, encoding="utf-8")
    return study, replace(study, folder=shared / "offline")
