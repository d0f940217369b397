"""A real ``mlflow server`` on loopback: the study's runs logged over HTTP come back through the
REST API (what the MLflow UI reads) with the tags and metrics the report and the compare view use."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.weam.test_report import HELD_OUT, STUDY, log_synthetic_study
from weam.study.report import write_report

MLFLOW = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(store: Path, artifacts: Path, log_file: Path | None = None) -> Iterator[str]:
    """``mlflow server`` on a free loopback port over a SQLite store; yields its URL, always stops it."""
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [MLFLOW, "server", "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{store}", "--artifacts-destination", str(artifacts)]
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


def rest(url: str, endpoint: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/{endpoint}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.skipif(not Path(MLFLOW).exists(), reason="the mlflow CLI is not installed")
def test_runs_logged_over_http_come_back_with_report_tags(tmp_path):
    with mlflow_server(tmp_path / "mlflow.db", tmp_path / "artifacts") as url:
        ids = log_synthetic_study(url)
        experiment = rest(url, f"experiments/get-by-name?experiment_name={STUDY}")["experiment"]
        found = rest(url, "runs/search", {
            "experiment_ids": [experiment["experiment_id"]],
            "filter": "tags.`weam.stage` = 'eval' and tags.`weam.task` = 'tatoeba'",
            "max_results": 100,
        })["runs"]
        assert sorted(run["info"]["run_id"] for run in found) == sorted(ids["eval"])
        for run in found:
            tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
            metrics = {metric["key"] for metric in run["data"]["metrics"]}
            assert tags["weam.study"] == STUDY and tags["weam.condition"] in {"diverse", "single"}
            assert tags["weam.seed"] in {"0", "1", "2"} and tags["mlflow.parentRunId"] in ids["pretrain"]
            assert {f"tatoeba/accuracy/{code}" for code in HELD_OUT} | {
                "tatoeba/accuracy/avg", "tatoeba/accuracy/low_resource"} <= metrics
        parents = rest(url, "runs/search", {"experiment_ids": [experiment["experiment_id"]],
                                            "filter": "tags.`weam.stage` = 'condition'"})["runs"]
        roles = {}
        for run in parents:
            tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
            roles[tags["weam.condition"]] = (tags["weam.role"], tags["weam.n_families"])
        assert roles == {"diverse": ("treatment", "3"), "single": ("control", "1")}

        # The report reads the same server and uploads its artifacts through it.
        report = write_report(url, STUDY, tmp_path / "report")
        assert "| diverse | treatment | 3 | 0.5167 ± 0.0167 |" in report.read_text(encoding="utf-8")
        report_runs = rest(url, "runs/search", {"experiment_ids": [experiment["experiment_id"]],
                                                "filter": "tags.`weam.stage` = 'report'"})["runs"]
        assert len(report_runs) == 1
        listing = rest(url, f"artifacts/list?run_id={report_runs[0]['info']['run_id']}&path=report")
        assert "report/report.md" in {entry["path"] for entry in listing["files"]}
    assert any((tmp_path / "artifacts").rglob("report.md"))
