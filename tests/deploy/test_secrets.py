"""Secrets must be changed before a deployment starts: the MLflow image's entrypoint
(deploy/mlflow/check_secrets.py, used by compose and Kubernetes alike) refuses empty, placeholder
and weak values, and the example env file cannot be deployed as it is."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
import yaml

from tests.deploy.manifests import ROOT

CHECK = ROOT / "deploy" / "mlflow" / "check_secrets.py"
COMPOSE = yaml.safe_load((ROOT / "deploy" / "mlflow" / "compose.yaml").read_text())


def compose_env(values: dict[str, str]) -> dict[str, str]:
    """What compose passes the mlflow service for these .env values (its ${VAR} references filled)."""
    env = {}
    for key, template in COMPOSE["services"]["mlflow"]["environment"].items():
        text = str(template)
        for name, value in values.items():
            text = text.replace(f"${{{name}:?set in .env}}", value).replace(f"${{{name}}}", value)
        env[key] = text
    return env


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "POSTGRES_"))}
    return subprocess.run([sys.executable, str(CHECK), sys.executable, "-c", "print('server started')"],
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


def example_values() -> dict[str, str]:
    lines = (ROOT / "deploy" / "mlflow" / "env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_example_env_file_does_not_deploy():
    values = example_values()
    # compose refuses an empty ${VAR:?…}; every secret of the example is empty
    for name in ("POSTGRES_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert values[name] == "", name
    done = run_check(compose_env(values))
    assert done.returncode != 0 and "server started" not in done.stdout


@pytest.mark.parametrize("placeholder", ["change-me", "change-me-too", "change-me-three", "password", "short1"])
def test_placeholder_secrets_are_refused_by_name(placeholder):
    strong = {"POSTGRES_USER": "mlflow", "POSTGRES_PASSWORD": secrets.token_hex(24),
              "MLFLOW_AUTH_ADMIN_PASSWORD": secrets.token_hex(24),
              "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32)}
    for name in ("POSTGRES_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        done = run_check(compose_env({**strong, name: placeholder}))
        assert done.returncode == 78 and "server started" not in done.stdout
        shown = "PostgreSQL password" if name == "POSTGRES_PASSWORD" else name
        assert shown in done.stderr


def test_real_secrets_start_the_server():
    values = {"POSTGRES_USER": "mlflow", "POSTGRES_PASSWORD": secrets.token_hex(24),
              "MLFLOW_AUTH_ADMIN_PASSWORD": secrets.token_hex(24), "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32)}
    done = run_check(compose_env(values))
    assert done.returncode == 0 and done.stdout.strip() == "server started", done.stderr


def test_the_image_and_the_manifest_start_through_the_check():
    dockerfile = (ROOT / "deploy" / "mlflow" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "/usr/local/lib/weam/check_secrets.py", "mlflow", "server"]' in dockerfile
    assert "COPY check_secrets.py /usr/local/lib/weam/check_secrets.py" in dockerfile
    from tests.deploy.manifests import load_documents

    deployment = next(d for d in load_documents(ROOT / "k8s" / "mlflow" / "mlflow.yaml") if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "command" not in container  # `command` would bypass the image's checking entrypoint


def test_secrets_mounted_as_files_are_read_and_checked(tmp_path):
    """Kubernetes gives the server its Secrets as files (*_FILE): read, checked, then exported."""
    strong = {"MLFLOW_AUTH_ADMIN_PASSWORD": secrets.token_hex(24), "MLFLOW_FLASK_SERVER_SECRET_KEY": "change-me"}
    env = {}
    for name, value in strong.items():
        (tmp_path / name).write_text(value + "\n")
        env[f"{name}_FILE"] = str(tmp_path / name)
    done = run_check(env)
    assert done.returncode == 78 and "MLFLOW_FLASK_SERVER_SECRET_KEY is a placeholder" in done.stderr
    (tmp_path / "MLFLOW_FLASK_SERVER_SECRET_KEY").write_text(secrets.token_hex(32))
    shown = subprocess.run([sys.executable, str(CHECK), sys.executable, "-c",
                            "import os; print(len(os.environ['MLFLOW_FLASK_SERVER_SECRET_KEY']))"],
                           env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stdout.strip() == "64", shown.stderr
    both = run_check({**env, "MLFLOW_AUTH_ADMIN_PASSWORD": secrets.token_hex(24)})
    assert both.returncode == 78 and "both MLFLOW_AUTH_ADMIN_PASSWORD and MLFLOW_AUTH_ADMIN_PASSWORD_FILE" in both.stderr


def test_no_pod_gets_a_secret_through_its_environment():
    """Secrets reach pods as read-only files only (CKV_K8S_35 without exceptions)."""
    from tests.deploy.manifests import all_documents, containers, pod_templates

    for path, doc in all_documents():
        assert "checkov.io/skip1" not in (doc.get("metadata", {}).get("annotations") or {}), path
        for template in pod_templates(doc):
            for container in containers(template):
                assert not any("secretRef" in e for e in container.get("envFrom", [])), (path, container["name"])
                assert not any("secretKeyRef" in e.get("valueFrom", {}) for e in container.get("env", [])), path
