"""User-facing errors: the CLI prints these without a traceback and exits 2."""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path


class WeamError(Exception):
    """An error the user can fix (bad input, bad config, missing tool)."""


class InputError(WeamError):
    """Bad input data, located by file and (when known) 1-based line number."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ConfigError(WeamError):
    """A config file or override that does not validate."""


class StorageError(WeamError):
    """Writing an output failed for a reason of the storage (disk full, read-only, no permission)."""


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def storage_error(exc: BaseException, folder: str | Path | None = None, needed: int | None = None,
                  what: str = "") -> StorageError | None:
    """The user's error for an OSError of the storage, naming the folder (disk full: with the space
    free there and, when the writer knows it, the space needed); None for any other error."""
    if not isinstance(exc, OSError) or exc.errno not in _STORAGE_ERRNOS:
        return None
    file = Path(exc.filename) if isinstance(exc.filename, (str, Path)) and exc.filename else None
    where = Path(folder) if folder is not None else (file.parent if file is not None else None)
    writing = f" writing {what}" if what else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        place = where if where is not None else Path.cwd()
        probe = next((p for p in (place, *place.parents) if p.exists()), None)
        free = shutil.disk_usage(probe).free if probe is not None else None
        cause = "disk full" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        details = [f"{_size(free)} free there" if free is not None else None,
                   f"about {_size(needed)} needed" if needed else None]
        shown = "; ".join(d for d in details if d)
        return StorageError(f"{place}: {cause}{writing} ({shown}); free space there or point the output "
                            "elsewhere, then run again (nothing half-written is kept as done)")
    target = file or where or Path.cwd()
    if exc.errno == errno.EROFS:
        return StorageError(f"{target}: read-only file system{writing}; point the output at a writable folder")
    return StorageError(f"{target}: permission denied{writing}; check its owner and mode")


@contextlib.contextmanager
def writing_to(folder: str | Path, needed: int | None = None, what: str = "") -> Iterator[None]:
    """Turn a storage failure inside the block into a :class:`StorageError` naming ``folder``."""
    try:
        yield
    except OSError as exc:
        error = storage_error(exc, folder, needed, what)
        if error is None:
            raise
        raise error from None
