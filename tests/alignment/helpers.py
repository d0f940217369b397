"""Shared pieces of the alignment tests: the raw tools run by hand, gold files, worker killing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from weam.alignment.pharaoh import format_links, parse_links
from weam.alignment.symmetrize import symmetrize


def eflomal_by_hand(src: Path, tgt: Path, folder: Path, extra: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """eflomal's own CLI (eflomal-align), forward and reverse links files."""
    fwd, rev = folder / "eflomal.fwd", folder / "eflomal.rev"
    cli = Path(sys.executable).with_name("eflomal-align")
    subprocess.run([str(cli), "-s", str(src), "-t", str(tgt), "-f", str(fwd), "-r", str(rev), "--overwrite", *extra],
                   check=True, capture_output=True)
    return fwd, rev


def symmetrize_files(fwd: Path, rev: Path, out: Path, heuristic: str = "grow-diag-final-and") -> Path:
    with open(fwd) as f, open(rev) as r, open(out, "w") as o:
        for a, b in zip(f, r, strict=True):
            o.write(format_links(symmetrize(parse_links(a), parse_links(b), heuristic)) + "\n")
    return out


def silver_gold(fwd: Path, rev: Path, out: Path) -> Path:
    """Gold from an independent, longer eflomal run: sure = both directions agree, possible = either."""
    with open(fwd) as f, open(rev) as r, open(out, "w") as o:
        for a, b in zip(f, r, strict=True):
            one, two = set(parse_links(a)), set(parse_links(b))
            sure = [f"{i}-{j}" for i, j in sorted(one & two)]
            possible = [f"{i}p{j}" for i, j in sorted((one | two) - (one & two))]
            o.write(" ".join(sure + possible) + "\n")
    return out


def fast_align_by_hand(tools, src: Path, tgt: Path, folder: Path, heuristic: str = "grow-diag-final-and") -> Path:
    """The documented upstream recipe: fast_align -d -o -v, the same with -r, atools -c."""
    joint = folder / "corpus.src-tgt"
    with open(src) as s, open(tgt) as t, open(joint, "w") as j:
        for a, b in zip(s, t, strict=True):
            j.write(f"{a.strip()} ||| {b.strip()}\n")
    fwd, rev, out = folder / "fa.fwd", folder / "fa.rev", folder / f"fa.{heuristic}"
    for path, extra in ((fwd, []), (rev, ["-r"])):
        with open(path, "w") as handle:
            subprocess.run([tools.fast_align, "-i", str(joint), "-d", "-o", "-v", "-I", "5", *extra],
                           stdout=handle, stderr=subprocess.DEVNULL, check=True)
    name = "intersect" if heuristic == "intersection" else heuristic
    with open(out, "w") as handle:
        subprocess.run([tools.atools, "-i", str(fwd), "-j", str(rev), "-c", name], stdout=handle, check=True)
    return out


class WorkerKiller(threading.Thread):
    """SIGKILL the first Ray worker seen executing ``task_name`` (its process title is ray::<name>)."""

    def __init__(self, task_name: str, timeout: float = 60.0):
        super().__init__(daemon=True)
        self.title, self.timeout, self.killed_pid = f"ray::{task_name}", timeout, None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and self.killed_pid is None:
            for proc in psutil.process_iter(["pid", "cmdline"]):
                cmdline = " ".join(proc.info["cmdline"] or [])
                if cmdline.startswith(self.title):
                    proc.kill()
                    self.killed_pid = proc.info["pid"]
                    return
            time.sleep(0.005)
