"""A real ``mlflow server`` on loopback: the study's runs logged over HTTP come back through the
REST API (what the MLflow UI reads) with the tags and metrics the report and the compare view use."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest

from tests.weam.test_report import HELD_OUT, STUDY, log_synthetic_study
from weam.core.mlflow_local import MLFLOW, browse, chromium, log_example_study, mlflow_server, page_text
from weam.study.report import compare_url, write_report
from weam.study.report_render import report_links
from weam.core.tracking import chart_view, chart_view_url, primary_metric_name

pytestmark = [pytest.mark.server]


def rest(url: str, endpoint: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/{endpoint}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.skipif(not Path(MLFLOW).exists(), reason="the mlflow CLI is not installed")
def test_runs_logged_over_http_come_back_with_report_tags(tmp_path):
    with mlflow_server(tmp_path / "mlflow.db", tmp_path / "artifacts") as url:
        ids = log_synthetic_study(url)
        experiment = rest(url, f"experiments/get-by-name?experiment_name={STUDY}")["experiment"]
        found = rest(url, "runs/search", {
            "experiment_ids": [experiment["experiment_id"]],
            "filter": "tags.`weam.stage` = 'eval' and tags.`weam.task` = 'tatoeba'",
            "max_results": 100,
        })["runs"]
        assert sorted(run["info"]["run_id"] for run in found) == sorted(ids["eval"])
        for run in found:
            tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
            metrics = {metric["key"] for metric in run["data"]["metrics"]}
            assert tags["weam.study"] == STUDY and tags["weam.condition"] in {"diverse", "single"}
            assert tags["weam.seed"] in {"0", "1", "2"} and tags["mlflow.parentRunId"] in ids["pretrain"]
            assert {f"tatoeba/accuracy/{code}" for code in HELD_OUT} | {
                "tatoeba/accuracy/avg", "tatoeba/accuracy/low_resource"} <= metrics
        parents = rest(url, "runs/search", {"experiment_ids": [experiment["experiment_id"]],
                                            "filter": "tags.`weam.stage` = 'condition'"})["runs"]
        roles = {}
        for run in parents:
            tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
            roles[tags["weam.condition"]] = (tags["weam.role"], tags["weam.n_families"])
        assert roles == {"diverse": ("treatment", "3"), "single": ("control", "1")}

        # The report reads the same server and uploads its artifacts through it.
        report = write_report(url, STUDY, tmp_path / "report")
        assert "| total effect, targets random (primary) |" in report.read_text(encoding="utf-8")
        report_runs = rest(url, "runs/search", {"experiment_ids": [experiment["experiment_id"]],
                                                "filter": "tags.`weam.stage` = 'report'"})["runs"]
        assert len(report_runs) == 1
        listing = rest(url, f"artifacts/list?run_id={report_runs[0]['info']['run_id']}&path=report")
        assert "report/report.md" in {entry["path"] for entry in listing["files"]}
    assert any((tmp_path / "artifacts").rglob("report.md"))


@pytest.mark.tool
@pytest.mark.skipif(not Path(MLFLOW).exists(), reason="the mlflow CLI is not installed")
@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_runs_table_and_compare_views_show_conditions_and_the_primary_metric(tmp_path):
    """Headless Chromium on a real server: the runs table lists the readable run names, none
    RUNNING; the report's link opens the chart view grouped by condition on the primary metric;
    the compare page names the runs and the metric. Screenshots land in tmp_path (see
    benchmarks/mlflow_compare_screenshot.py to keep them)."""
    with mlflow_server(tmp_path / "mlflow.db", tmp_path / "artifacts") as url:
        ids = log_example_study(url, "demo")
        report = write_report(url, "demo", tmp_path / "report").read_text(encoding="utf-8")
        experiment = rest(url, "experiments/get-by-name?experiment_name=demo")["experiment"]["experiment_id"]
        statuses = {run["info"]["status"] for run in rest(url, "runs/search", {"experiment_ids": [experiment],
                                                                                "max_results": 100})["runs"]}
        assert statuses == {"FINISHED"}  # parents included: nothing left RUNNING

        # The runs table nests stage runs under their condition (collapsed); grouped by condition
        # it lists every run, with the condition and the primary metric as columns.
        table = browse(f"{url}/#/experiments/{experiment}/runs", tmp_path / "runs-nested.png", until="condition/single")
        assert "condition/diverse" in table and "condition/single" in table
        from mlflow.tracking import MlflowClient

        grouped = chart_view_url(url, experiment, chart_view(MlflowClient(url), experiment, "tatoeba/accuracy/avg"),
                                 mode="TABLE")
        table = page_text(browse(grouped, tmp_path / "runs.png", size="1600,1300", until="eval/tatoeba/diverse/seed1"))
        for name in ("Group: diverse", "Group: single", "pretrain/weam/diverse/seed0", "pretrain/weam/single/seed2",
                     "eval/tatoeba/diverse/seed1", "tatoeba/accuracy/avg"):
            assert name in table, name

        link, _, pretraining = report_links(report)
        assert link.startswith(url) and "compareRunsMode=CHART" in link
        drawn = r"\(2\) Add chart primary/tatoeba_accuracy_heldout [\d. ]+ diverse single"
        chart = browse(link, tmp_path / "chart.png", size="1600,1100", until=drawn)
        text = page_text(chart)
        # The first section: the primary endpoint (held-out targets only) per condition, with its chart.
        section = f"{primary_metric_name('tatoeba', 'accuracy')} by weam.condition"
        assert section in text
        assert "Group: diverse" in text and "Group: single" in text
        first = text[text.index(section) + len(section):text.index("tatoeba/accuracy (")]
        # its first chart is the primary metric's bars (a chart with no data is hidden, so a title
        # followed by the two groups means the bars are drawn)
        assert re.search(drawn, first), first
        assert text.index(section) < text.index("tatoeba/score")

        # The report's third link: the pre-training runs grouped by condition, each with the corpora
        # it read (Dataset) and the model it wrote (Models) in the row.
        table = page_text(browse(pretraining, tmp_path / "pretrain.png", size="2000,1000",
                                 until=r"pretrain-weam-single-seed2"))
        assert "Dataset" in table and "Models" in table
        for seed in (0, 1, 2):
            assert f"pretrain-weam-diverse-seed{seed}" in table and f"pretrain-weam-single-seed{seed}" in table
        assert re.search(r"en-fi \([0-9a-f]{24}\) train", table) and re.search(r"en-de \([0-9a-f]{24}\) train", table)
        assert "eval/tatoeba" not in table

        page = browse(compare_url(url, experiment, ids["eval"]), tmp_path / "compare.png", size="1600,1600",
                      until="eval/tatoeba/single/seed1")
        for name in ("eval/tatoeba/diverse/seed0", "eval/tatoeba/single/seed1", "tatoeba/accuracy/avg"):
            assert name in page, name
    for png in ("runs-nested.png", "runs.png", "chart.png", "pretrain.png", "compare.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
