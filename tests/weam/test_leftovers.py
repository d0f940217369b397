"""kill -9 during an atomic write or an export leaves temporaries; the next writer of that output
removes them (only those of dead processes). Output folders get the same permissions as files."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from weam.core.manifest import atomic_directory, atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
EXPORT = (
    "import sys, time; from pathlib import Path; from weam.core.manifest import atomic_directory\n"
    "with atomic_directory(Path(sys.argv[1])) as tmp:\n"
    "    (tmp / 'model.safetensors').write_bytes(b'x' * 1000)\n"
    "    print('writing', flush=True); time.sleep(120)\n"
)


def killed_export(out: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", EXPORT, str(out)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_killed_export_leaves_nothing_after_the_next_export(tmp_path):
    out = tmp_path / "model"
    killed_export(out)
    assert len(list(tmp_path.glob(".model.*.tmp"))) == 1  # the fault: a half-written copy stays
    with atomic_directory(out) as tmp:
        (tmp / "config.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]


def test_a_live_writers_temporaries_are_left_alone(tmp_path):
    out = tmp_path / "model"
    with atomic_directory(out) as first:
        with atomic_directory(tmp_path / "other"):
            pass
        atomic_write_text(tmp_path / "model.txt", "x")
        assert first.is_dir()


def test_output_folders_are_as_readable_as_output_files(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "model") as tmp:
            (tmp / "a").write_text("x")
        atomic_write_text(tmp_path / "file.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "file.txt").stat().st_mode) == 0o644
