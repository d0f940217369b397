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
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
TRACKED_PACKAGES = ("weam", "torch", "transformers", "tokenizers", "deepspeed", "ray", "mlflow", "eflomal", "sil-thot")


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
        honour_umask(tmp)
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


def honour_umask(folder: str | Path) -> None:
    """Give the files under ``folder`` the mode the umask gives a new file (0644 under umask 022):
    safetensors (0.5 and later) writes ``model.safetensors`` 0600 through a private temporary file,
    which the rest of a team on a shared filesystem could not read. Execute bits are kept."""
    allowed = 0o666 & ~_current_umask()
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            current = stat.S_IMODE(path.stat().st_mode)
            wanted = allowed | (current & 0o111 & ~_current_umask())
            if current != wanted:
                os.chmod(path, wanted)


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


_HASHES: dict[tuple[int, int, int, int], str] = {}
"""Hashes computed in this process, by (device, inode, size, mtime): a status or a study reads the
same corpus files for many stages."""


def _stat_key(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


SAMPLE_BLOCKS, SAMPLE_BLOCK_BYTES = 64, 64 << 10


def sampled_sha256(path: str | Path, size: int | None = None) -> str:
    """SHA-256 of a sample of the file: 64 blocks of 64 KiB spread evenly from the first byte to
    the last (the whole file up to 4 MiB; 4 MiB read whatever the size). It checks the size+mtime
    shortcut against an in-place edit with the mtime put back (``rsync --inplace -t``); an edit
    that falls between the sampled blocks of a file over 4 MiB still goes unseen."""
    size = Path(path).stat().st_size if size is None else size
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if size <= SAMPLE_BLOCKS * SAMPLE_BLOCK_BYTES:
            while block := handle.read(1 << 20):
                digest.update(block)
            return digest.hexdigest()
        step = (size - SAMPLE_BLOCK_BYTES) / (SAMPLE_BLOCKS - 1)
        for index in range(SAMPLE_BLOCKS):
            handle.seek(int(index * step))
            digest.update(handle.read(SAMPLE_BLOCK_BYTES))
    return digest.hexdigest()


_TRUST_RECORDED = [True]


@contextlib.contextmanager
def rehash_all(enabled: bool = True) -> Iterator[None]:
    """Within the block (when ``enabled``), every file is hashed whole: no recorded hash is reused
    (``weam study status --rehash``)."""
    previous = _TRUST_RECORDED[0]
    _TRUST_RECORDED[0] = previous and not enabled
    try:
        yield
    finally:
        _TRUST_RECORDED[0] = previous


def content_hash(path: str | Path, recorded: Mapping[str, Any] | None = None) -> str:
    """SHA-256 of a file's content. The recorded hash is reused only for this very file (same
    device and inode) with the same size and mtime, and a matching sampled hash
    (:func:`sampled_sha256`): a copy, a replaced, touched or in-place-edited file is re-hashed."""
    info = Path(path).stat()
    key = _stat_key(info)
    if key in _HASHES:  # hashed whole by this process
        return _HASHES[key]
    if (recorded and _TRUST_RECORDED[0]
            and [recorded.get(k) for k in ("device", "inode", "bytes", "mtime_ns")] == list(key)
            and recorded.get("sample") == sampled_sha256(path, info.st_size)):
        return recorded["sha256"]
    _HASHES[key] = file_sha256(path)
    return _HASHES[key]


def describe_file(path: str | Path, relative_to: Path | None = None) -> dict[str, Any]:
    path = Path(path)
    shown = path.relative_to(relative_to) if relative_to and path.is_relative_to(relative_to) else path
    info = path.stat()
    return {"path": str(shown), "sha256": content_hash(path), "bytes": info.st_size, "device": info.st_dev,
            "inode": info.st_ino, "mtime_ns": info.st_mtime_ns, "sample": sampled_sha256(path, info.st_size)}


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


def _recorded_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config as a manifest records it: JSON values, URI passwords masked (never on disk; a
    changed password is no changed setting)."""
    from weam.core.secrets import redact

    return json.loads(redact(json.dumps(dict(config), default=str)))


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
        config=_recorded_config(config),
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


def recorded_digest(path: str | Path) -> str:
    """The sha256 of ``path`` as the manifest of the stage that wrote it records it (the manifest in
    its folder, an output entry naming it); hashed anew where no manifest names it or the file changed
    since (:func:`content_hash` checks the recorded size, times and sample)."""
    path = Path(path)
    manifest = read_manifest(path.parent) or {}
    recorded = next((info for info in manifest.get("outputs", {}).values() if isinstance(info, dict)
                     and (path.parent / str(info.get("path", ""))).resolve() == path.resolve()), None)
    return content_hash(path, recorded)


@dataclass(frozen=True)
class Verdict:
    """Whether a stage's folder holds a finished run of these inputs and config, and if not, why."""

    state: str
    """``done``, ``missing`` (never finished) or ``stale`` (finished with other inputs or config)."""
    reason: str = ""
    """What differs: the config key with old → new value, or the input that changed."""

    @property
    def done(self) -> bool:
        return self.state == "done"


def check_stage(
    out_dir: str | Path,
    inputs: Mapping[str, str | Path],
    config: Mapping[str, Any],
    *,
    check_outputs: bool = True,
) -> Verdict:
    """The one skip rule: done exactly when the manifest's fingerprint of input contents (content
    hashes) and result-affecting config matches, and the recorded outputs are still there."""
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    if manifest is None:
        return Verdict("missing", "not finished")
    recorded = manifest.get("inputs", {})
    current: dict[str, str] = {}
    for name, path in sorted(inputs.items()):
        try:
            current[name] = content_hash(path, recorded.get(name))
        except FileNotFoundError:
            return Verdict("stale", f"input {name} is missing ({path})")
    normalised_config = _recorded_config(config)
    if manifest.get("fingerprint") != fingerprint(current, normalised_config):
        return Verdict("stale", _difference(recorded, current, manifest.get("config", {}), normalised_config, inputs))
    if check_outputs:
        for name, info in manifest.get("outputs", {}).items():
            path = out_dir / info["path"]
            if not path.is_file() or content_hash(path, info) != info["sha256"]:
                return Verdict("stale", f"output {name} is missing or changed ({path})")
    return Verdict("done")


def _difference(recorded: Mapping[str, Any], current: Mapping[str, str], old_config: Any, new_config: Any,
                paths: Mapping[str, Any]) -> str:
    for name in sorted(set(recorded) | set(current)):
        if name not in current:
            return f"input {name} is no longer used"
        if name not in recorded:
            return f"new input {name} ({paths[name]})"
        if recorded[name].get("sha256") != current[name]:
            return f"input {name} changed ({paths[name]})"
    changes = config_changes(old_config, new_config)
    if changes:
        shown = "; ".join(changes[:3]) + (f" (+{len(changes) - 3} more)" if len(changes) > 3 else "")
        return f"config {shown}"
    return "fingerprint differs (written by another version of weam)"


def config_changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``key: old → new`` for every leaf that differs between two JSON configs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}{key}"
            if key not in old:
                out.append(f"{name}: added ({new[key]!r})")
            elif key not in new:
                out.append(f"{name}: removed")
            else:
                out.extend(config_changes(old[key], new[key], f"{name}."))
        return out
    if old != new:
        return [f"{prefix.rstrip('.')}: {old!r} → {new!r}"]
    return []


def is_up_to_date(out_dir: str | Path, inputs: Mapping[str, str | Path], config: Mapping[str, Any], **options) -> bool:
    """True when ``out_dir`` holds a finished run of the same inputs (by hash) and config."""
    return check_stage(out_dir, inputs, config, **options).done
