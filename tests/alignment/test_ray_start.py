"""A local Ray that does not come up within Ray's fixed 30 s is started again; a cluster address is not."""

from __future__ import annotations

import pytest

from weam.alignment.ray_runtime import LOCAL_START_ATTEMPTS, RayLocalConfig, init_ray

TIMED_OUT = Exception("The current node timed out during startup. This could happen because some of the raylet "
                      "failed to startup or the GCS has become overloaded.")


def fake_ray(monkeypatch, failures: int) -> list[str]:
    import ray

    calls: list[str] = []

    def init(**kwargs):
        calls.append("init")
        if calls.count("init") <= failures:
            raise TIMED_OUT

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    return calls


def test_a_local_ray_that_timed_out_is_shut_down_and_started_again(monkeypatch, capsys):
    calls = fake_ray(monkeypatch, failures=LOCAL_START_ATTEMPTS - 1)
    init_ray(None, RayLocalConfig())
    assert calls == ["init", "shutdown"] * (LOCAL_START_ATTEMPTS - 1) + ["init"]
    assert f"local Ray did not come up (attempt 1 of {LOCAL_START_ATTEMPTS})" in capsys.readouterr().err


def test_it_gives_up_after_the_last_attempt_and_never_retries_a_cluster_address(monkeypatch):
    calls = fake_ray(monkeypatch, failures=LOCAL_START_ATTEMPTS)
    with pytest.raises(Exception, match="timed out during startup"):
        init_ray(None, RayLocalConfig())
    assert calls.count("init") == LOCAL_START_ATTEMPTS
    calls = fake_ray(monkeypatch, failures=1)
    with pytest.raises(Exception, match="timed out during startup"):
        init_ray("10.0.0.5:6379", RayLocalConfig())
    assert calls == ["init"]
