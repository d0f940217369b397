"""The buffer journal: what happened while the server was unreachable (and an index of runs, for
lookups while offline), in a buffer directory (``tracking-buffer/`` in the work directory)."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from weam.core.secrets import redact, strip_credentials

BUFFER_DIR_NAME = "tracking-buffer"
OFFLINE_PREFIX = "offline-"


class Journal:
    """A buffer directory: ``journal.jsonl`` (append-only records), ``replayed.txt`` (record ids
    sent), ``ids.jsonl`` (offline run id → server run id), ``artifacts/`` (copies to upload).

    Records with ``replay: true`` are sent by :func:`replay`; the others index runs created while
    online (their name, tags and end), so a process that cannot reach the server still finds them."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / "journal.jsonl"
        self._lock = threading.Lock()

    def append(self, op: str, run: str | None, replay_it: bool, uri: str, **fields: Any) -> dict[str, Any]:
        # The server without its credentials (sync reads them from the environment again), and no
        # password anywhere else in the record either (a tag or param holding a URI).
        record = {"rec": uuid.uuid4().hex, "op": op, "run": run, "replay": replay_it, "uri": strip_credentials(uri),
                  "time": time.time(), **fields}
        line = redact(json.dumps(record, default=str)) + "\n"
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            # One write() of one line with O_APPEND: concurrent writers do not interleave records.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        return record

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash mid-write: the rest of the journal still counts
        return out

    def done(self) -> set[str]:
        file = self.folder / "replayed.txt"
        return set(file.read_text(encoding="utf-8").split()) if file.is_file() else set()

    def mark_done(self, rec: str) -> None:
        with open(self.folder / "replayed.txt", "a", encoding="utf-8") as handle:
            handle.write(rec + "\n")

    def ids(self) -> dict[str, str]:
        file = self.folder / "ids.jsonl"
        if not file.is_file():
            return {}
        pairs = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        return {pair["offline"]: pair["server"] for pair in pairs}

    def map_id(self, offline: str, server: str) -> None:
        with open(self.folder / "ids.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"offline": offline, "server": server}) + "\n")

    def resolve(self, run_id: str | None) -> str | None:
        if run_id and run_id.startswith(OFFLINE_PREFIX):
            return self.ids().get(run_id, run_id)
        return run_id

    def pending(self, uri: str | None = None) -> list[dict[str, Any]]:
        """Records not sent yet (only those meant for ``uri`` when given)."""
        done = self.done()
        return [r for r in self.records()
                if r.get("replay") and r["rec"] not in done
                and (uri is None or strip_credentials(r.get("uri")) == strip_credentials(uri))]

    def runs(self, experiment: str) -> list[SimpleNamespace]:
        """Runs of ``experiment`` known to this journal, shaped like MLflow's (info, data.tags)."""
        ids = self.ids()
        runs: dict[str, SimpleNamespace] = {}
        for record in self.records():
            key = ids.get(record["run"], record["run"])  # later records name the replayed id
            if record["op"] == "create" and record.get("experiment") == experiment:
                info = SimpleNamespace(run_id=key, run_name=record["name"], status="RUNNING",
                                       start_time=record.get("start_ms"), end_time=None)
                runs[key] = SimpleNamespace(info=info, data=SimpleNamespace(tags=dict(record["tags"])))
            elif key in runs and record["op"] == "tags":
                runs[key].data.tags.update(record["tags"])
            elif key in runs and record["op"] in ("end", "status"):
                runs[key].info.status = record["status"]
        return list(runs.values())


def default_buffer_dir(folder: str | Path) -> Path:
    return Path(folder) / BUFFER_DIR_NAME


def find_buffer(path: str | Path) -> Path:
    """A buffer directory given it, the folder that holds it (a study's work directory), or a
    folder under that one (a stage's output folder: a standalone stage buffers beside it)."""
    path = Path(path)
    if (path / "journal.jsonl").is_file():
        return path
    for folder in (path, *path.absolute().parents):
        if (folder / BUFFER_DIR_NAME / "journal.jsonl").is_file():
            return folder / BUFFER_DIR_NAME
    return path / BUFFER_DIR_NAME if (path / BUFFER_DIR_NAME).is_dir() else path
