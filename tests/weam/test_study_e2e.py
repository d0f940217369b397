"""The whole spine on a tiny study: data → tokenizer → align → budget → base → pretrain → tatoeba →
eval → report, through the real CLI; the same study killed mid-way and re-run gives the same
numbers; a changed setting re-runs exactly that stage and what is downstream of it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.tiny_study import STUDY, TinyStudy, write_study  # noqa: F401 - STUDY, write_study: for other test files

# The study is the session's tiny study (tests/conftest.py, built once by `weam study run`); the
# tests that re-run or change it share one module copy, in file order, so the module is one xdist
# group (with the group on the copy's tests alone, a run put copies on both workers: not understood
# yet, so kept whole).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("tiny-study")]


def weam(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": ""}
    return subprocess.Popen(
        [sys.executable, "-m", "weam.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=env, **kwargs,
    )


def run_to_end(*args: str) -> str:
    process = weam(*args)
    try:
        output, _ = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()  # a timed-out test leaves no `weam` running behind it
        process.communicate()
        raise
    assert process.returncode == 0, output
    return output


def eval_scores(work: Path) -> dict:
    return {
        str(path.relative_to(work)): json.loads(path.read_text())["per_language"]
        for path in sorted(work.glob("eval/**/seed*/tatoeba/results.json"))
    }


@pytest.fixture(scope="module")
def study_copy(tiny_study, tmp_path_factory) -> TinyStudy:
    """The session's study copied once for this module's tests that re-run it or change its settings."""
    return tiny_study.copy(tmp_path_factory.mktemp("study"))


def test_study_runs_every_stage_and_prints_held_out_scores(tiny_study):
    output, work = tiny_study.output, tiny_study.work
    assert "Zero-shot sentence retrieval" in output and "diverse (1 runs)" in output and "single (1 runs)" in output
    for step in ("data", "tokenizer", "base", "align/en-fi", "pretrain/diverse/s1/seed0", "eval/single/s1/seed0", "report"):
        assert f"] {step}: done" in output, step
    scores = eval_scores(work)
    assert set(scores) == {f"eval/{c}/seed0/tatoeba/results.json" for c in ("base", "diverse/s1", "single/s1")}
    for per_language in scores.values():
        assert 0.0 <= per_language["sw"]["accuracy"] <= 100.0  # percent, as XTREME reports
    # Matched on content tokens (both sides, no special tokens): the study's budget_unit.
    budgets = {c: json.loads((work / f"pretrain/{c}/s1/seed0/manifest.json").read_text())["counts"]["content_tokens"]
               for c in ("diverse", "single")}
    assert abs(budgets["diverse"] - budgets["single"]) <= 0.01 * 12000, budgets
    report = (work / "report" / "report.md").read_text(encoding="utf-8")
    # One set per condition: the design cannot test the condition effect, and the report says so.
    assert "## Primary endpoint" in report and "not tested" in report and "significant" not in report


def test_mlflow_has_both_conditions_with_nested_stage_runs(tiny_study):
    client = MlflowClient(f"sqlite:///{tiny_study.work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], max_results=200)
    by_stage: dict[str, list] = {}
    for run in runs:
        by_stage.setdefault(run.data.tags.get("weam.stage"), []).append(run)
    conditions = {run.data.tags["weam.condition"]: run for run in by_stage["condition"]}
    assert {"diverse", "single"} <= set(conditions)
    assert conditions["diverse"].data.tags["weam.role"] == "treatment"
    assert conditions["diverse"].data.metrics["diversity/n_families"] == 2
    pretrain = [r for r in by_stage["pretrain"] if r.data.tags["weam.condition"] == "diverse"]
    assert pretrain and pretrain[0].data.tags["mlflow.parentRunId"] == conditions["diverse"].info.run_id
    assert pretrain[0].data.metrics["train/tokens"] > 0
    assert pretrain[0].data.tags["weam.language_set"] == "s1" and pretrain[0].data.metrics["train/content_tokens"] > 0
    assert "weam.git_commit" in pretrain[0].data.tags
    evals = [r for r in by_stage["eval"] if r.data.tags["weam.condition"] == "diverse"]
    assert evals and "tatoeba/accuracy/sw" in evals[0].data.metrics


def step_lines(output: str) -> dict[str, str]:
    """``[  12.3 s] key: status`` lines of `weam study run` → {key: status}."""
    found = re.findall(r"^\[\s*[\d.]+ s\] (\S+): (.+)$", output, flags=re.M)
    return {key: status.strip() for key, status in found}


def status_table(study: Path, *overrides: str) -> dict[str, tuple[str, str]]:
    """`weam study status` rows → {step: (state, reason)}. In process: it only reads the manifests,
    and a process start costs more than the command."""
    from typer.testing import CliRunner

    from weam.cli import app

    args = [item for override in overrides for item in ("--set", override)]
    result = CliRunner().invoke(app, ["study", "status", str(study), *args])
    output = result.output
    assert result.exit_code == 0, (output, result.exception)
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[1] in ("done", "stale", "missing", "running"):
            rows[cells[0]] = (cells[1], cells[2])
    assert rows, output
    return rows


def test_rerun_skips_finished_work(tiny_study, study_copy):
    folder = study_copy.folder
    planned = step_lines(tiny_study.stdout)
    assert status_table(folder / "study.yaml") == {key: ("done", "") for key in planned}
    output = run_to_end("study", "run", str(folder / "study.yaml"))
    assert step_lines(output) == {key: "skipped (finished)" for key in planned}
    assert "pretrain/diverse/s1/seed0: skipped (finished)" in output


def test_study_report_writes_the_report_again_as_the_study_step(study_copy):
    """`weam study report` re-writes the report from the stage files through the study's report step,
    so its manifest follows and `status` still calls it done (not "output changed")."""
    folder = study_copy.folder
    study, report = folder / "study.yaml", folder / "work" / "report" / "report.md"
    before = report.stat().st_mtime_ns
    output = run_to_end("study", "report", str(study))
    assert f"report: {report}" in output
    assert report.stat().st_mtime_ns > before and "## Primary endpoint" in report.read_text(encoding="utf-8")
    assert status_table(study)["report"] == ("done", "")


def test_killed_study_resumes_with_the_same_result(tiny_study, tmp_path):
    reference_folder = tiny_study.folder
    study = write_study(tmp_path)
    # Start from the reference's finished data, tokenizer and base model (their manifests make the
    # study skip what has the same inputs and settings; it saves time). The alignments are made
    # again (thot is seeded), and everything is deterministic, so the resumed study must reproduce
    # the reference's scores exactly.
    for stage in ("data", "tokenizer", "base"):
        shutil.copytree(reference_folder / "work" / stage, tmp_path / "work" / stage)
    process = weam("study", "run", str(study), start_new_session=True)
    checkpoint_root = tmp_path / "work" / "pretrain" / "single" / "s1" / "seed0" / "checkpoints"
    deadline = time.time() + 400
    while time.time() < deadline and process.poll() is None:
        if checkpoint_root.is_dir() and any(checkpoint_root.iterdir()):
            break
        time.sleep(0.2)
    assert process.poll() is None, "the study finished before it could be interrupted"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "work" / "pretrain" / "single" / "s1" / "seed0" / "manifest.json").exists()
    output = run_to_end("study", "run", str(study))
    assert "pretrain/diverse/s1/seed0: skipped (finished)" in output
    assert eval_scores(tmp_path / "work") == eval_scores(reference_folder / "work")
    # Byte for byte, in another folder (issue 20): results.json names no path of the study's folder.
    for results in eval_scores(tmp_path / "work"):
        assert (tmp_path / "work" / results).read_bytes() == (reference_folder / "work" / results).read_bytes(), results
    # The report's endpoint rows (the primary estimate to its last digit) and variance components too.
    for name in ("endpoints.csv", "variance_components.json"):
        assert (tmp_path / "work/report" / name).read_bytes() == (reference_folder / "work/report" / name).read_bytes()


def reproduce_the_one_run(study: TinyStudy, out: Path, where: str):
    """The study's single run matching ``where``, reproduced into ``out`` through the CLI, logged
    to a copy of the study's store (the session's study stays as it was)."""
    store = out.parent / "store"
    store.mkdir(parents=True)
    shutil.copy2(study.work / "mlflow.db", store / "mlflow.db")
    shutil.copytree(study.work / "mlartifacts", store / "mlartifacts")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    experiment = MlflowClient(uri).get_experiment_by_name("tiny")
    [run] = MlflowClient(uri).search_runs([experiment.experiment_id], where)
    output = run_to_end("study", "reproduce", run.info.run_id, "--tracking-uri", uri, "--out", str(out))
    assert f"reproduced {run.info.run_id}" in output
    return run


def test_reproduce_reruns_a_pretraining_run_from_what_it_logged(tiny_study, tmp_path):
    folder = tiny_study.folder
    reproduce_the_one_run(tiny_study, tmp_path / "again",
                          "tags.`weam.stage` = 'pretrain' and tags.`weam.condition` = 'diverse'")
    original = json.loads((folder / "work/pretrain/diverse/s1/seed0/manifest.json").read_text())["counts"]
    again = json.loads((tmp_path / "again" / "manifest.json").read_text())["counts"]
    assert (again["steps"], again["tokens"], again["tokens_per_pair"]) == (
        original["steps"], original["tokens"], original["tokens_per_pair"])
    first_log = (folder / "work/pretrain/diverse/s1/seed0/train_log.jsonl").read_text().splitlines()
    again_log = (tmp_path / "again" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["loss"] for line in again_log] == [json.loads(line)["loss"] for line in first_log]
    weights = "model/model.safetensors"  # deterministic on CPU: the same weights, byte for byte
    assert (tmp_path / "again" / weights).read_bytes() == (folder / "work/pretrain/diverse/s1/seed0" / weights).read_bytes()


def test_reproduce_reruns_an_evaluation_from_what_its_stage_logged(tiny_study, tmp_path):
    folder = tiny_study.folder
    run = reproduce_the_one_run(tiny_study, tmp_path / "again",
                                "tags.`weam.stage_config` = 'weam.eval.config.EvalConfig' and tags.`weam.condition` = 'diverse'")
    assert run.info.run_name == "eval/tatoeba/diverse.s1/seed0" and run.data.tags["weam.seed"] == "0"
    original = json.loads((folder / "work/eval/diverse/s1/seed0/tatoeba/results.json").read_text())
    again = json.loads((tmp_path / "again/tatoeba/results.json").read_text())
    assert again["per_language"] == original["per_language"]
    manifest = json.loads((tmp_path / "again/manifest.json").read_text())
    weights = folder / "work/pretrain/diverse/s1/seed0/model/model.safetensors"
    assert manifest["inputs"]["model/model.safetensors"]["path"] == str(weights)


def check_table(output: str) -> dict[str, str]:
    """`weam study reproduce --check` rows → {file: result}."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[2] in ("same", "differs", "only in the original", "only in the re-run"):
            rows[cells[1]] = cells[2]
    return rows


def test_reproduce_check_names_a_file_that_differs_and_fails(tiny_study, tmp_path):
    folder = tiny_study.folder
    work = tmp_path / "work"
    shutil.copytree(folder / "work", work, ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts", "pretrain", "eval"))
    tokenizer = work / "tokenizer" / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text(encoding="utf-8") + " ", encoding="utf-8")
    process = weam("study", "reproduce", "--check", str(work), "--only", "tokenizer")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 1, output
    assert check_table(output)["tokenizer/tokenizer.json"] == "differs", output
    assert not list(tmp_path.glob("work-check-*")), "the scratch folder is removed without --keep"


def test_budget_the_data_cannot_meet_is_refused_naming_condition_and_languages(tiny_study):
    from weam.core.errors import WeamError
    from weam.training.stage import check_budgets
    from weam.study.plan import load_study

    folder = tiny_study.folder
    _, steps = load_study(folder / "study.yaml", ["token_budget=50000000"])
    budget = next(step for step in steps if step.stage == "budget")
    with pytest.raises(WeamError, match=r"condition 'diverse': the token budget 50,000,000 needs .*\(languages fi, tr\)"):
        check_budgets(budget.config)
    study, steps = load_study(folder / "study.yaml")
    available = check_budgets(next(step for step in steps if step.stage == "budget").config)
    # Per (condition, set): the set's content tokens and the passes over each pair under uniform sampling.
    assert set(available) == {"diverse/s1", "single/s1"} and min(v["tokens"] for v in available.values()) > 12000
    assert all(0 < passes <= study.max_epochs for v in available.values() for passes in v["passes"].values())
    counts = json.loads((folder / "work/budget/manifest.json").read_text())["counts"]
    assert counts["available_tokens"] == {key: v["tokens"] for key, v in available.items()}


# The three tests below change the module's copy in place, in file order (the one before them leaves
# it done; each leaves it for the next).
CONDITION_RUNS = {"pretrain/diverse/s1/seed0", "pretrain/single/s1/seed0"}
CONDITION_EVALS = {"eval/diverse/s1/seed0", "eval/single/s1/seed0"}
ALL_EVALS = CONDITION_EVALS | {"eval/base/seed0"}


def test_changed_lr_reruns_exactly_the_condition_runs_and_their_evaluations(study_copy):
    folder = study_copy.folder
    study = folder / "study.yaml"
    before = eval_scores(folder / "work")
    rows = status_table(study, "pretrain.optim.lr=0.002")
    stale = {key for key, (state, _) in rows.items() if state == "stale"}
    assert stale == CONDITION_RUNS | CONDITION_EVALS | {"report"}, rows
    assert rows["pretrain/diverse/s1/seed0"][1] == "config optim.lr: 0.0005 → 0.002"
    assert rows["eval/single/s1/seed0"][1] == "upstream pretrain/single/s1/seed0 is stale"
    assert all(rows[key] == ("done", "") for key in ("data", "tokenizer", "base", "align/en-fi", "budget",
                                                      "tatoeba", "eval/base/seed0"))
    output = run_to_end("study", "run", str(study), "--set", "pretrain.optim.lr=0.002")
    ran = {key for key, status in step_lines(output).items() if status.startswith("done in")}
    assert ran == CONDITION_RUNS | CONDITION_EVALS | {"report"}, output
    after = eval_scores(folder / "work")
    assert after["eval/base/seed0/tatoeba/results.json"] == before["eval/base/seed0/tatoeba/results.json"]
    manifest = json.loads((folder / "work/pretrain/diverse/s1/seed0/manifest.json").read_text())
    assert manifest["config"]["optim"]["lr"] == 0.002
    assert {state for state, _ in status_table(study, "pretrain.optim.lr=0.002").values()} == {"done"}


def test_changed_eval_setting_reruns_only_the_evaluations(study_copy):
    folder = study_copy.folder
    study = folder / "study.yaml"
    lr = "pretrain.optim.lr=0.002"  # the state the previous test leaves
    # Run here too (nothing to do when the previous test ran on this copy): pytest re-creates the
    # module's copy when a worker leaves the module for another test and comes back.
    run_to_end("study", "run", str(study), "--set", lr)
    rows = status_table(study, lr, "eval.max_seq_len=77")
    stale = {key for key, (state, _) in rows.items() if state == "stale"}
    assert stale == ALL_EVALS | {"report"}, rows
    assert rows["eval/base/seed0"][1] == "config max_seq_len: None → 77"
    before = eval_scores(folder / "work")
    output = run_to_end("study", "run", str(study), "--set", lr, "--set", "eval.max_seq_len=77")
    ran = {key for key, status in step_lines(output).items() if status.startswith("done in")}
    # The report's inputs are the results' contents: when the re-run evaluations score exactly as
    # before (Tatoeba's short held-out sentences fit 77 tokens), it stays done.
    changed = eval_scores(folder / "work") != before
    assert ran == ALL_EVALS | ({"report"} if changed else set()), output
    manifest = json.loads((folder / "work/eval/base/seed0/manifest.json").read_text())
    assert manifest["config"]["max_seq_len"] == 77
    assert {"model/model.safetensors", "data/tatoeba/sw-en.sw", "labels/tatoeba/test-sw.tsv"} <= set(manifest["inputs"])


def test_a_setting_that_does_not_affect_results_reruns_nothing(study_copy):
    folder = study_copy.folder
    # The result-affecting settings the tests above leave the study with (run here too, so the test
    # holds whatever ran before it on this worker), then settings that affect no result on top.
    changed = ["pretrain.optim.lr=0.002", "eval.max_seq_len=77"]
    run_to_end("study", "run", str(folder / "study.yaml"), *[i for o in changed for i in ("--set", o)])
    overrides = [*changed, "pretrain.logging.log_every=3", "align.max_retries=5"]
    args = [item for override in overrides for item in ("--set", override)]
    output = run_to_end("study", "run", str(folder / "study.yaml"), *args)
    assert set(step_lines(output).values()) == {"skipped (finished)"}, output
