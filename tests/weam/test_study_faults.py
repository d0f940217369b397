"""Issue 26, a study as a cluster user drives it: `--only` refuses what it cannot run before any
work."""

from __future__ import annotations

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
