"""User-facing errors: the CLI prints these without a traceback and exits 2."""

from __future__ import annotations

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
