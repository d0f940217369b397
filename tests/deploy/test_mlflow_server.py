"""The MLflow server of k8s/mlflow/mlflow.yaml, started locally with the Deployment's own args,
environment and basic_auth.ini: anonymous calls are refused, credentials log a run with an
artifact, in-cluster Host headers are accepted, and a job user (deploy/mlflow/job_user.py) writes
only its study.
Stand-ins: sqlite for PostgreSQL, a temp folder for the volume, 127.0.0.1 and a free port."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.manifests import ROOT, load_documents
from tests.ports import worker_port

# Both tests share one server (module fixture), so they stay on one xdist worker.
pytestmark = [pytest.mark.server, pytest.mark.xdist_group("mlflow-manifest-server")]

pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs mlflow[auth] (pip install Flask-WTF==1.3.0)")

ADMIN_PASSWORD = "rehearsal-admin-password"


def request(url: str, host: str | None = None, password: str | None = None) -> int:
    req = urllib.request.Request(url)
    if host:
        req.add_header("Host", host)
    if password:
        token = base64.b64encode(f"admin:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=90) as response:  # first store access migrates it: slow when loaded
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return 0  # not listening yet


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """One server for the module: its start is most of each test's time, and the tests write
    different things (a run in the default experiment; users and the experiment study-a)."""
    tmp_path = tmp_path_factory.mktemp("mlflow-server")
    docs = load_documents(ROOT / "k8s" / "mlflow" / "mlflow.yaml")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    ini = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["basic_auth.ini"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    volume = tmp_path / "mlflow"
    volume.mkdir()
    (tmp_path / "basic_auth.ini").write_text(ini.replace("/mlflow/", f"{volume}/"))
    port = worker_port()
    args = [a.replace("=/mlflow/", f"={volume}/") for a in container["args"]]
    args = [f"--port={port}" if a.startswith("--port=") else "--host=127.0.0.1" if a.startswith("--host=") else a
            for a in args if not a.startswith("--workers=")]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    # The Secrets the pod mounts as files (*_FILE), as files here; the image's entrypoint reads them.
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    values = {"MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path / 'store.db'}",
              "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD, "MLFLOW_FLASK_SERVER_SECRET_KEY": "rehearsal-flask-secret-key"}
    for name in [n for n in env if n.endswith("_FILE")]:
        (secrets_dir / name).write_text(values[name.removesuffix("_FILE")] + "\n")
        env[name] = str(secrets_dir / name)
    env.update(MLFLOW_AUTH_CONFIG_PATH=str(tmp_path / "basic_auth.ini"))
    # No Huey job consumers (MLflow 3's job execution: three extra processes a server, never used
    # here, and left behind when the server is terminated), as weam.core.mlflow_local starts it.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    pythonpath = os.pathsep.join(p for p in sys.path if p)
    entrypoint = [sys.executable, str(ROOT / "deploy" / "mlflow" / "check_secrets.py")]  # the image's ENTRYPOINT
    proc = subprocess.Popen([*entrypoint, str(mlflow_bin), "server", *args],
                            env={**os.environ, **env, "PYTHONPATH": pythonpath}, stdout=(tmp_path / "server.log").open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a loaded CI machine starts MLflow's app slowly
        while request(f"{url}/health") != 200:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url, volume
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.timeout(600)  # the server's start counts: minutes on a loaded machine
def test_mlflow_manifest_server_enforces_auth_and_stores_runs(mlflow_server, tmp_path, monkeypatch):
    url, volume = mlflow_server
    search = f"{url}/api/2.0/mlflow/experiments/search?max_results=5"
    assert request(search) == 401
    assert request(search, password="wrong") == 401
    assert request(search, password=ADMIN_PASSWORD) == 200
    assert request(search, host="mlflow.weam.svc:5000", password=ADMIN_PASSWORD) == 200
    assert request(search, host="attacker.example", password=ADMIN_PASSWORD) == 403

    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    mlflow.set_tracking_uri(url)
    artifact = tmp_path / "note.txt"
    artifact.write_text("from a pod")
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 1.5)
        mlflow.log_artifact(str(artifact))
    assert mlflow.get_run(run.info.run_id).data.metrics == {"loss": 1.5}
    assert list(volume.rglob("note.txt")), "artifact not proxied onto the server's volume"
    assert (volume / "basic_auth.db").is_file()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_job_user_logs_runs_but_cannot_administer(mlflow_server, monkeypatch):
    """deploy/mlflow/job_user.py: the job's own user writes its study's runs; it is no admin."""
    url, _ = mlflow_server
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    done = subprocess.run([sys.executable, str(ROOT / "deploy" / "mlflow" / "job_user.py"), "weam-pretrain",
                           "--uri", url, "--experiment", "study-a"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    assert done.returncode == 0, done.stderr[-2000:]
    creds = dict(line.split("=", 1) for line in done.stdout.split())
    assert creds["MLFLOW_TRACKING_USERNAME"] == "weam-pretrain" and len(creds["MLFLOW_TRACKING_PASSWORD"]) == 48

    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "weam-pretrain")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", creds["MLFLOW_TRACKING_PASSWORD"])
    client = mlflow.MlflowClient(url)
    experiment = client.get_experiment_by_name("study-a")
    run = client.create_run(experiment.experiment_id)
    client.log_metric(run.info.run_id, "loss", 1.0)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"loss": 1.0}
    with pytest.raises(MlflowException):
        get_app_client("basic-auth", tracking_uri=url).create_user("intruder", "a-long-enough-password")
    # the admin made the experiment; another job's user may read it but not write to it
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    get_app_client("basic-auth", tracking_uri=url).create_user("weam-eval", "another-long-password-1")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "weam-eval")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "another-long-password-1")
    with pytest.raises(MlflowException):
        mlflow.MlflowClient(url).create_run(experiment.experiment_id)
