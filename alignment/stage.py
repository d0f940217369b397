"""The align stage: one pair's word alignments (weam.alignment.api)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weam.core.tracking import RunLogger
from weam.stages import Stage, Step


def align_identity(step: Step):
    from weam.alignment.api import fingerprint_config
    from weam.alignment.engines import make_engine

    return ({"src": Path(step.extra["src"]), "tgt": Path(step.extra["tgt"])},
            fingerprint_config(step.config, make_engine(step.config).name))


def run_align(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.alignment.api import align_corpus

    align_corpus(step.extra["src"], step.extra["tgt"], step.out_dir, step.config)


ALIGN = Stage("align", "weam.alignment.config.AlignConfig", run_align, align_identity,
              "align/<src>-<tgt>/", "data: one pair's train files")
