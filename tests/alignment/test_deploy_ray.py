"""deploy/ray: the cluster config passes Ray's own schema, and the `ray submit` entry script
aligns a corpus on an already running Ray cluster (here: the test session's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "ray"
pytestmark = pytest.mark.usefixtures("ray_cluster")


def test_cluster_yaml_validates_against_ray_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((DEPLOY / "cluster.yaml").read_text())
    validate_config(config)
    prepared = prepare_config(config)
    validate_config(prepared)
    assert prepared["provider"]["type"] == "local"
    assert prepared["max_workers"] == len(config["provider"]["worker_ips"])


def test_entry_script_joins_the_cluster_unless_told_otherwise():
    sys.path.insert(0, str(DEPLOY))
    try:
        from align_job import weam_argv
    finally:
        sys.path.remove(str(DEPLOY))
    assert weam_argv(["--src", "a"]) == ["align", "run", "--src", "a", "--ray-address", "auto"]
    assert weam_argv(["--ray-address=ray://h:10001"]) == ["align", "run", "--ray-address=ray://h:10001"]


def test_entry_script_aligns_on_a_running_cluster(corpus, tmp_path):
    import ray

    address = ray.get_runtime_context().gcs_address
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(DEPLOY / "align_job.py"), "--src", str(corpus[0]), "--tgt", str(corpus[1]),
         "--out", str(out), "--engine", "eflomal", "--shards", "2", "--ray-address", address,
         "--set", "eflomal.n_samplers=1"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "shard 2/2 done" in done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["shards"] == 2
    assert len((out / "alignment.txt").read_text().splitlines()) == len(corpus[0].read_text().splitlines())
