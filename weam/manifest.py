"""Stage manifests and atomic writes: how stages hand work to each other and skip finished work.

Every stage writes its outputs into one directory and, last of all, ``manifest.json`` there:

.. code-block:: json

    {"stage": "align", "fingerprint": "…", "inputs": {"src": {"path": "…", "sha256": "…", "bytes": 1}},
     "config": {…}, "outputs": {"alignment": {"path": "alignment.txt", "sha256": "…", "bytes": 1}},
     "counts": {"pairs": 1000}, "versions": {"weam": "0.1.0", "torch": "…"}, "created": "…"}

Because the manifest is written last and atomically, a directory without one is unfinished. A
re-run whose inputs (by content hash) and config are unchanged, and whose outputs still match
their hashes, is skipped; anything else re-runs.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
TRACKED_PACKAGES = ("weam", "torch", "transformers", "tokenizers", "deepspeed", "ray", "mlflow", "eflomal")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[Any]:
    """Write to a temporary file beside ``path`` and rename it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_abandoned(path)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; outputs should be shareable
    try:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text)


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Build a directory under a temporary name and swap it in whole on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_abandoned(path)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_current_umask())  # mkdtemp makes 0700; outputs should be shareable like files
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _tmp_prefix(path: Path) -> str:
    """``.<name>.<host>-<pid>-``: who writes a temporary file or folder, so a later writer can tell
    one abandoned by a killed process from one still being written."""
    return f".{path.name}.{socket.gethostname()}-{os.getpid()}-"


def _sweep_abandoned(path: Path) -> None:
    """Remove temporaries (and half-swapped ``.old-<pid>`` folders) beside ``path`` left by processes
    of this host that no longer run (kill -9 skips every cleanup). Other hosts' are left alone."""
    host = re.escape(socket.gethostname())
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:{host}-(\d+)-[A-Za-z0-9_]+\.tmp|old-(\d+))")
    for leftover in path.parent.glob(f".{path.name}.*"):
        match = pattern.fullmatch(leftover.name)
        if match is None or _alive(int(match[1] or match[2])):
            continue
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def describe_file(path: str | Path, relative_to: Path | None = None) -> dict[str, Any]:
    path = Path(path)
    shown = path.relative_to(relative_to) if relative_to and path.is_relative_to(relative_to) else path
    return {"path": str(shown), "sha256": file_sha256(path), "bytes": path.stat().st_size}


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def fingerprint(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """Hash of input hashes and config: what decides whether a stage must re-run."""
    payload = json.dumps({"inputs": inputs, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class Manifest:
    stage: str
    inputs: dict[str, dict[str, Any]]
    config: dict[str, Any]
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=package_versions)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat())

    @property
    def fingerprint(self) -> str:
        return fingerprint(_input_hashes(self.inputs), self.config)

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "fingerprint": self.fingerprint,
            "inputs": self.inputs,
            "config": self.config,
            "outputs": self.outputs,
            "counts": self.counts,
            "versions": self.versions,
            "created": self.created,
        }


def _input_hashes(inputs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    return {name: info["sha256"] for name, info in inputs.items()}


def describe_inputs(inputs: Mapping[str, str | Path]) -> dict[str, dict[str, Any]]:
    return {name: describe_file(path) for name, path in sorted(inputs.items())}


def write_manifest(
    out_dir: str | Path,
    stage: str,
    inputs: Mapping[str, str | Path] | Mapping[str, dict[str, Any]],
    config: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    counts: Mapping[str, Any] | None = None,
) -> Manifest:
    """Record a finished stage. Call last: the manifest's presence means 'finished'."""
    out_dir = Path(out_dir)
    described_inputs = {
        name: value if isinstance(value, dict) else describe_file(value) for name, value in inputs.items()
    }
    manifest = Manifest(
        stage=stage,
        inputs=described_inputs,
        config=json.loads(json.dumps(dict(config), default=str)),
        outputs={name: describe_file(out_dir / path, out_dir) for name, path in outputs.items()},
        counts=dict(counts or {}),
    )
    atomic_write_json(out_dir / MANIFEST_NAME, manifest.to_json())
    return manifest


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def is_up_to_date(
    out_dir: str | Path,
    inputs: Mapping[str, str | Path],
    config: Mapping[str, Any],
    *,
    check_outputs: bool = True,
) -> bool:
    """True when ``out_dir`` holds a finished run of the same inputs (by hash) and config."""
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    if manifest is None:
        return False
    try:
        current = {name: file_sha256(path) for name, path in inputs.items()}
    except FileNotFoundError:
        return False
    normalised_config = json.loads(json.dumps(dict(config), default=str))
    if manifest.get("fingerprint") != fingerprint(current, normalised_config):
        return False
    if check_outputs:
        for info in manifest.get("outputs", {}).values():
            path = out_dir / info["path"]
            if not path.is_file() or path.stat().st_size != info["bytes"]:
                return False
            if file_sha256(path) != info["sha256"]:
                return False
    return True
