"""The MLflow image's entrypoint: refuse to start with a missing, placeholder or weak secret, then
exec the server. Compose (deploy/mlflow/compose.yaml) and Kubernetes (k8s/mlflow/mlflow.yaml) run
the same image, so an unedited ``.env`` or a Secret filled from an example never deploys known
admin, database or session secrets.

    python check_secrets.py mlflow server ARGS...   # checks the environment, then runs the command

Checked: MLFLOW_AUTH_ADMIN_PASSWORD, MLFLOW_FLASK_SERVER_SECRET_KEY and the password inside
MLFLOW_BACKEND_STORE_URI (PostgreSQL's). Standard library only.
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


def main(argv: list[str]) -> int:
    found = problems(dict(os.environ))
    if found:
        print("refusing to start the MLflow server:\n  " + "\n  ".join(found)
              + "\nMake real values, e.g. `openssl rand -hex 24`, in deploy/mlflow/.env (compose) or the "
              "Secrets of deploy/README.md section 0 (Kubernetes).", file=sys.stderr)
        return 78  # EX_CONFIG
    if len(argv) < 2:
        print("usage: check_secrets.py COMMAND [ARGS...]", file=sys.stderr)
        return 64
    os.execvp(argv[1], argv[1:])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
