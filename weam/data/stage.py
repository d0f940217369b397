"""The data stage: the demo's translation pairs built from catalogs shipped in pip packages."""

from __future__ import annotations

from typing import Any

from weam.core.tracking import RunLogger
from weam.stages import Stage, Step


def data_identity(step: Step):
    from weam.data.demo import stage_fingerprint

    return stage_fingerprint(step.config)


def run_data(step: Step, logger: RunLogger | None, tags: dict[str, Any]) -> None:
    from weam.data.demo import build_demo

    build_demo(step.config)


DATA = Stage("data", "weam.data.config.DemoDataConfig", run_data, data_identity,
             "data/", "translation catalogs shipped in pip packages")
