"""Shared test set-up: quiet, local, CPU-only services, and a tiny real model built on the fly."""

from __future__ import annotations

import os

# Set before any test imports mlflow or ray.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

TINY_TEXTS = [
    "the cat sat on the mat .",
    "die Katze sitzt auf der Matte .",
    "le chat est assis sur le tapis .",
    "kissa istuu matolla .",
    "kedi paspasın üzerinde oturuyor .",
    "paka ameketi juu ya mkeka .",
    "save the file before closing the window .",
    "speichern Sie die Datei , bevor Sie das Fenster schließen .",
    "enregistrez le fichier avant de fermer la fenêtre .",
    "tallenna tiedosto ennen kuin suljet ikkunan .",
]


NEEDS_OF_FIXTURES = {"ray_cluster": "server", "mlflow_server": "server", "fast_align_config": "tool"}
"""A test that requests one of these fixtures needs what it starts or finds (pyproject's markers)."""


RAY_GROUP = "ray"
"""Tests that start or join a local Ray head run on one xdist worker (``--dist loadgroup``): one
session cluster, never two heads competing for a 2-core machine."""


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's, which reads xdist_group to keep a group on one worker
def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & NEEDS_OF_FIXTURES.keys():
            item.add_marker(NEEDS_OF_FIXTURES[fixture])
        if item.nodeid.startswith("tests/alignment/"):
            item.add_marker(pytest.mark.xdist_group(RAY_GROUP))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A real (randomly initialised) BertForMaskedLM and a WordPiece tokenizer trained here."""
    from weam.modeling import build_masked_lm, save_model_and_tokenizer, train_wordpiece_tokenizer

    tokenizer = train_wordpiece_tokenizer(TINY_TEXTS * 5, vocab_size=300)
    model = build_masked_lm("tiny", vocab_size=len(tokenizer), max_position_embeddings=128)
    return save_model_and_tokenizer(model, tokenizer, tmp_path_factory.mktemp("tiny-model"))
