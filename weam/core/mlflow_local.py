"""A throwaway ``mlflow server`` on loopback and a headless Chromium to look at it.

For the tests of the tracking path and the UI, and ``benchmarks/mlflow_compare_screenshot.py``;
not part of any stage. The server runs one worker over a SQLite store with job execution off
(MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no Huey consumer processes), and is always stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from weam.core.ports import free_port
from weam.core.tracking import seed_sqlite_store, sqlite_store_lock, sqlite_uri

MLFLOW = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
STARTUP_SECONDS = 120
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
]


def closed_port_uri() -> str:
    """An http URI on loopback where nothing listens (a tracking server that is down)."""
    return f"http://127.0.0.1:{free_port()}"


@contextlib.contextmanager
def mlflow_server(store: Path, artifacts: Path, log_file: Path | None = None, port: int | None = None) -> Iterator[str]:
    """``mlflow server`` on a free loopback port over a SQLite store; yields its URL, always stops it."""
    port = port or free_port()
    with sqlite_store_lock(sqlite_uri(store)):
        seed_sqlite_store(sqlite_uri(store))  # a new store: the migrated empty schema, not a migration at start-up
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [MLFLOW, "server", "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", sqlite_uri(store), "--artifacts-destination", str(artifacts)]
    log = open(log_file or store.with_suffix(".server.log"), "wb")
    # Own session so the server's worker processes are stopped with it.
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=store.parent,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log.name)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def _wait_healthy(url: str, process: subprocess.Popen, log_name: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}; see {log_name}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.25)
    raise RuntimeError(f"mlflow server not healthy after {STARTUP_SECONDS} s; see {log_name}")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def page_text(dom: str) -> str:
    """The words a person sees on a dumped page: tags dropped, whitespace runs made one space."""
    return " ".join(re.sub(r"<[^>]+>", " ", dom).split())


def browse(url: str, png: Path | None = None, size: str = "1600,1000", budget_ms: int = 20000,
           until: str | None = None, attempts: int = 3) -> str:
    """Render ``url`` in headless Chromium (fresh profile); returns the DOM after the page's scripts
    ran, and writes a screenshot to ``png`` when given (a second render of the same page).

    ``until``: a regular expression the page's text (tags stripped) must show. The UI draws its
    charts after its REST calls answer, and on a loaded machine the virtual-time budget can run out
    first; so a page without it is rendered again with twice the budget, ``attempts`` times in all.
    The last DOM is returned either way: the caller's assertion says what is missing."""
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium not found: apt-get install -y chromium")

    def render(mode: list[str], budget: int) -> str:
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            return subprocess.run(
                [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget}",
                 f"--window-size={size}", *mode, url],
                check=True, capture_output=True, text=True, timeout=180,
            ).stdout

    budget = budget_ms
    for attempt in range(attempts):
        dom = render(["--dump-dom"], budget)
        if until is None or re.search(until, page_text(dom)):
            break
        budget *= 2
    if png:
        render([f"--screenshot={png}"], budget)
    return dom


def log_example_study(uri: str, study: str = "demo", seeds: tuple[int, ...] = (0, 1, 2),
                      held_out: tuple[str, ...] = ("sw", "mr", "te")) -> dict[str, list[str]]:
    """Log a study's run tree the way ``weam study run`` does (condition parents; base, pretrain and
    eval runs with their names, tags and metrics), with made-up scores: what the UI tests look at.
    Returns run ids by stage."""
    from weam.core.languages import get_language
    from weam.core.tracking import (TAG_CONDITION, TAG_EVAL_SEED, TAG_FAMILIES, TAG_N_FAMILIES, TAG_OBJECTIVE, TAG_ROLE,
                                    TAG_SEED, TAG_STAGE, TAG_STUDY, TAG_TASK, ParentRuns, RunLogger,
                                    primary_metric_name, run_name)

    conditions = {"diverse": ("treatment", ["fi", "tr", "id", "ar"], 0.08),
                  "single": ("control", ["de", "fr", "es", "ru"], 0.0)}
    ids: dict[str, list[str]] = {"condition": [], "pretrain": [], "eval": []}
    quiet = {"system_metrics": False}
    with ParentRuns() as parents:
        for name, (role, languages, gain) in conditions.items():
            families = sorted({get_language(code).family for code in languages})
            parent = parents.get(name, lambda: RunLogger(uri, study, run_name("condition", condition=name), tags={
                TAG_STUDY: study, TAG_STAGE: "condition", TAG_CONDITION: name, TAG_ROLE: role,
                TAG_FAMILIES: ",".join(families), TAG_N_FAMILIES: len(families)}, **quiet))
            parent.log_params({"languages": ",".join(languages)})
            ids["condition"].append(parent.run_id)
            for seed in seeds:
                common = {TAG_STUDY: study, TAG_CONDITION: name, TAG_SEED: seed, TAG_ROLE: role}
                with RunLogger(uri, study, run_name("pretrain", name, seed, objective="weam"),
                               parent_run_id=parent.run_id, tags={**common, TAG_STAGE: "pretrain",
                                                                  TAG_OBJECTIVE: "weam"}, **quiet) as pretrain:
                    for step in range(1, 6):
                        pretrain.log_metrics({"train/loss": 6.0 / step + 0.1 * seed, "train/tokens": 50_000 * step},
                                             step=step * 10)
                    # what it read and wrote, in the shapes training.data.corpus_datasets and
                    # RunLogger.log_model give them (the runs table's Dataset and Models columns)
                    pretrain.log_datasets([{"name": f"en-{code}", "digest": f"{sum(map(ord, code)):08x}" * 3,
                                            "source": json.dumps({"uri": f"file:///data/en-{code}"}),
                                            "profile": json.dumps({"num_rows": 1000})} for code in languages])
                    pretrain.log_model(Path("pretrain-out") / name / f"seed{seed}", model_type="encoder",
                                       params={"objective": "weam"})
                ids["pretrain"].append(pretrain.run_id)
                with RunLogger(uri, study, run_name("eval", name, seed, task="tatoeba"), parent_run_id=pretrain.run_id,
                               tags={**common, TAG_STAGE: "eval", TAG_TASK: "tatoeba", TAG_EVAL_SEED: seed},
                               **quiet) as evaluation:
                    scores = {code: 0.30 + gain + 0.02 * i + 0.01 * seed for i, code in enumerate(held_out)}
                    low = [v for code, v in scores.items() if get_language(code).low_resource]
                    for metric in ("accuracy", "score"):
                        evaluation.log_metrics({
                            **{f"tatoeba/{metric}/{code}": v for code, v in scores.items()},
                            f"tatoeba/{metric}/avg": sum(scores.values()) / len(scores),
                            f"tatoeba/{metric}/low_resource": sum(low) / len(low),
                        })
                    # every held-out language here is a target, so the primary endpoint is their mean
                    evaluation.log_metrics({primary_metric_name("tatoeba", "accuracy"): sum(scores.values()) / len(scores)})
                ids["eval"].append(evaluation.run_id)
    return ids
