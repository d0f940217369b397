"""The same config gives the same bytes: two fresh runs of the tiny demo's data and alignment steps
(every pair: 19 alignments) compared by `weam study reproduce --check`. The aligner runs 3/100 of
its sampling sweeps here (align.thot.length=0.03: on these 1,600-2,100-pair corpora 2 IBM1, 1 HMM and 3-4
fertility iterations, against 2-3, 2-3 and 11-13 at 0.1) to keep the test short: the check is of seeding
and order, which do not depend on the number of sweeps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def weam(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": ""}
    return subprocess.run([sys.executable, "-m", "weam.cli", *args], capture_output=True, text=True, env=env,
                          timeout=900)


@pytest.mark.e2e
def test_two_fresh_runs_of_the_tiny_demo_give_the_same_data_and_alignments(tmp_path):
    work = tmp_path / "work"
    first = weam("study", "run", str(CONFIGS / "demo-tiny.yaml"), "--only", "data,align",
                 "--set", f"work_dir={work}", "--set", "align.thot.length=0.03")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (work / "study.resolved.yaml").is_file()
    again = weam("study", "reproduce", "--check", str(work), "--only", "data,align")
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    alignments = sorted(path.relative_to(work) for path in work.glob("align/*/alignment.txt"))
    assert len(alignments) == 19
    assert {str(path): _row(output, path) for path in alignments} == {str(path): "same" for path in alignments}
    assert "differs" not in output and "only in" not in output


def _row(output: str, path: Path) -> str:
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[1] == str(path):
            return cells[2]
    return "missing"


def test_check_refuses_an_unknown_kind_a_used_scratch_folder_and_a_work_dir_without_its_study(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    unknown = weam("study", "reproduce", "--check", str(work), "--only", "align,nonsense")
    assert unknown.returncode == 2 and "error: --only: unknown step kind nonsense" in unknown.stderr, unknown.stderr
    used = tmp_path / "used"
    (used / "align").mkdir(parents=True)
    refused = weam("study", "reproduce", "--check", str(work), "--scratch", str(used))
    assert refused.returncode == 2 and "must be new or empty" in refused.stderr, refused.stderr
    missing = weam("study", "reproduce", "--check", str(work))
    assert missing.returncode == 2 and "study.resolved.yaml: not found" in missing.stderr, missing.stderr
    assert not list(tmp_path.glob("work-check-*")), "the scratch folder is removed on an error too"
