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


NEEDS_OF_FIXTURES = {"ray_cluster": "server", "mlflow_server": "server", "fast_align_config": "tool",
                     "tiny_study": "e2e", "tiny_study_offline": "e2e"}
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


@pytest.fixture(scope="session", autouse=True)
def worker_ports():
    """weam's own ``free_port()`` (an MLflow server's port, a closed port for a server that is
    down, a rendezvous port) takes this xdist worker's range (tests/ports.py), as the tests do."""
    import weam.core.mlflow_local
    import weam.core.ports
    import weam.training.config
    from tests.ports import worker_port

    with pytest.MonkeyPatch.context() as patch:
        for module in (weam.core.ports, weam.core.mlflow_local, weam.training.config):
            patch.setattr(module, "free_port", worker_port)
        yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A real (randomly initialised) BertForMaskedLM and a WordPiece tokenizer trained here."""
    from weam.modeling import build_masked_lm, save_model_and_tokenizer, train_wordpiece_tokenizer

    tokenizer = train_wordpiece_tokenizer(TINY_TEXTS * 5, vocab_size=300)
    model = build_masked_lm("tiny", vocab_size=len(tokenizer), max_position_embeddings=128)
    return save_model_and_tokenizer(model, tokenizer, tmp_path_factory.mktemp("tiny-model"))


TINY_STUDY_FIXTURES = {"tiny_study", "tiny_study_offline"}


def pytest_collection_finish(session):
    """When a selected test needs the tiny study, start building it now, in the background, so
    that it is ready by the time such a test runs (one build for both xdist workers)."""
    from tests.tiny_study import shared_folder, start_build

    if session.config.option.collectonly:
        return
    if any(TINY_STUDY_FIXTURES & set(getattr(item, "fixturenames", ())) for item in session.items):
        session.config._tiny_study_build = start_build(shared_folder(session.config))


def pytest_sessionfinish(session, exitstatus):
    """The build this process started is waited for (the other worker may still need it) unless
    the session was interrupted; then it is stopped."""
    import signal
    import subprocess

    build = getattr(session.config, "_tiny_study_build", None)
    if build is None or build.poll() is not None:
        return
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        try:
            build.wait(timeout=1500)
            return
        except subprocess.TimeoutExpired:
            pass
    # SIGTERM first: weam ends its runs and torch releases its extension-build lock (a SIGKILL in
    # the middle of loading DeepSpeed's op leaves TORCH_EXTENSIONS_DIR locked for every later run).
    os.killpg(build.pid, signal.SIGTERM)
    try:
        build.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(build.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def tiny_study(request):
    """The tiny study (tests/tiny_study.py: 2 conditions x 1 language set x seed 0, held-out sw,
    Tatoeba), finished by `weam study run` once per session for every worker, with its MLflow runs
    in its own store (``work/mlflow.db``: it ran with the tracking server down, and its buffer was
    then synced there). A ``TinyStudy``: ``.config`` (study.yaml), ``.work``, ``.folder``,
    ``.stdout``/``.stderr`` of the run. Read-only: a test that changes a setting, re-runs or
    writes takes ``tiny_study.copy(tmp_path)`` and runs only what its change makes stale."""
    from tests.tiny_study import finished, shared_folder

    return finished(shared_folder(request.config))[0]


@pytest.fixture(scope="session")
def tiny_study_offline(request):
    """The same build as ``tiny_study``, as `weam study run` left it with the tracking server down
    (``.down_uri``): every run still in ``work/tracking-buffer``, nothing synced. Read-only."""
    from tests.tiny_study import finished, shared_folder

    return finished(shared_folder(request.config))[1]
