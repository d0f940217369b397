"""One real local Ray for the whole alignment test session, plus the shared Django corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from weam.alignment.config import FastAlignConfig
from weam.alignment.django_corpus import django_pairs, write_corpus
from weam.alignment.engines import find_fast_align
from weam.alignment.ray_runtime import RayLocalConfig, init_ray

TEST_RAY = RayLocalConfig(num_cpus=2, object_store_memory_mb=128, include_dashboard=False)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray, started on first use and shut down at the end of the session."""
    import ray

    init_ray(None, TEST_RAY)  # started again if the loaded machine kept its raylet past Ray's 30 s
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def fast_align_config() -> FastAlignConfig:
    """fast_align from FAST_ALIGN_BIN/ATOOLS_BIN or PATH; the test skips when it is absent."""
    config = FastAlignConfig(binary=os.environ.get("FAST_ALIGN_BIN"), atools=os.environ.get("ATOOLS_BIN"))
    if find_fast_align(config) is None:
        pytest.skip("fast_align/atools not found: set FAST_ALIGN_BIN and ATOOLS_BIN or put them on PATH "
                    "(build from https://github.com/clab/fast_align)")
    return config


@pytest.fixture(scope="session")
def pairs() -> list[tuple[str, str]]:
    return django_pairs("de")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, pairs) -> tuple[Path, Path]:
    """The en-de Django corpus (about 700 real pairs) as a Moses pair."""
    return write_corpus(pairs, tmp_path_factory.mktemp("corpus"))
