"""The study evaluates where gold labels exist: its eval defaults to labelled splits, and a study whose
primary task has none for the held-out languages is refused when it is loaded."""

from __future__ import annotations

import pytest

from weam.core.errors import WeamError
from weam.study.run import load_study

STUDY = """
name: t
work_dir: {work}
conditions:
  - {{name: diverse, role: treatment, languages: [fi, tr], families: [Uralic, Turkic]}}
  - {{name: single, role: control, languages: [de, fr], families: [Indo-European]}}
held_out: [sw, yo]
token_budget: 1000
seeds: [0]
base: {{model: bert-base-multilingual-cased}}
xtreme_data_dir: {data}
eval: {{tasks: [{tasks}], split: labelled}}
analysis: {{primary: {{task: {primary}, metric: {metric}}}}}
"""


def _study(tmp_path, tasks, primary, metric):
    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(work=tmp_path / "work", data=tmp_path / "download", tasks=tasks, primary=primary,
                                 metric=metric))
    return path


def test_study_without_gold_for_its_primary_task_is_refused(tmp_path):
    with pytest.raises(WeamError, match=r"task tydiqa, split labelled: no gold labels for language\(s\) sw"):
        load_study(_study(tmp_path, "tydiqa, xnli", "tydiqa", "f1"))
    with pytest.raises(WeamError, match=r"task udpos, split labelled: .*yo"):
        load_study(_study(tmp_path, "udpos", "udpos", "f1"))
    # The primary endpoint decides, not the order of eval.tasks.
    with pytest.raises(WeamError, match=r"task tydiqa, split labelled: no gold labels for language\(s\) sw"):
        load_study(_study(tmp_path, "xnli, tydiqa", "tydiqa", "f1"))


def test_study_eval_defaults_to_the_labelled_split(tmp_path):
    _, steps = load_study(_study(tmp_path, "xnli, tydiqa", "xnli", "accuracy"))  # primary xnli: sw dev is labelled
    config = next(step.config for step in steps if step.kind == "eval")
    assert config.split == "labelled" and config.require_labelled(["sw", "yo"]) == "dev"
