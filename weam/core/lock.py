"""Exclusive locks: one writer per study work directory and per stage output folder.

A lock is an ``flock`` on a small file that also records who holds it (host, PID, command, since
when), so a second writer is refused with a message naming the holder instead of racing it (two
studies migrating one SQLite store at once, two trainings appending to one ``train_log.jsonl``).

Stale locks are taken over safely by construction: the kernel drops an ``flock`` when its holder
dies (kill -9 included) and NFSv4 drops it when the holder's lease expires, so a lock file left
behind is only a record; whoever locks it next overwrites that record. The lock is re-entrant in
one process (the study runner holds the work directory and calls stages that lock their outputs).

Where the file lives: :func:`lock_work_dir` puts ``.weam.lock`` inside the directory (a study's
work dir is never replaced); :func:`lock_output` puts ``.<name>.lock`` beside the folder, because
stages swap their output folders in whole (:func:`weam.core.manifest.atomic_directory`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from weam.core.errors import WeamError

WORK_LOCK_NAME = ".weam.lock"
POLL_SECONDS = 0.2

_held: dict[str, int] = {}  # lock file → depth, for re-entrance within this process
_guard = threading.Lock()


class LockedError(WeamError):
    """Another process holds the lock; ``holder`` is what it recorded (may be empty)."""

    def __init__(self, lock_file: Path, what: str, holder: dict):
        self.lock_file, self.holder = lock_file, holder
        if holder:
            who = (f"PID {holder.get('pid', '?')} on host {holder.get('host', '?')} "
                   f"(since {holder.get('since', '?')}: {holder.get('command', '?')})")
        else:
            who = "another process (it has not recorded itself yet)"
        super().__init__(
            f"{what} is in use by {who}; lock file {lock_file}. Wait for that run to finish or stop it; "
            "a lock whose holder died is released by the system and taken over automatically."
        )


def read_holder(lock_file: str | Path) -> dict:
    """What the current or last holder recorded; {} when unreadable."""
    try:
        return json.loads(Path(lock_file).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def exclusive(lock_file: str | Path, what: str, wait_seconds: float = 0.0, reentrant: bool = True) -> Iterator[Path]:
    """Hold an exclusive lock on ``lock_file`` for the block; refuse (LockedError) if another
    process holds it after ``wait_seconds`` (or, with ``reentrant=False``, this process does)."""
    lock_file = Path(lock_file).absolute()
    key = str(lock_file)
    with _guard:
        if _held.get(key) and not reentrant:
            raise LockedError(lock_file, what, read_holder(lock_file))
        if _held.get(key):
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield lock_file
        finally:
            with _guard:
                _held[key] -= 1
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)  # O_CLOEXEC by default: no child inherits it
    try:
        _acquire(fd, lock_file, what, wait_seconds)
        _record(fd)
        with _guard:
            _held[key] = 1
        try:
            yield lock_file
        finally:
            with _guard:
                _held.pop(key, None)
            # Leave the file (unlinking would race a waiter that opened it); clear the record.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


def _acquire(fd: int, lock_file: Path, what: str, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockedError(lock_file, what, read_holder(lock_file)) from None
            time.sleep(POLL_SECONDS)


def _record(fd: int) -> None:
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "command": " ".join(sys.argv)[:300],
        "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
    os.fsync(fd)


def lock_work_dir(work_dir: str | Path, wait_seconds: float = 0.0):
    """The study work directory's lock (``<work_dir>/.weam.lock``)."""
    work_dir = Path(work_dir)
    return exclusive(work_dir / WORK_LOCK_NAME, f"work directory {work_dir}", wait_seconds)


def lock_output(out_dir: str | Path, wait_seconds: float = 0.0):
    """A stage output folder's lock (``.<name>.lock`` beside the folder, which may be swapped whole)."""
    out_dir = Path(out_dir).resolve()  # one lock file, however the folder was named (symlinks, ..)
    return exclusive(out_dir.parent / f".{out_dir.name}.lock", f"output folder {out_dir}", wait_seconds)
