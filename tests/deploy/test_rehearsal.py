"""A local rehearsal of k8s/pretrain.yaml's multi-node launch: the Job container's exact command,
args and environment, run as 2 "nodes" of 1 process each on CPU (gloo), on tiny data with a
``preset:tiny`` model. Only what a laptop cannot provide is replaced: GPUS=1 (no GPUs),
MASTER_ADDR=127.0.0.1 (no pod DNS), a free port instead of 29500, the config directory (the
ConfigMap's config with tiny-run overrides), the MLflow Secret (a local sqlite store) and the
accelerator (DS_ACCELERATOR=cpu from tests/conftest.py, so DeepSpeed runs on gloo).

Then the failure the Job is built for: node 1 dies after a checkpoint, node 0 goes down with it,
both are started again (as the Job replaces the pods) and training resumes from the checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import ROOT, expand_vars, literal_env, load_documents
from weam.core.config import deep_merge
from weam.core.ports import free_port

NODES = 2
MAX_STEPS = 12  # steps take ~0.1 s on CPU: room for the kill after the first checkpoint (every 2)
SENTENCES = [
    ("the cat sat on the mat .", "die Katze sitzt auf der Matte ."),
    ("save the file before closing the window .", "speichern Sie die Datei , bevor Sie das Fenster schließen ."),
    ("the house is small .", "das Haus ist klein ."),
    ("the book is on the table .", "das Buch ist auf dem Tisch ."),
]


def job_and_config() -> tuple[dict, str]:
    docs = load_documents(ROOT / "k8s" / "pretrain.yaml")
    job = next(d for d in docs if d["kind"] == "Job")
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["pretrain.yaml"]
    return job, config


def write_tiny_study(tmp: Path, tokenizer_dir: Path, manifest_config: str) -> Path:
    """Tiny data in the real formats + the manifest's config with tiny-run overrides."""
    data = tmp / "data" / "en-de"
    data.mkdir(parents=True)
    rows = SENTENCES * 16
    (data / "train.en").write_text("".join(f"{en}\n" for en, _ in rows), encoding="utf-8")
    (data / "train.de").write_text("".join(f"{de}\n" for _, de in rows), encoding="utf-8")
    links = [" ".join(f"{i}-{i}" for i in range(min(len(en.split()), len(de.split())))) for en, de in rows]
    (data / "alignment.txt").write_text("\n".join(links) + "\n", encoding="utf-8")
    overrides = {
        "model": "preset:tiny", "tokenizer": str(tokenizer_dir), "out_dir": str(tmp / "out"),
        "parallel": {"precision": "fp32", "zero_stage": 1, "micro_batch_size": 2},
        "data": {"batch_size": 4, "max_seq_len": 32, "token_budget": None,
                 "pairs": [{"src": "en", "tgt": "de", "src_file": str(data / "train.en"),
                            "tgt_file": str(data / "train.de"), "alignment": str(data / "alignment.txt")}]},
        "optim": {"max_steps": MAX_STEPS}, "checkpoint": {"every": 2}, "logging": {"log_every": 1},
    }
    config = deep_merge(yaml.safe_load(manifest_config), overrides)
    folder = tmp / "config"
    folder.mkdir()
    (folder / "pretrain.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


def node_launch(job: dict, index: int, port: int, config_dir: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
    """argv and environment of pod `index`, as the manifest defines them, with the local stand-ins."""
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = literal_env(container)
    env.update(NNODES=str(NODES), GPUS="1", MASTER_ADDR="127.0.0.1", JOB_COMPLETION_INDEX=str(index))
    argv = [expand_vars(token, env) for token in [*container["command"], *container["args"]]]
    argv = [token.replace("/config/", f"{config_dir}/").replace("--master_port=29500", f"--master_port={port}")
            for token in argv]
    argv[0] = str(Path(sys.executable).with_name(argv[0]))  # torchrun from this environment
    secret = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}", "MLFLOW_TRACKING_USERNAME": "rehearsal",
              "MLFLOW_TRACKING_PASSWORD": "unused"}
    return argv, {**os.environ, **env, **secret, "HF_HOME": str(tmp / "hf"), "OMP_NUM_THREADS": "1"}


def start_nodes(job: dict, config_dir: Path, tmp: Path, tag: str) -> list[subprocess.Popen]:
    port = free_port()
    procs = []
    for index in range(NODES):
        argv, env = node_launch(job, index, port, config_dir, tmp)
        log = open(tmp / f"{tag}-node{index}.log", "w")
        procs.append(subprocess.Popen(argv, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
    return procs


def kill_node(proc: subprocess.Popen) -> None:
    """SIGKILL torchrun and its workers, as a pod's end does (torchrun starts each worker in a
    session of its own, so killing torchrun's process group is not enough)."""
    import psutil

    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    for member in tree:
        try:
            member.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    proc.wait()
    psutil.wait_procs(tree, timeout=30)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        kill_node(proc)


def wait_all(procs: list[subprocess.Popen], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    try:
        return [proc.wait(timeout=max(1.0, deadline - time.monotonic())) for proc in procs]
    finally:
        stop(procs)


def logs(tmp: Path, tag: str) -> str:
    return "\n".join((tmp / f"{tag}-node{i}.log").read_text()[-3000:] for i in range(NODES))


def trainer_ready() -> str | None:
    """Why the rehearsal cannot run yet, or None."""
    import importlib

    try:
        importlib.import_module("weam.training.cli")
        if not hasattr(importlib.import_module("weam.training.config"), "DistributedEnv"):
            return "weam.training.config has no DistributedEnv (the rendezvous from RANK/WORLD_SIZE/...) yet"
    except ImportError as exc:
        return f"the trainer (training/) is not importable yet: {exc}"
    return None


@pytest.mark.e2e
@pytest.mark.multiprocess
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_pretrain_manifest_rehearsal_two_nodes_resumes(tiny_model_dir, tmp_path):
    reason = trainer_ready()
    if reason:
        pytest.skip(reason)
    job, manifest_config = job_and_config()
    config_dir = write_tiny_study(tmp_path, tiny_model_dir, manifest_config)
    checkpoints = tmp_path / "out" / "checkpoints"

    # First attempt: wait for a complete checkpoint, then node 1 dies and node 0 goes down with it.
    procs = start_nodes(job, config_dir, tmp_path, "first")
    deadline = time.monotonic() + 240
    while not (checkpoints / "latest").is_file():
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            stop(procs)
            pytest.fail("no checkpoint before the nodes exited or the deadline:\n" + logs(tmp_path, "first"))
        time.sleep(0.02)
    kill_node(procs[1])
    stop(procs)
    resumed_from = int((checkpoints / "latest").read_text().strip().removeprefix("step"))
    log_path = tmp_path / "out" / "train_log.jsonl"
    # Rows the first attempt logged after its last checkpoint (a step that finished as the node died) are
    # dropped on resume and logged again; the rows up to the checkpoint must survive untouched.
    checkpointed_rows = [line for line in log_path.read_text().splitlines()
                         if json.loads(line)["step"] <= resumed_from]
    assert not (tmp_path / "out" / "manifest.json").exists(), "the run finished before it could be interrupted"

    # The Job replaces the pods: same command, same volume; training resumes from the checkpoint.
    codes = wait_all(start_nodes(job, config_dir, tmp_path, "second"), timeout=300)
    assert codes == [0, 0], logs(tmp_path, "second")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["world_size"] == NODES
    assert manifest["counts"]["steps"] == MAX_STEPS
    assert (tmp_path / "out" / "model" / "config.json").is_file()
    lines = log_path.read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines]
    # One row per step over both attempts; the second attempt continued from the checkpoint rather than
    # step 1 (a restart would have rewritten the first attempt's rows, whose "time" stamps differ).
    assert steps == list(range(1, MAX_STEPS + 1)), (resumed_from, steps)
    assert resumed_from >= 1 and lines[:resumed_from] == checkpointed_rows, (resumed_from, steps)
