"""A finished rendezvous leaves the process environment as it found it."""

from __future__ import annotations

import os

import pytest


@pytest.mark.multiprocess
def test_a_session_restores_the_rendezvous_variables(monkeypatch):
    """A child started after a session (a study step, a test's `weam pretrain run`) must not inherit
    the finished session's MASTER_PORT: by then another process may listen there (CI saw EADDRINUSE)."""
    from tests.ports import worker_port
    from weam.training import distributed
    from weam.training.config import DistributedEnv

    monkeypatch.delenv("MASTER_PORT", raising=False)
    monkeypatch.setenv("RANK", "kept")
    port = worker_port()
    with distributed.session(DistributedEnv(master_port=port)):
        assert os.environ["MASTER_PORT"] == str(port)
        assert os.environ["RANK"] == "0"
    assert "MASTER_PORT" not in os.environ
    assert os.environ["RANK"] == "kept"
