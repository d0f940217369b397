"""Ray is authenticated on every path we ship: the bare-machine cluster (deploy/ray/cluster.yaml)
and the KubeRay cluster and job (k8s/ray/) run Ray with token authentication, the bare-machine
dashboard listens on localhost only, and a Ray head started with the shipped settings refuses a
client that lacks the token (a live check on this machine)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import ROOT, all_documents, containers, pod_templates, resource_id
from tests.ports import worker_port

CLUSTER = yaml.safe_load((ROOT / "deploy" / "ray" / "cluster.yaml").read_text())
RAY_DOCS = [(p, d) for p, d in all_documents() if d["kind"] in ("RayCluster", "RayJob")]


def docker_env(config: dict) -> dict[str, str]:
    env = {}
    for option in config["docker"]["run_options"]:
        flag, _, value = option.partition(" ")
        if flag == "-e":
            key, _, val = value.partition("=")
            env[key] = val
    return env


def test_bare_machine_cluster_uses_token_auth_and_a_local_dashboard():
    env = docker_env(CLUSTER)
    assert env["RAY_AUTH_MODE"] == "token"
    token_path = env["RAY_AUTH_TOKEN_PATH"]
    assert CLUSTER["file_mounts"][token_path] == "~/.ray/auth_token"  # every node gets the token
    head = " ".join(CLUSTER["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in head
    assert "0.0.0.0" not in " ".join(CLUSTER["worker_start_ray_commands"])


RAY_CONTAINERS = [(f"{p.name}:{resource_id(d)}:{c['name']}", c, t)
                  for p, d in RAY_DOCS for t in pod_templates(d) for c in containers(t)]


@pytest.mark.parametrize(("where", "container", "template"), RAY_CONTAINERS, ids=[w for w, _, _ in RAY_CONTAINERS])
def test_every_kuberay_container_uses_token_auth(where, container, template):
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env.get("RAY_AUTH_MODE") == "token", where
    path = Path(env["RAY_AUTH_TOKEN_PATH"])
    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    (mount,) = [m for m in mounts.values() if path.parent == Path(m["mountPath"])]
    assert mount.get("readOnly") is True
    assert volumes[mount["name"]]["secret"]["secretName"] == "weam-ray-auth"


def test_ray_containers_are_found():
    names = {w.rsplit(":", 1)[1] for w, _, _ in RAY_CONTAINERS}
    assert {"ray-head", "ray-worker", "ray-job-submitter"} <= names


def test_kuberay_dashboard_is_behind_the_network_policy():
    cluster = next(d for _, d in RAY_DOCS if d["kind"] == "RayCluster")
    policies = [d for _, d in all_documents() if d["kind"] == "NetworkPolicy"]
    name = cluster["metadata"]["name"]
    assert any(p["spec"]["podSelector"].get("matchLabels") == {"ray.io/cluster": name} and "Ingress" in
               p["spec"]["policyTypes"] for p in policies)


@pytest.mark.server
@pytest.mark.xdist_group("ray")  # one Ray head at a time (tests/conftest.py)
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_head_with_the_shipped_auth_settings_refuses_clients_without_the_token(tmp_path):
    """`ray start --head` with the cluster's RAY_AUTH_MODE: a client with a wrong token is refused,
    one with the token joins."""
    ray_bin = Path(sys.executable).with_name("ray")
    temp = Path(tempfile.mkdtemp(prefix="weam-ray-", dir="/tmp"))  # Ray's socket paths must stay short
    token = secrets.token_hex(16)
    (tmp_path / "auth_token").write_text(token)
    port = worker_port()
    base = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": docker_env(CLUSTER)["RAY_AUTH_MODE"]}
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
         f"--temp-dir={temp}", "--block"],
        env={**base, "RAY_AUTH_TOKEN_PATH": str(tmp_path / "auth_token")}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    join = f"import ray; ray.init(address='127.0.0.1:{port}', log_to_driver=False); print('joined')"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        # The GCS port opens before the GCS answers: on a loaded machine (CI beside other work) the
        # first join timed out "waiting for GCS to become available"; a client with the token may
        # try three times, and joins for the token, not for a retry (the bad client below cannot).
        for _ in range(3):
            good = subprocess.run([sys.executable, "-c", join], env={**base, "RAY_AUTH_TOKEN": token},
                                  capture_output=True, text=True, timeout=120)
            if "joined" in good.stdout or "InvalidAuthToken" in good.stderr:
                break
        assert "joined" in good.stdout, good.stderr[-2000:]
        # Refused for its token, not for anything else. Ray's driver retries the refused cluster-ID
        # call once a second, RAY_NUM_REDIS_GET_RETRIES times (ray/_private/node.py; default 20: 20 s
        # spent here every run, measured): 3 attempts show the same refusal.
        bad = subprocess.run([sys.executable, "-c", join],
                             env={**base, "RAY_AUTH_TOKEN": "not-the-token", "RAY_NUM_REDIS_GET_RETRIES": "3"},
                             capture_output=True, text=True, timeout=120)
        assert bad.returncode != 0 and "joined" not in bad.stdout
        assert "InvalidAuthToken" in bad.stderr, bad.stderr[-2000:]
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # the head and the Ray processes it started (its session)
        try:
            # Not longer: `ray start --block`, sent SIGTERM with its gcs_server, waited out the 30 s
            # this used to allow every time (measured), and nothing is checked after it.
            head.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
