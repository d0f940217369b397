"""One tracking path for every stage: a dead or refusing server is said once and costs nothing, the
buffer holds everything and replays once, every run ends FINISHED, FAILED or KILLED."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from tests.tiny_study import PLANTED_PASSWORD  # the one the tiny study's tracking URI holds too
from weam.core import tracking
from weam.cli import app
from weam.core.mlflow_local import closed_port_uri
from weam.core.tracking import (
    PARENT_TAG,
    TAG_STAGE,
    Journal,
    ParentRuns,
    RunLogger,
    drop_rows_after,
    find_run,
    replay,
    resolve_tracking_uri,
    run_name,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_process_state():
    """Each test starts as a new process would: no server probed yet."""
    tracking._Server.forget()
    yield
    tracking._Server.forget()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite store for the module (creating its tables takes seconds)."""
    return resolve_tracking_uri(None, tmp_path_factory.mktemp("store"))


def runs_of(uri: str, experiment: str) -> list:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id], max_results=1000)


def test_a_new_sqlite_store_is_a_copy_of_the_migrated_schema_and_takes_runs(tmp_path):
    """make_client creates a new SQLite store as a copy of the cached, migrated, empty schema
    (MLflow's migrations take seconds a store): the same tables, indexes and revision as a store
    MLflow created and migrated itself, the same rows but for the Default experiment's times."""
    import sqlite3

    from weam.core.tracking import schema_template, store_uri

    for name in ("native", "seeded"):
        (tmp_path / name).mkdir()
    MlflowClient(store_uri(tmp_path / "native")).search_experiments()  # MLflow creates and migrates it
    assert tracking.seed_sqlite_store(store_uri(tmp_path / "seeded"))
    assert not tracking.seed_sqlite_store(store_uri(tmp_path / "seeded"))  # only a store that does not exist
    client = tracking.make_client(store_uri(tmp_path / "seeded"))
    template = schema_template()
    assert template is not None and template.is_file()

    def contents(db: Path) -> tuple[list, dict]:
        with sqlite3.connect(db) as connection:
            # A table's clauses in any order: MLflow's own migrations write some constraints in an
            # order that differs from one process to the next.
            schema = sorted((kind, name, table, sorted(line.strip().rstrip(",") for line in (sql or "").splitlines()))
                            for kind, name, table, sql in connection.execute("select type, name, tbl_name, sql "
                                                                             "from sqlite_master"))
            tables = [row[1] for row in schema if row[0] == "table"]
            rows = {table: sorted(map(repr, connection.execute(f'select * from "{table}"'))) for table in tables
                    if table != "experiments"}
            rows["experiments"] = list(connection.execute("select experiment_id, name, artifact_location, "
                                                          "lifecycle_stage from experiments"))
        return schema, rows

    assert contents(tmp_path / "seeded" / "mlflow.db") == contents(tmp_path / "native" / "mlflow.db")
    run = client.create_run(client.create_experiment("seeded"))
    client.log_metric(run.info.run_id, "loss", 0.5)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.5}


def test_run_names_say_what_the_run_is():
    assert run_name("pretrain", "single", 2, objective="weam") == "pretrain/weam/single/seed2"
    assert run_name("eval", condition="diverse", seed=0, task="tatoeba") == "eval/tatoeba/diverse/seed0"
    assert run_name("align", pair="en-fi") == "align/en-fi"
    assert run_name("base", objective="mlm", seed=0) == "base/mlm/seed0"
    assert run_name("condition", condition="diverse") == "condition/diverse"


def test_nested_runs_with_system_metrics_on_sqlite(store):
    parent = RunLogger(store, "nested", "condition/a", system_metrics=False)
    with RunLogger(store, "nested", "pretrain/weam/a/seed0", parent_run_id=parent.run_id,
                   tags={TAG_STAGE: "pretrain"}, system_metrics_interval=0.2) as child:
        child.log_params({"train": {"lr": 5e-5}})
        child.log_metrics({"tatoeba/accuracy/sw": 0.25}, step=1)
        time.sleep(0.7)
    parent.end()
    run = MlflowClient(store).get_run(child.run_id)
    assert run.data.params["train.lr"] == "5e-05"
    assert run.data.metrics["tatoeba/accuracy/sw"] == 0.25
    assert run.data.tags[PARENT_TAG] == parent.run_id and run.data.tags[TAG_STAGE] == "pretrain"
    assert run.data.tags["weam.pid"] == str(os.getpid())
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(run.data.metrics)
    # MLflow's own monitors, sampled every 0.2 s on a thread: several samples in 0.7 s.
    history = MlflowClient(store).get_metric_history(child.run_id, "system/cpu_utilization_percentage")
    assert len(history) >= 2
    assert "system/cpu_utilization_percentage" not in MlflowClient(store).get_run(parent.run_id).data.metrics


def test_context_manager_ends_finished_failed_killed(store):
    ids = {}
    with RunLogger(store, "ends", "ok", system_metrics=False) as run:
        ids["FINISHED"] = run.run_id
    with pytest.raises(ValueError), RunLogger(store, "ends", "boom", system_metrics=False) as run:
        ids["FAILED"] = run.run_id
        raise ValueError("boom")
    with pytest.raises(KeyboardInterrupt), RunLogger(store, "ends", "ctrl-c", system_metrics=False) as run:
        ids["KILLED"] = run.run_id
        raise KeyboardInterrupt
    for status, run_id in ids.items():
        assert MlflowClient(store).get_run(run_id).info.status == status


def _python(code: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def _wait_ready(process: subprocess.Popen) -> str:
    line = process.stdout.readline()
    assert line.startswith("ready"), (line, process.stderr.read() if process.poll() is not None else "")
    return line.split()[1]


def test_sigterm_ends_a_run_killed_and_its_parent_too(store):
    process = _python(f"""
        import time
        from weam.core.tracking import ParentRuns, RunLogger
        parents = ParentRuns()
        with parents:
            parent = parents.get("c", lambda: RunLogger({store!r}, "sigterm", "condition/c", system_metrics=False))
            with RunLogger({store!r}, "sigterm", "stage", parent_run_id=parent.run_id, system_metrics=False) as run:
                print("ready", run.run_id, flush=True)
                time.sleep(120)
    """)
    run_id = _wait_ready(process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    run = MlflowClient(store).get_run(run_id)
    assert run.info.status == "KILLED"
    assert MlflowClient(store).get_run(run.data.tags[PARENT_TAG]).info.status == "KILLED"


@pytest.mark.parametrize("where", ["server", "buffer"])
def test_a_run_killed_with_9_is_marked_killed_by_the_next_run_of_that_name(tmp_path, store, where):
    uri = store if where == "server" else closed_port_uri()
    experiment = f"kill9-{where}"
    buffer = tmp_path / "buffer"
    process = _python(f"""
        import time
        from weam.core.tracking import RunLogger
        run = RunLogger({uri!r}, {experiment!r}, "pretrain/weam/single/seed0", buffer_dir={str(buffer)!r},
                        system_metrics=False)
        run.log_metrics({{"train/loss": 2.0}}, step=1)
        print("ready", run.run_id, flush=True)
        time.sleep(120)
    """)
    old_id = _wait_ready(process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with RunLogger(uri, experiment, "other-name", buffer_dir=buffer, system_metrics=False):
        pass  # another name: leaves the killed run alone
    with RunLogger(uri, experiment, "pretrain/weam/single/seed0", buffer_dir=buffer, system_metrics=False) as new:
        new.log_metrics({"train/loss": 1.0}, step=2)
    if where == "buffer":
        assert replay(buffer, store)["runs"] == 3
        old_id = Journal(buffer).ids()[old_id]
        new_id = Journal(buffer).ids()[new.run_id]
    else:
        new_id = new.run_id
    statuses = {run.info.run_id: run.info.status for run in runs_of(store, experiment)}
    assert statuses[old_id] == "KILLED" and statuses[new_id] == "FINISHED"
    assert "RUNNING" not in statuses.values()


def test_a_dead_server_is_probed_once_said_once_and_never_called(tmp_path, monkeypatch, capsys):
    uri = closed_port_uri()
    probes = []
    real_probe = tracking.probe
    monkeypatch.setattr(tracking.server, "probe", lambda *a, **k: probes.append(a) or real_probe(*a, **k))
    buffer = tmp_path / "work" / "tracking-buffer"
    for name in ("condition/diverse", "pretrain/weam/diverse/seed0", "eval/tatoeba/diverse/seed0"):
        with RunLogger(uri, "study", name, buffer_dir=buffer, system_metrics=False) as run:
            for step in range(20):
                run.log_metrics({"train/loss": 1.0 / (step + 1)}, step=step)
            run.log_params({"lr": 1e-3})
    assert find_run(uri, "study", {}, buffer) is not None
    assert len(probes) == 1
    assert tracking._Server.get(uri)._client is None  # no MLflow request was ever made
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tracking:")]
    assert len(lines) == 1, lines
    assert f"cannot reach the MLflow server {uri} (connection refused)" in lines[0]
    assert str(buffer) in lines[0] and "weam tracking sync" in lines[0]
    assert len(Journal(buffer).pending()) == 3 * (1 + 20 + 1 + 1)  # create, metrics, params, end


class _Refuses(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
        self.end_headers()
        self.wfile.write(b"You are not authenticated.")

    def log_message(self, *args):
        pass


def test_wrong_credentials_are_said_clearly_and_the_run_is_buffered(tmp_path, capsys):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with RunLogger(uri, "study", "eval/tatoeba/single/seed0", buffer_dir=tmp_path, system_metrics=False) as run:
            run.log_metrics({"tatoeba/accuracy/sw": 0.5})
    finally:
        server.shutdown()
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tracking:")]
    assert f"the MLflow server {uri} refused the credentials (HTTP 401)" in line
    assert "MLFLOW_TRACKING_PASSWORD" in line
    assert [r["op"] for r in Journal(tmp_path).pending()] == ["create", "metrics", "end"]


def test_the_buffer_replays_everything_once_and_relinks_parents(tmp_path, store):
    uri, buffer, experiment = closed_port_uri(), tmp_path / "buffer", "replay"
    config = tmp_path / "study.yaml"
    config.write_text("name: replay\n", encoding="utf-8")
    with pytest.raises(RuntimeError), ParentRuns() as parents:  # a stage fails: so does its condition
        parent = parents.get("diverse", lambda: RunLogger(uri, experiment, "condition/diverse", buffer_dir=buffer,
                                                         tags={TAG_STAGE: "condition"}, system_metrics=False))
        parent.log_params({"languages": "fi,tr"})
        parent.log_artifact(config, "config")
        with RunLogger(uri, experiment, "pretrain/weam/diverse/seed0", parent_run_id=parent.run_id,
                       buffer_dir=buffer, tags={TAG_STAGE: "pretrain"}, system_metrics=False) as child:
            for step in (1, 2, 3):
                child.log_metrics({"train/loss": 4.0 - step}, step=step)
        with RunLogger(uri, experiment, "eval/tatoeba/diverse/seed0", parent_run_id=child.run_id, buffer_dir=buffer,
                       system_metrics=False):
            raise RuntimeError("out of memory")
    config.unlink()  # the buffer holds a copy: the replay does not need the original

    # A replay cut short after the parent was created (its record not yet marked sent): the
    # parent is found by its buffer id, not created twice.
    journal = Journal(buffer)
    first = journal.pending()[0]
    client = MlflowClient(store)
    eid = client.create_experiment(experiment)
    client.create_run(eid, run_name="condition/diverse", tags={tracking.TAG_BUFFER_ID: first["run"]})

    counts = replay(buffer, store)
    assert counts["runs"] == 2 and counts["records"] == len(journal.records())
    assert replay(buffer, store) == {"records": 0, "runs": 0}  # replaying twice creates nothing
    runs = {run.info.run_name: run for run in runs_of(store, experiment)}
    assert sorted(runs) == ["condition/diverse", "eval/tatoeba/diverse/seed0", "pretrain/weam/diverse/seed0"]
    cond, pre, ev = runs["condition/diverse"], runs["pretrain/weam/diverse/seed0"], runs["eval/tatoeba/diverse/seed0"]
    assert pre.data.tags[PARENT_TAG] == cond.info.run_id and ev.data.tags[PARENT_TAG] == pre.info.run_id
    assert (cond.info.status, pre.info.status, ev.info.status) == ("FAILED", "FINISHED", "FAILED")
    history = client.get_metric_history(pre.info.run_id, "train/loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 3.0), (2, 2.0), (3, 1.0)]
    assert cond.data.params["languages"] == "fi,tr"
    assert [a.path for a in client.list_artifacts(cond.info.run_id, "config")] == ["config/study.yaml"]
    assert pre.info.end_time and pre.info.start_time <= pre.info.end_time  # the times they happened


def test_offline_lookups_read_the_journal(tmp_path):
    uri, buffer = closed_port_uri(), tmp_path / "buffer"
    with RunLogger(uri, "s", "pretrain/weam/single/seed0", buffer_dir=buffer, tags={TAG_STAGE: "pretrain"},
                   system_metrics=False):
        pass
    RunLogger(uri, "s", "pretrain/weam/single/seed0", buffer_dir=buffer, tags={TAG_STAGE: "pretrain"},
              system_metrics=False)  # a newer one, still running
    found = find_run(uri, "s", {TAG_STAGE: "pretrain"}, buffer)
    assert found.info.status == "FINISHED" and found.info.run_name == "pretrain/weam/single/seed0"
    assert find_run(uri, "s", {TAG_STAGE: "eval"}, buffer) is None
    assert find_run(uri, "other", {}, buffer) is None


def test_a_local_store_never_replays_a_buffer_meant_for_a_server(tmp_path, store):
    buffer = tmp_path / "buffer"
    with RunLogger(closed_port_uri(), "meant-for-server", "x", buffer_dir=buffer, system_metrics=False):
        pass
    tracking._Server.forget()
    with RunLogger(store, "local", "y", buffer_dir=buffer, system_metrics=False):
        pass
    assert len(Journal(buffer).pending()) == 2 and runs_of(store, "meant-for-server") == []


def test_sync_command(tmp_path, store):
    uri, buffer = closed_port_uri(), tmp_path / "work" / "tracking-buffer"
    with RunLogger(uri, "sync-cli", "align/en-fi", buffer_dir=buffer, system_metrics=False) as run:
        run.log_metrics({"align/pairs": 300})
    runner = CliRunner()
    refused = runner.invoke(app, ["tracking", "sync", "--buffer", str(tmp_path / "work")])
    assert refused.exit_code != 0 and "connection refused" in str(refused.exception)
    status = runner.invoke(app, ["tracking", "status", "--buffer", str(tmp_path / "work")])
    assert "3 records to send, for 1 runs" in status.output and "align/en-fi: 3 records" in status.output
    synced = runner.invoke(app, ["tracking", "sync", "--buffer", str(tmp_path / "work"), "--uri", store])
    assert synced.exit_code == 0, synced.output
    assert f"synced 3 records (1 runs created) from {buffer} to {store}" in synced.output
    again = runner.invoke(app, ["tracking", "sync", "--buffer", str(buffer), "--uri", store])
    assert "nothing to sync" in again.output
    [run] = runs_of(store, "sync-cli")
    assert run.info.run_name == "align/en-fi" and run.info.status == "FINISHED"




def test_a_password_in_the_uri_is_never_printed_or_journalled_and_sync_reads_it_again(tmp_path, monkeypatch, capsys):
    """The journal holds the server without credentials; messages mask the password; `weam tracking
    sync` takes the credentials from MLFLOW_TRACKING_URI again when it names that server."""
    from weam.core.secrets import redact, strip_credentials
    from weam import tracking_cli

    bare = closed_port_uri()
    uri = bare.replace("http://", f"http://alice:{PLANTED_PASSWORD}@")
    buffer = tmp_path / "work" / "tracking-buffer"
    with RunLogger(uri, "creds", "align/en-fi", buffer_dir=buffer, tags={"note": f"from {uri}"},
                   system_metrics=False) as run:
        run.log_params({"tracking.uri": uri})
    said = capsys.readouterr().err
    assert PLANTED_PASSWORD not in said and f"http://alice:***@{bare.removeprefix('http://')}" in said
    assert f"--uri {bare}`" in said  # the suggested command names no credentials
    text = (buffer / "journal.jsonl").read_text(encoding="utf-8")
    assert PLANTED_PASSWORD not in text and {r["uri"] for r in Journal(buffer).records()} == {bare}
    assert Journal(buffer).pending(uri) == Journal(buffer).pending(bare) != []  # still meant for that server
    assert redact(uri) == f"http://alice:***@{bare.removeprefix('http://')}" and strip_credentials(uri) == bare

    used = []
    monkeypatch.setattr(tracking, "probe", lambda target: (used.append(target), (True, "reachable"))[1])
    monkeypatch.setattr(tracking, "replay", lambda journal, target: {"records": 3, "runs": 1})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    synced = CliRunner().invoke(app, ["tracking", "sync", "--buffer", str(tmp_path / "work"), "--uri", bare])
    assert synced.exit_code == 0, synced.output
    assert used == [uri]  # the environment's credentials, for the server the buffer names
    assert PLANTED_PASSWORD not in synced.output and "alice:***@" in synced.output
    assert tracking_cli  # the command module is the one the CLI runs


def test_study_report_reads_the_stage_files_not_the_server(tmp_path):
    """With the server down, `weam study report` of a study that has not run names what is missing
    (its evaluations), not the server: the report reads the stage files; MLflow only mirrors it."""
    from tests.tiny_study import write_study

    down = closed_port_uri()
    result = CliRunner().invoke(app, ["study", "report", str(write_study(tmp_path)), "--set", f"tracking.uri={down}"])
    assert result.exit_code != 0
    message = str(result.exception)
    assert message == (f"study 'tiny' has no finished evaluations under {tmp_path / 'work' / 'eval'}: "
                       "run the study first (`weam study run`)")


def test_drop_rows_after_cuts_a_log_back_to_its_checkpoint(tmp_path):
    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 8)) + '{"step": 8, "lo',
                   encoding="utf-8")
    assert drop_rows_after(log, 5) == 3  # 6, 7 and the half-written 8
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3, 4, 5]
    assert drop_rows_after(log, 5) == 0 and drop_rows_after(tmp_path / "missing.jsonl", 0) == 0


# ---------------------------------------------------------------------------------------------
# Against a real `mlflow server` (the "back" phases); the "down" phases use a closed port.


@pytest.mark.server
def test_a_server_dying_mid_run_loses_nothing(tmp_path, capsys):
    from weam.core.mlflow_local import free_port, mlflow_server

    store, artifacts, port, buffer = tmp_path / "mlflow.db", tmp_path / "artifacts", free_port(), tmp_path / "buf"
    with mlflow_server(store, artifacts, port=port) as url:
        run = RunLogger(url, "dies", "pretrain/weam/single/seed0", buffer_dir=buffer, system_metrics=False)
        run.log_metrics({"train/loss": 3.0}, step=1)
    run.log_metrics({"train/loss": 2.0}, step=2)  # the server is gone: one bounded failure, then buffered
    run.log_metrics({"train/loss": 1.0}, step=3)
    run.end()
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tracking:")]
    assert f"the MLflow server {url} stopped answering" in line
    assert [r["op"] for r in Journal(buffer).pending()] == ["metrics", "metrics", "end"]
    with mlflow_server(store, artifacts, port=port) as url:
        assert replay(buffer, url) == {"records": 3, "runs": 0}
        client = MlflowClient(url)
        assert client.get_run(run.run_id).info.status == "FINISHED"
        history = client.get_metric_history(run.run_id, "train/loss")
        assert sorted((m.step, m.value) for m in history) == [(1, 3.0), (2, 2.0), (3, 1.0)]


def _weam(*args: str, uri: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run([sys.executable, "-m", "weam.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _study_runs(url: str) -> dict[str, object]:
    runs = runs_of(url, "tiny")
    names = [run.info.run_name for run in runs]
    assert len(names) == len(set(names)), sorted(names)  # every run once
    return {run.info.run_name: run for run in runs}


# Every stage execution of the plan is one run (opened and ended by weam.stages.execute), the
# report's included: an evaluation appears once; one parent run per condition.
STAGE_RUNS = sorted([
    "data", "tokenizer", "align/en-fi", "align/en-tr", "align/en-de", "align/en-fr", "budget", "base/mlm/seed0",
    "pretrain/weam/diverse.s1/seed0", "pretrain/weam/single.s1/seed0", "tatoeba",
    "eval/tatoeba/base/seed0", "eval/tatoeba/diverse.s1/seed0", "eval/tatoeba/single.s1/seed0",
    "report", "condition/base", "condition/diverse", "condition/single",
])


@pytest.mark.server
def test_a_study_with_the_server_down_then_back_appears_in_mlflow_once(tiny_study_offline, tmp_path):
    """The session's tiny study ran with the tracking server down (the report is written from the
    stage files all the same); then `weam tracking sync` to a real server puts every stage's run
    there, once; a re-run against it skips every step and adds no run; a copy of the down-phase
    work directory, run when the server is back at its address, replays itself."""
    from collections import Counter

    from tests.weam.test_study_e2e import step_lines
    from weam.core.mlflow_local import mlflow_server

    offline = tiny_study_offline  # read-only: the phases below run on copies of it
    port = int(offline.down_uri.rsplit(":", 1)[1])  # nothing listens here until the last phase
    # A password in the URI (issue 26): printed masked, never written to a file the study leaves.
    assert offline.down_uri == f"http://weam:{PLANTED_PASSWORD}@127.0.0.1:{port}"
    said = [line for line in offline.stderr.splitlines() if line.startswith("tracking:")]
    assert len(said) == 1 and f"cannot reach the MLflow server http://weam:***@127.0.0.1:{port} (connection refused)" \
        in said[0], said
    assert PLANTED_PASSWORD not in offline.stdout + offline.stderr
    leaked = [str(path) for path in offline.folder.rglob("*")
              if path.is_file() and PLANTED_PASSWORD.encode() in path.read_bytes()]
    assert leaked == []  # journal, buffered artifacts (config/*.yaml), manifests, report, logs
    assert "Traceback" not in offline.stdout + offline.stderr
    assert "] report: done in" in offline.stdout  # read from the stage files, MLflow not needed
    assert "diverse (1 runs)" in offline.stdout  # the held-out scores, from the eval files
    assert "## Primary endpoint" in (offline.work / "report" / "report.md").read_text(encoding="utf-8")
    # The buffer journal holds every call made while the server was down: each run is ended once.
    records = [json.loads(line) for line in (offline.work / "tracking-buffer" / "journal.jsonl").read_text().splitlines()]
    ends = Counter(record["run"] for record in records if record["op"] == "end")
    assert ends and set(ends.values()) == {1}, ends
    study = offline.copy(tmp_path / "synced")
    work = study.work

    with mlflow_server(tmp_path / "back.db", tmp_path / "back-artifacts") as url:
        synced = _weam("tracking", "sync", "--buffer", str(work), "--uri", url, uri="")
        assert "synced" in synced.stdout and f"({len(STAGE_RUNS)} runs created)" in synced.stdout, synced.stdout
        again = _weam("tracking", "sync", "--buffer", str(work), "--uri", url, uri="")
        assert "nothing to sync" in again.stdout
        runs = _study_runs(url)
        assert sorted(runs) == STAGE_RUNS
        assert {run.info.status for run in runs.values()} == {"FINISHED"}  # parents included
        client = MlflowClient(url)
        for condition in ("base", "diverse", "single"):
            who = condition if condition == "base" else f"{condition}.s1"
            pretrain = runs["base/mlm/seed0" if condition == "base" else f"pretrain/weam/{who}/seed0"]
            evaluation = runs[f"eval/tatoeba/{who}/seed0"]
            parent = runs[f"condition/{condition}"].info.run_id
            assert pretrain.data.tags[PARENT_TAG] == parent and evaluation.data.tags[PARENT_TAG] == parent
            assert evaluation.data.tags["weam.condition"] == condition
            if condition != "base":
                assert evaluation.data.tags["weam.language_set"] == pretrain.data.tags["weam.language_set"] == "s1"
            assert "tatoeba/accuracy/sw" in evaluation.data.metrics
            # The primary endpoint under one name, over the held-out targets only (sw here).
            assert (evaluation.data.metrics["primary/tatoeba_accuracy_heldout"]
                    == evaluation.data.metrics["tatoeba/accuracy/sw"])
            assert {"train/loss", "train/tokens"} <= set(pretrain.data.metrics)
            assert client.list_artifacts(evaluation.info.run_id, "predictions")
        assert client.list_artifacts(runs["report"].info.run_id, "report")
        assert runs["condition/diverse"].data.metrics["diversity/n_families"] == 2
        assert [a.path for a in client.list_artifacts(runs["condition/diverse"].info.run_id, "config")] == [
            "config/study.yaml"]

        rerun = _weam("study", "run", str(study.config), uri=url)  # reaches the server: every step done, skipped
        assert "pretrain/diverse/s1/seed0: skipped (finished)" in rerun.stdout
        assert "report: skipped (finished)" in rerun.stdout
        assert not [line for line in rerun.stderr.splitlines() if line.startswith("tracking:")]
        runs = _study_runs(url)
        assert sorted(runs) == STAGE_RUNS
        assert {run.info.status for run in runs.values()} == {"FINISHED"}

    with mlflow_server(tmp_path / "other.db", tmp_path / "other-artifacts", port=port) as url:
        copy = offline.copy(tmp_path / "copy")
        resumed = _weam("study", "run", str(copy.config), uri=url)
        [said] = [line for line in resumed.stderr.splitlines() if line.startswith("tracking:")]
        assert "replayed" in said and f"({len(STAGE_RUNS)} runs)" in said
        # The moved work directory is done (fingerprints hold its paths relative to it): nothing
        # re-runs, and every replayed run is there once.
        ran = {key for key, status in step_lines(resumed.stdout).items() if status.startswith("done in")}
        assert ran == set(), resumed.stdout
        names = Counter(run.info.run_name for run in runs_of(url, "tiny"))
        assert sorted(names) == STAGE_RUNS
        assert {name: n for name, n in names.items() if n != 1} == {}


STEPS = 60


@pytest.mark.multiprocess
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_killed_pretrain_resumes_without_duplicate_rows_and_is_not_left_running(tmp_path, store, sig):
    """kill -9 (or SIGTERM) of `weam pretrain run` after a checkpoint, with steps logged past it;
    the re-run resumes: train_log.jsonl holds each step once, the killed MLflow run is KILLED (by
    itself on SIGTERM, by the next run of its name after -9), the new one FINISHED."""
    import yaml

    from tests.training.conftest import tiny_config, write_pair
    from weam.modeling import train_wordpiece_tokenizer

    pair = write_pair(tmp_path / "en-de", "en", "de", 200, 1, "en")
    texts = [line for f in (pair["src_file"], pair["tgt_file"]) for line in f.read_text().splitlines()]
    train_wordpiece_tokenizer(texts, vocab_size=120).save_pretrained(tmp_path / "tokenizer")
    # 60 steps (an epoch is 50), a checkpoint every 20: the kill comes at step 22 or later, 0.1 s a step.
    config = tiny_config({"pairs": [pair], "tokenizer": tmp_path / "tokenizer"}, tmp_path / "out", max_steps=STEPS,
                         checkpoint_every=20, log_every=5, batch_size=4,
                         tracking={"uri": store, "experiment": f"killed-pt-{sig}"})
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": "", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "weam.cli", "pretrain", "run", "--config", str(path)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    log, latest = config.out_dir / "train_log.jsonl", config.out_dir / "checkpoints" / "latest"

    def steps() -> list[int]:
        # Read while the run appends: a line caught mid-write has no newline yet and is not a row.
        text = log.read_text() if log.is_file() else ""
        return [json.loads(line)["step"] for line in text.splitlines(keepends=True) if line.endswith("\n")]

    try:
        deadline = time.time() + 400
        while time.time() < deadline and process.poll() is None:
            if latest.is_file() and len(steps()) >= int(latest.read_text().removeprefix("step")) + 2:
                break
            time.sleep(0.02)
        os.killpg(process.pid, sig)
        assert process.wait(timeout=120) == (-sig if sig == signal.SIGKILL else 128 + signal.SIGTERM)
    finally:
        if process.poll() is None:  # a timed-out wait leaves nothing behind
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    checkpoint = int(latest.read_text().removeprefix("step"))
    assert len(steps()) > checkpoint and checkpoint < STEPS, "killed too late to test anything"
    [killed] = runs_of(store, f"killed-pt-{sig}")
    assert killed.info.run_name == "pretrain/weam/seed0"
    assert killed.info.status == ("RUNNING" if sig == signal.SIGKILL else "KILLED")

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert steps() == list(range(1, STEPS + 1))  # each step once: the killed run's rows after its checkpoint dropped
    statuses = {run.info.run_id: run.info.status for run in runs_of(store, f"killed-pt-{sig}")}
    assert statuses.pop(killed.info.run_id) == "KILLED" and list(statuses.values()) == ["FINISHED"]


def test_a_copied_work_directory_logs_its_artifacts_beside_its_own_store(tmp_path):
    """Issue 26, item 5: a copied (or moved) work directory used to log artifacts into the original
    (the experiment's absolute artifact_location); the store's locations are re-rooted on opening."""
    import shutil

    original, copy = tmp_path / "work", tmp_path / "moved" / "work"
    note = tmp_path / "note.txt"
    note.write_text("n\n", encoding="utf-8")
    with RunLogger(resolve_tracking_uri(None, original), "moved", "first", system_metrics=False) as run:
        run.log_artifact(note, "notes")
    shutil.copytree(original, copy)
    before = sorted(str(p.relative_to(original)) for p in original.rglob("*"))
    tracking._Server.forget()
    uri = resolve_tracking_uri(None, copy)
    with RunLogger(uri, "moved", "second", system_metrics=False) as run:
        run.log_artifact(note, "notes")
    assert sorted(str(p.relative_to(original)) for p in original.rglob("*")) == before  # the original untouched
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("moved")
    assert experiment.artifact_location == (copy / "mlartifacts" / "moved").resolve().as_uri()
    for found in runs_of(uri, "moved"):
        assert found.info.artifact_uri.startswith(copy.resolve().as_uri() + "/mlartifacts/moved/")
        assert [a.path for a in client.list_artifacts(found.info.run_id, "notes")] == ["notes/note.txt"]


def test_a_standalone_stage_buffers_its_runs_where_tracking_status_looks(tmp_path, monkeypatch):
    """Issue 26, item 2: a standalone `weam eval run` buffered its stage run beside the out dir and
    its per-task runs inside it (7 records nothing sent, a parent left dangling); now both use one
    buffer beside the out dir, and `weam tracking status|sync --buffer <out dir>` finds it."""
    from weam import stages
    from weam.edge import run_stage
    from weam.eval.config import EvalConfig

    out, uri = tmp_path / "eval-out", closed_port_uri()
    seen = {}
    monkeypatch.setattr(stages, "execute", lambda step, tracking, **kw: seen.update(step=step, tracking=tracking))
    run_stage("eval", EvalConfig(tasks=["tatoeba"], out_dir=out, tracking={"uri": uri}), extra={"model": "m"})
    buffer = tmp_path / "tracking-buffer"
    assert seen["tracking"].buffer_dir == seen["step"].config.tracking.buffer_dir == buffer
    with RunLogger(uri, "weam", "eval/tatoeba", buffer_dir=buffer, system_metrics=False):
        pass
    status = CliRunner().invoke(app, ["tracking", "status", "--buffer", str(out)])
    assert status.exit_code == 0 and f"{buffer}: 2 records to send, for 1 runs" in status.output, status.output
