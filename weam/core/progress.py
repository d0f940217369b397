"""Progress for long steps, and the one place where uninformative library warnings are silenced.

On a terminal, :class:`Progress` draws a rich progress bar with the rate and the ETA. Anywhere
else (a log file, CI, a Kubernetes pod, ``make demo | tee``) it prints one plain line each time
another ``every_percent`` of the total is done, so logs show how far a run got without a redraw
per step::

    [weam] pretrain weam: 30% 120,000/400,000 tokens, 5,210 tokens/s, elapsed 0:00:23, ETA 0:00:54 (step 31)

With an unknown total it prints a line every ``every_seconds``. ``WEAM_PROGRESS=plain`` forces
the plain lines on a terminal, ``WEAM_PROGRESS=off`` turns progress off.

:func:`quiet_library_noise` filters the warnings, log records and progress bars that tell a user
nothing (DeepSpeed's scheduler and accelerator messages, transformers' "Loading weights" bar at every
model load, datasets' bars over small files, …); the ``weam`` command applies it once at start.
transformers' LOAD REPORT (new head, absent pooler, unused MLM head at every fine-tuning load) is not
filtered here but replaced by a check where models are loaded (:func:`weam.eval.runners.load_pretrained`):
a report of missing encoder weights must stop the run, not scroll by.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

ENV_MODE = "WEAM_PROGRESS"
T = TypeVar("T")

NOISE_MESSAGES: tuple[str, ...] = (
    # DeepSpeed, on every engine.get_lr() before the first optimizer step (a warmup schedule's step 0).
    "Attempting to get learning rate from scheduler before it has started",
    # DeepSpeed's accelerator auto-detection, printed at import and again per engine.
    "Setting ds_accelerator to",
    "Setting accelerator to CPU. If you have GPU or other accelerator, we were unable to detect it.",
    "Setting DS_ACCELERATOR",
    "DeepSpeed info: version=",
    # DeepSpeed without compiled ops (DS_BUILD_OPS=0, the CPU default here).
    "async_io requires the dev libaio",
    "please install triton",
    "torch.utils._pytree._register_pytree_node is deprecated",
    # accelerate / torch when no CUDA device exists (expected on CPU runs).
    "CUDA initialization: Found no NVIDIA driver",
    "User provided device_type of 'cuda', but CUDA is not available",
)
"""Substrings of messages that say nothing a user can act on; matched in warnings and log records."""

NOISY_LOGGERS = ("DeepSpeed", "deepspeed", "torch.distributed.elastic", "accelerate")
"""Loggers whose records are checked against :data:`NOISE_MESSAGES` (other records pass)."""

NOISE_BARS: tuple[str, ...] = (
    # transformers, one bar per from_pretrained (a study loads a model for every fine-tuning seed and
    # task) and one per save_pretrained.
    "Loading weights",
    "Writing model shards",
)
"""Descriptions of library progress bars that say nothing to a user (they are not drawn)."""

QUIET_ENV = {"HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
"""Set (unless the user set them) before the libraries load: datasets' "Generating split", "Map" and
"Filter" bars over the small evaluation files (weam streams its large corpora: no bar there)."""


class _NoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to drop
            return True
        return not any(noise in message for noise in NOISE_MESSAGES)


_FILTER = _NoiseFilter()


def quiet_library_noise() -> None:
    """Filter :data:`NOISE_MESSAGES` from Python warnings and from the noisy libraries' loggers.

    Idempotent; call it once at process start (``weam.cli.main`` does). Loggers created later by
    a library still get the filter, because it sits on the handlers of the root logger too.
    """
    for noise in NOISE_MESSAGES:
        warnings.filterwarnings("ignore", message=f".*{re.escape(noise)}")
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    _after_import("transformers.utils.logging", _quiet_transformers_bars)


def _quiet_bar(factory, args, kwargs):
    """transformers' tqdm hook: a bar of :data:`NOISE_BARS` is created disabled, any other as asked."""
    if kwargs.get("desc") in NOISE_BARS:
        kwargs = {**kwargs, "disable": True}
    return factory(*args, **kwargs)


def _quiet_transformers_bars(hf_logging) -> None:
    if getattr(hf_logging, "set_tqdm_hook", None) is not None:  # transformers >= 5
        hf_logging.set_tqdm_hook(_quiet_bar)


def _after_import(name: str, callback) -> None:
    """Run ``callback(module)`` now if ``name`` is imported, else right after it is (so that quieting
    transformers does not cost its import at every command's start)."""
    if name in sys.modules:
        callback(sys.modules[name])
    elif not any(isinstance(f, _AfterImport) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name, callback))


class _AfterImport(importlib.abc.MetaPathFinder):
    """A post-import hook: finds ``name`` with the other finders and runs the callback on the module
    once it has executed; then steps aside."""

    def __init__(self, name: str, callback):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenCall(spec.loader, self.callback)
        return spec


class _ThenCall(importlib.abc.Loader):
    def __init__(self, loader, callback):
        self.loader, self.callback = loader, callback

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        self.callback(module)

    def __getattr__(self, name):  # get_resource_reader, is_package, … as the real loader has them
        return getattr(self.loader, name)


def _format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _mode(stream: IO[str]) -> str:
    chosen = os.environ.get(ENV_MODE, "").strip().lower()
    if chosen in ("off", "plain", "rich"):
        return chosen
    isatty = getattr(stream, "isatty", None)
    return "rich" if isatty is not None and isatty() else "plain"


class Progress:
    """A progress display for one long step: ``advance(n)`` or ``update(completed)``, then close.

    ``enabled=False`` (e.g. on every rank but 0) makes every call a no-op.
    """

    def __init__(
        self,
        description: str,
        total: float | None = None,
        unit: str = "it",
        every_percent: float = 10.0,
        every_seconds: float = 30.0,
        stream: IO[str] | None = None,
        enabled: bool = True,
    ):
        self.description, self.total, self.unit = description, total, unit
        self.every_percent, self.every_seconds = every_percent, every_seconds
        self.stream = stream if stream is not None else sys.stderr
        self.completed = 0.0
        self.info = ""
        self.started = time.monotonic()
        self.mode = _mode(self.stream) if enabled else "off"
        self._next_percent = every_percent
        self._last_line = self.started
        self._closed = False
        self._rich = None
        if self.mode == "rich":
            self._start_rich()

    def _start_rich(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
        self._rich = RichProgress(*columns, console=Console(file=self.stream), transient=False)
        self._rich.start()
        self._task = self._rich.add_task(self.description, total=self.total, rate="", info="")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def advance(self, amount: float = 1, info: str | None = None) -> None:
        self.update(self.completed + amount, info)

    def update(self, completed: float, info: str | None = None) -> None:
        """Set the amount done so far (and an optional short status such as the step or loss)."""
        if self.mode == "off" or self._closed:
            return
        self.completed = completed
        if info is not None:
            self.info = info
        if self._rich is not None:
            self._rich.update(self._task, completed=completed, rate=f"{self.rate():,.1f} {self.unit}/s",
                              info=self.info)
            return
        now = time.monotonic()
        if self.total:
            percent = 100.0 * completed / self.total
            if percent + 1e-9 >= self._next_percent:
                # one line however many thresholds this update crossed
                self._next_percent = (int(percent // self.every_percent) + 1) * self.every_percent
                self._emit(percent)
        elif now - self._last_line >= self.every_seconds:
            self._last_line = now
            self._emit(None)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.completed / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        rate = self.rate()
        if not self.total or rate <= 0:
            return None
        return max(self.total - self.completed, 0) / rate

    def line(self, percent: float | None) -> str:
        elapsed = time.monotonic() - self.started
        done = f"{self.completed:,.0f}" + (f"/{self.total:,.0f}" if self.total else "")
        head = f"{int(percent)}% " if percent is not None else ""  # floor: 99.97 % is not "100%"
        tail = f", ETA {_format_duration(self.eta())}" if self.total else ""
        info = f" ({self.info})" if self.info else ""
        return (f"[weam] {self.description}: {head}{done} {self.unit}, {self.rate():,.1f} {self.unit}/s, "
                f"elapsed {_format_duration(elapsed)}{tail}{info}")

    def _emit(self, percent: float | None) -> None:
        print(self.line(percent), file=self.stream, flush=True)

    def close(self) -> None:
        """Finish the display; the plain mode prints a last line unless 100 % was already printed."""
        if self._closed:
            return
        self._closed = True
        if self._rich is not None:
            self._rich.stop()
        elif self.mode == "plain":
            percent = 100.0 * self.completed / self.total if self.total else None
            if percent is None or self._next_percent <= 100.0 + 1e-9:  # not yet printed at 100 %
                self._emit(percent)


def track(items: Iterable[T], description: str, total: float | None = None, unit: str = "it",
          enabled: bool = True, **kwargs) -> Iterator[T]:
    """Iterate ``items`` with progress (total: ``len(items)`` when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(description, total=total, unit=unit, enabled=enabled, **kwargs) as bar:
        for item in items:
            yield item
            bar.advance(1)
