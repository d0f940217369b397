"""Create (or rotate) the MLflow user one kind of job logs in as, so no pod holds the admin password.

    MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD=... \\
        python deploy/mlflow/job_user.py --uri http://127.0.0.1:5000 weam-pretrain --experiment my-study

prints the user and a fresh random password, as MLflow's credentials file (``--format
credentials``: what the job's Secret holds and its pods mount at ``~/.mlflow/credentials``,
deploy/README.md section 0) or as ``MLFLOW_TRACKING_USERNAME=…`` lines (``--format env``). The user is an ordinary one: with the server's
``default_permission = READ`` it reads every experiment, creates its own, and may edit the
experiments named with ``--experiment`` (created here when missing); it cannot manage users or
change other experiments' permissions. Running it again rotates the password.
"""

from __future__ import annotations

import argparse
import secrets
import sys


def ensure_job_user(uri: str, username: str, experiments: list[str]) -> str:
    """Create ``username`` or give it a new password; grant EDIT on ``experiments``. Returns the password."""
    import mlflow
    from mlflow.exceptions import RestException
    from mlflow.server import get_app_client

    if username == "admin":
        raise SystemExit("a job user must not be the admin")
    password = secrets.token_hex(24)
    auth = get_app_client("basic-auth", tracking_uri=uri)
    try:
        auth.get_user(username)
        auth.update_user_password(username, password)
    except RestException:
        auth.create_user(username, password)
    client = mlflow.MlflowClient(uri)
    for name in experiments:
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        auth.grant_user_permission(username, "experiment", experiment_id, "EDIT")
    return password


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("username", help="e.g. weam-pretrain, weam-align, weam-eval")
    parser.add_argument("--uri", required=True, help="the tracking server, e.g. http://127.0.0.1:5000")
    parser.add_argument("--experiment", action="append", default=[], help="a study the job writes to (repeatable)")
    parser.add_argument("--format", choices=("env", "credentials"), default="env",
                        help="env: KEY=VALUE lines; credentials: the ~/.mlflow/credentials file")
    args = parser.parse_args(argv)
    password = ensure_job_user(args.uri, args.username, args.experiment)
    if args.format == "credentials":
        print(f"[mlflow]\nmlflow_tracking_username = {args.username}\nmlflow_tracking_password = {password}")
    else:
        print(f"MLFLOW_TRACKING_USERNAME={args.username}\nMLFLOW_TRACKING_PASSWORD={password}")


if __name__ == "__main__":
    main(sys.argv[1:])
