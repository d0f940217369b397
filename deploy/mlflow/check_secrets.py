"""The MLflow image's entrypoint: refuse to start with a missing, placeholder or weak secret, then
exec the server. Compose (deploy/mlflow/compose.yaml) and Kubernetes (k8s/mlflow/mlflow.yaml) run
the same image, so an unedited ``.env`` or a Secret filled from an example never deploys known
admin, database or session secrets.

    python check_secrets.py mlflow server ARGS...   # checks the environment, then runs the command

Checked: MLFLOW_AUTH_ADMIN_PASSWORD, MLFLOW_FLASK_SERVER_SECRET_KEY and the password inside
MLFLOW_BACKEND_STORE_URI (PostgreSQL's), each given directly or as ``NAME_FILE`` (a mounted
Secret file). Standard library only.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

MIN_LENGTH = 16
# Values shipped in examples or commonly left in place; compared case-insensitively.
PLACEHOLDERS = {"change-me", "change-me-too", "change-me-three", "changeme", "password", "admin", "secret",
                "mlflow", "postgres", "example", "raycluster_secret"}
SECRETS = ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY")


def weakness(value: str) -> str | None:
    """Why ``value`` may not be used as a secret, or None."""
    if not value:
        return "is empty"
    lowered = value.lower()
    if lowered in PLACEHOLDERS or lowered.startswith("change-me") or "example" in lowered:
        return "is a placeholder from an example file"
    if len(value) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    if len(set(value)) < 6:
        return "has fewer than 6 distinct characters"
    return None


def problems(environ: dict[str, str]) -> list[str]:
    found = []
    for name in SECRETS:
        if name not in environ:
            found.append(f"{name} is not set")
        elif (why := weakness(environ[name])) is not None:
            found.append(f"{name} {why}")
    uri = environ.get("MLFLOW_BACKEND_STORE_URI", "")
    if uri.startswith("postgresql"):
        password = urlsplit(uri).password or ""
        if (why := weakness(password)) is not None:
            found.append(f"the PostgreSQL password in MLFLOW_BACKEND_STORE_URI {why}")
    return found


FILE_VARIABLES = (*SECRETS, "MLFLOW_BACKEND_STORE_URI")


def load_secret_files(environ: dict[str, str]) -> list[str]:
    """``NAME_FILE=/path`` sets NAME from that file (Kubernetes mounts Secrets as files, so no
    secret sits in the pod's environment spec); returns what went wrong."""
    found = []
    for name in FILE_VARIABLES:
        path = environ.pop(f"{name}_FILE", None)
        if path is None:
            continue
        if name in environ:
            found.append(f"both {name} and {name}_FILE are set; set one")
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                environ[name] = handle.read().rstrip("\n")
        except OSError as exc:
            found.append(f"{name}_FILE: cannot read {path}: {exc.strerror}")
    return found


def main(argv: list[str]) -> int:
    environ = dict(os.environ)
    found = load_secret_files(environ)
    found += problems(environ)
    if found:
        print("refusing to start the MLflow server:\n  " + "\n  ".join(found)
              + "\nMake real values, e.g. `openssl rand -hex 24`, in deploy/mlflow/.env (compose) or the "
              "Secrets of deploy/README.md section 0 (Kubernetes).", file=sys.stderr)
        return 78  # EX_CONFIG
    if len(argv) < 2:
        print("usage: check_secrets.py COMMAND [ARGS...]", file=sys.stderr)
        return 64
    os.execvpe(argv[1], argv[1:], environ)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
