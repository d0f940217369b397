"""Issue 26, a study as a cluster user drives it: `--only` refuses what it cannot run before any
work, and `weam study` resolves fast_align's binaries as `weam align run` does."""

from __future__ import annotations

import os
import stat

from typer.testing import CliRunner

from tests.weam.test_study_e2e import write_study
from weam.cli import app
from weam.core.errors import WeamError


def _run(*args: str):
    """The CLI in-process; a WeamError is what `weam` (weam.cli.main) prints as `error: …`, exit 2."""
    result = CliRunner().invoke(app, list(args), env={"MLFLOW_TRACKING_URI": ""})
    if isinstance(result.exception, WeamError):
        result.exit_code = 2
    return result


def test_only_refuses_unknown_kinds_with_a_suggestion_before_any_work(tmp_path):
    study = write_study(tmp_path)
    result = _run("study", "run", str(study), "--only", "bogus,pretrian")
    assert result.exit_code == 2, result.output
    assert "'bogus', 'pretrian' (did you mean 'pretrain'?)" in str(result.exception)
    assert not (tmp_path / "work" / "data").exists()  # nothing ran


def test_only_refuses_when_an_upstream_step_left_out_is_not_done(tmp_path):
    study = write_study(tmp_path)
    for only, needed in (("base", "data (missing: not finished); tokenizer (missing: not finished); run them first "
                                  "or add their kinds: --only data,tokenizer,base"),
                         ("tokenizer", "add their kinds: --only data,tokenizer"),
                         ("tatoeba,eval", "add their kinds: --only data,tokenizer,align,base,pretrain,tatoeba,eval")):
        result = _run("study", "run", str(study), "--only", only)
        text = result.output + str(result.exception)
        assert result.exit_code == 2, text
        assert "upstream steps are not done" in text and needed in text, (only, text)
        assert "Traceback" not in text
    assert not (tmp_path / "work" / "data").exists() and not (tmp_path / "work" / "eval").exists()


def _executable(path):
    path.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_study_commands_take_fast_align_binaries_from_the_environment(tmp_path):
    """Config, then FAST_ALIGN_BIN / ATOOLS_BIN, then PATH: one function for `weam align run` and
    every `weam study` command; where the binary lives is no result setting (nothing re-runs)."""
    from weam.edge import Environment, with_study_tools, with_tool_binaries
    from weam.alignment.config import FastAlignConfig
    from weam.study.cli import _load
    from weam.stages import verdict

    fast_align, atools = _executable(tmp_path / "fa"), _executable(tmp_path / "at")
    env = Environment.read({"FAST_ALIGN_BIN": fast_align, "ATOOLS_BIN": atools})
    assert with_tool_binaries(FastAlignConfig(), env).binary == fast_align
    assert with_tool_binaries(FastAlignConfig(binary="/from/config"), env).binary == "/from/config"
    study = write_study(tmp_path)
    _, plain = _load(study, [])
    before = {s.key: verdict(s).reason for s in plain if s.stage == "align"}
    old = {k: os.environ.get(k) for k in ("FAST_ALIGN_BIN", "ATOOLS_BIN")}
    os.environ.update({"FAST_ALIGN_BIN": fast_align, "ATOOLS_BIN": atools})
    try:
        _, steps = _load(study, [])
    finally:
        for key, value in old.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    aligns = [s for s in steps if s.stage == "align"]
    assert aligns and {(s.config.fast_align.binary, s.config.fast_align.atools) for s in aligns} == {(fast_align, atools)}
    assert {s.key: verdict(s).reason for s in aligns} == before
    assert with_study_tools(plain, Environment.read({})) is plain
