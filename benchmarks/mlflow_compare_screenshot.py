"""Screenshot the MLflow UI for a study — runs table (nested, and the report's grouped table), the
report's chart view, its pre-training table (Dataset and Models columns), the compare page —
in headless Chromium, and print a table of what each page shows and how long it took.

Not a test: a check by eye (tests/weam/test_mlflow_ui.py asserts the same pages' text). Starts
``mlflow server`` on loopback over a SQLite store: a new one holding an example study logged the
way ``weam study run`` logs (weam.core.mlflow_local.log_example_study), or ``--store``/``--study`` of a
real one (e.g. after ``make demo``).

    python benchmarks/mlflow_compare_screenshot.py --out /tmp/mlflow-ui
    python benchmarks/mlflow_compare_screenshot.py --store runs/demo/mlflow.db --study demo

Needs ``chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from weam.core.mlflow_local import browse, chromium, log_example_study, mlflow_server, page_text  # noqa: E402
from weam.study.report import compare_url, write_report  # noqa: E402
from weam.study.report_render import report_links  # noqa: E402
from weam.core.tracking import TAG_STAGE  # noqa: E402

CHECKS = ("condition/diverse", "condition/single", "eval/tatoeba/diverse/seed0", "tatoeba/accuracy/avg",
          "Group: diverse", "Dataset", "Models", "RUNNING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="existing SQLite store (default: a new example study)")
    parser.add_argument("--study", default="demo", help="experiment (study) name")
    parser.add_argument("--out", type=Path, default=Path("/tmp/mlflow-ui"), help="folder for the PNGs")
    parser.add_argument("--budget-ms", type=int, default=90000, help="chromium --virtual-time-budget")
    args = parser.parse_args()
    if chromium() is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")

    from mlflow.tracking import MlflowClient

    work = Path(tempfile.mkdtemp(prefix="mlflow-screenshot-"))
    store = work / "mlflow.db"
    if args.store:
        shutil.copy2(args.store, store)  # the report adds a view tag: leave the original untouched
    args.out.mkdir(parents=True, exist_ok=True)
    with mlflow_server(store, work / "artifacts", log_file=work / "server.log") as url:
        if args.store is None:
            log_example_study(url, args.study)
        report = write_report(url, args.study, work / "report").read_text(encoding="utf-8")
        chart_link, table_link, pretrain_link = report_links(report)[:3]
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name(args.study)
        evals = client.search_runs([experiment.experiment_id], f"tags.`{TAG_STAGE}` = 'eval'", max_results=50)
        pages = {
            "runs": (f"{url}/#/experiments/{experiment.experiment_id}/runs", "1600,1000"),
            "table": (table_link, "1600,1100"),
            "chart": (chart_link, "1600,1100"),
            "pretrain": (pretrain_link, "2000,1000"),
            "compare": (compare_url(url, experiment.experiment_id, [r.info.run_id for r in evals]), "1600,1600"),
        }
        print(f"| page | png | seconds | {' | '.join(CHECKS)} |\n|---|---|---|{'---|' * len(CHECKS)}")
        for name, (page, size) in pages.items():
            started = time.monotonic()
            png = args.out / f"mlflow-{name}.png"
            text = page_text(browse(page, png, size, args.budget_ms))
            found = " | ".join("yes" if check in text else "no" for check in CHECKS)
            print(f"| {name} | {png} | {time.monotonic() - started:.1f} | {found} |")
        print(f"\nchart view: {chart_link}")


if __name__ == "__main__":
    main()
