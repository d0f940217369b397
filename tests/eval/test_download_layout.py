"""`weam eval` over the tree XTREME-R's download scripts leave (tests/eval/conftest.py write_xtreme,
byte-checked against xtreme's own preprocessing in test_fixture_bytes.py): every labelled cell scored,
every unlabeled cell predicted, unscored, and given its reason."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from weam.eval.tasks import all_tasks, get_task, labelled_split
from tests.eval.conftest import FIXTURE_LANGS
from weam.cli import app
from weam.core.errors import WeamError

# What split=labelled scores on this tree: task → (split, {lang: scored?}).
EXPECTED = {
    "xnli": ("dev", {"sw": True, "ur": True}),
    "xcopa": ("dev", {"sw": True, "qu": True}),
    "panx": ("dev", {"sw": True, "yo": True}),
    "udpos": ("dev", {"yo": False, "wo": True}),       # UD has no yo dev treebank
    "xquad": ("test", {"de": False, "ro": False}),     # answers stripped; no ro file at all
    "mlqa": ("dev", {"de": True, "zh": True}),
    "tydiqa": ("test", {"sw": False}),                 # every TyDiQA dev file is stripped
    "mewslix": ("dev", {"de": True, "tr": True}),
    "lareqa": ("test", {"en": True, "de": True}),      # XQuAD-R keeps its answers
    "tatoeba": ("test", {"sw": False, "de": False}),   # English side sorted, gold withheld
}
REASONS = {("udpos", "yo"): "no yo dev treebank", ("xquad", "de"): "remove_qa_test_annotations",
           ("xquad", "ro"): "not ro", ("tydiqa", "sw"): "English included",
           ("tatoeba", "sw"): "sorts the English side", ("tatoeba", "de"): "sorts the English side"}


def test_weam_eval_over_the_download_layout(tiny_model_dir, xtreme_dir, tmp_path):
    assert set(EXPECTED) == set(all_tasks()) == set(FIXTURE_LANGS)
    hyper = ",".join(f'"{t}":{{"max_steps":1,"batch_size":4,"max_seq_len":64}}' for t in EXPECTED)
    for task, (split, cells) in EXPECTED.items():  # one command per task: --langs is one list
        result = CliRunner().invoke(app, [
            "eval", "run", "--model", str(tiny_model_dir), "--tasks", task, "--langs", ",".join(cells),
            "--data-dir", str(xtreme_dir), "--out-dir", str(tmp_path / "out"),
            "--set", "tracking.enabled=false", "--set", "eval_batch_size=8", "--set", f"hyperparams={{{hyper}}}"])
        assert result.exit_code == 0, (task, result.output)
        assert "no score" in result.output or all(cells.values()), (task, result.output)
        spec = get_task(task)
        saved = json.loads((tmp_path / "out" / task / "results.json").read_text())
        assert saved["split"] == split, task
        for lang, scored in cells.items():
            cell = json.loads((tmp_path / "out" / task / "seed1" / f"{lang}.json").read_text())
            assert cell["split"] == split
            if scored:
                assert set(cell["metrics"]) == set(spec.metrics) and cell["reason"] is None, (task, lang)
                assert lang in saved["per_language"] and cell["labels"] in ("download", "laser")
            else:
                assert cell["metrics"] is None and lang in saved["unlabeled"], (task, lang)
                assert REASONS[task, lang] in cell["reason"], (task, lang, cell["reason"])
                if not cell["reason"].startswith(f"no {split} file"):  # present: predictions for weam eval score
                    assert (tmp_path / "out" / task / "seed1" / "predictions" / task /
                            f"test-{lang}.{spec.prediction_ext}").is_file()
        assert set(saved["per_language"]) == {lang for lang, scored in cells.items() if scored}


def test_split_test_scores_nothing_the_download_withholds(tiny_model_dir, xtreme_dir, tmp_path):
    """XCOPA test labels are all 0 in the download: predicted, never scored; a labels folder is scored."""
    from weam.eval.api import evaluate
    from weam.eval.config import EvalConfig

    labels = tmp_path / "labels" / "xcopa"
    labels.mkdir(parents=True)
    (labels / "test-qu.jsonl").write_text('{"label": 0}\n{"label": 1}\n')
    config = EvalConfig(tasks=["xcopa"], langs=["sw", "qu"], split="test", data_dir=xtreme_dir,
                        labels_dir=tmp_path / "labels", out_dir=tmp_path / "out", tracking={"enabled": False},
                        hyperparams={"xcopa": {"max_steps": 1, "batch_size": 2, "max_seq_len": 64}})
    result = evaluate(tiny_model_dir, config)["xcopa"]
    assert list(result["per_language"]) == ["qu"] and result["labels"]["qu"].endswith("test-qu.jsonl")
    assert "sets every test label to 0" in result["unlabeled"]["sw"]
    predicted = (tmp_path / "out/xcopa/seed1/predictions/xcopa/test-qu.jsonl").read_text().splitlines()
    expected = 100.0 * sum(json.loads(p)["label"] == g for p, g in zip(predicted, (0, 1))) / 2
    assert result["per_language"]["qu"]["accuracy"] == pytest.approx(expected)


def test_labelled_split_is_a_fact_of_the_registry(tmp_path):
    assert labelled_split("xnli", "labelled", ["sw", "ur"]) == "dev"
    assert labelled_split("lareqa", "labelled", ["de"]) == "test"
    with pytest.raises(WeamError, match=r"task tydiqa, split labelled: no gold labels for language\(s\) sw"):
        labelled_split("tydiqa", "labelled", ["sw"])
    with pytest.raises(WeamError, match=r"task udpos, split labelled: .*yo.*no yo dev treebank"):
        labelled_split("udpos", "labelled", ["wo", "yo"])
    with pytest.raises(WeamError, match=r"task xcopa, split test: .*sets every test label to 0"):
        labelled_split("xcopa", "test", ["sw"])
    (tmp_path / "tydiqa").mkdir()
    (tmp_path / "tydiqa" / "test-sw.json").write_text("{}")
    assert labelled_split("tydiqa", "labelled", ["sw"], labels_dir=tmp_path) == "test"  # user gold counts


def test_a_split_the_task_lacks_is_stated_not_guessed(tiny_model_dir, xtreme_dir, tmp_path):
    from weam.eval.api import evaluate
    from weam.eval.config import EvalConfig

    config = EvalConfig(tasks=["tydiqa"], langs=["sw"], split="dev", data_dir=xtreme_dir, out_dir=tmp_path / "out",
                        tracking={"enabled": False})
    result = evaluate(tiny_model_dir, config)["tydiqa"]
    assert result["per_language"] == {} and "tydiqa has no dev split" in result["unlabeled"]["sw"]
