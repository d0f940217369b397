import socket

from mlflow.tracking import MlflowClient

from weam.tracking import TAG_STAGE, RunLogger, resolve_tracking_uri


def test_run_logger_logs_nested_runs_to_sqlite(tmp_path):
    uri = resolve_tracking_uri(None, tmp_path)
    assert uri.startswith("sqlite:////")
    parent = RunLogger(uri, "study", "condition-a")
    child = RunLogger(uri, "study", "pretrain", parent_run_id=parent.run_id, tags={TAG_STAGE: "pretrain"})
    child.log_params({"train": {"lr": 5e-5}})
    child.log_metrics({"tatoeba/accuracy/sw": 0.25}, step=1)
    child.end()
    parent.end()
    run = MlflowClient(uri).get_run(child.run_id)
    assert run.data.params["train.lr"] == "5e-05"
    assert run.data.metrics["tatoeba/accuracy/sw"] == 0.25
    assert run.data.tags["mlflow.parentRunId"] == parent.run_id
    assert run.data.tags[TAG_STAGE] == "pretrain"


def test_unreachable_server_buffers_then_replays(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    buffer = tmp_path / "buffer.jsonl"
    logger = RunLogger(f"http://127.0.0.1:{dead_port}", "study", "run", buffer_path=buffer)
    logger.log_metrics({"train/loss": 1.5}, step=3)
    logger.log_params({"lr": 1})
    assert buffer.is_file() and len(buffer.read_text().splitlines()) == 2
    # The server "comes back": point the logger at a reachable store and replay.
    logger.uri = resolve_tracking_uri(None, tmp_path)
    logger._client = None
    logger.run_id = None
    assert logger.replay() == 2
    run = MlflowClient(logger.uri).get_run(logger.run_id)
    assert run.data.metrics["train/loss"] == 1.5 and run.data.params["lr"] == "1"
    assert not buffer.exists()
