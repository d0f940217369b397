"""Screenshot the MLflow UI's compare-runs page for a study's eval runs, in headless Chromium.

Not a test: a check by eye that the tags and metrics the report names show up where it says.
Starts ``mlflow server`` on loopback over a SQLite store (the synthetic study of
tests/weam/test_report.py, or ``--store``/``--study`` of a real one), then points Debian's
chromium at the compare view and at the experiment's runs table.

    python benchmarks/mlflow_compare_screenshot.py --out /tmp/mlflow-compare.png
    python benchmarks/mlflow_compare_screenshot.py --store runs/demo/mlflow.db --study demo

Needs ``chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.weam.test_mlflow_ui import mlflow_server  # noqa: E402
from tests.weam.test_report import STUDY, log_synthetic_study  # noqa: E402
from weam.study.report import compare_url  # noqa: E402

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]
# The MLflow 3 UI opens an experiment on its GenAI overview unless the experiment says it holds
# model-training runs.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def screenshot(url: str, png: Path, budget_ms: int, size: str) -> float:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
             f"--window-size={size}",
             f"--screenshot={png}", url],
            check=True, capture_output=True, timeout=120,
        )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="existing SQLite store (default: a new synthetic study)")
    parser.add_argument("--study", default=STUDY, help="experiment (study) name")
    parser.add_argument("--out", type=Path, default=Path("/tmp/mlflow-compare.png"))
    parser.add_argument("--budget-ms", type=int, default=15000, help="chromium --virtual-time-budget")
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    work = Path(tempfile.mkdtemp(prefix="mlflow-screenshot-"))
    store = args.store.resolve() if args.store else work / "mlflow.db"
    with mlflow_server(store, work / "artifacts", log_file=work / "server.log") as url:
        client = MlflowClient(url)
        if args.store is None:
            log_synthetic_study(url, args.study)
            client.set_experiment_tag(client.get_experiment_by_name(args.study).experiment_id, *EXPERIMENT_KIND)
        experiment = client.get_experiment_by_name(args.study)
        if experiment is None:
            raise SystemExit(f"no experiment named {args.study!r} in {store}")
        runs = client.search_runs([experiment.experiment_id], "tags.`weam.stage` = 'eval'", max_results=50)
        search = quote("tags.`weam.stage` = 'eval'")
        pages = {
            args.out: (compare_url(url, experiment.experiment_id, [run.info.run_id for run in runs]), "1600,2400"),
            args.out.with_name(args.out.stem + "-runs.png"):
                (f"{url}/#/experiments/{experiment.experiment_id}/runs?searchFilter={search}", "1600,1000"),
        }
        print("| page | png | seconds |\n|---|---|---|")
        for png, (page, size) in pages.items():
            seconds = screenshot(page, png, args.budget_ms, size)
            print(f"| {page} | {png} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
