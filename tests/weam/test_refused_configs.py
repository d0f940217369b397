"""Configs that used to be accepted and then misbehaved (or crashed mid-run) are refused up front,
with an `error:` line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from weam.core.config import load_config
from weam.core.errors import ConfigError, InputError
from weam.study.config import StudyConfig

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs/demo.yaml"


@pytest.mark.parametrize("override, expected", [
    ("seeds=[]", "seeds is empty"),
    ("held_out=[]", "held_out is empty"),
    ("seeds=[0, 1, 0]", "seeds repeat"),
    ("max_epochs=-1", "max_epochs"),
    ("budget_tolerance=-0.1", "budget_tolerance"),
    ("name=it's", "study name"),
    ("name=../escape", "study name"),
    ('conditions=[{name: a, role: treatment, languages: [fi, tr]}, {name: b, role: control, languages: [id, ar]}]',
     "the control spans 2 families"),
])
def test_study_design_mistakes_are_refused(override, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(StudyConfig, DEMO, [override])


def test_demo_study_still_loads():
    assert load_config(StudyConfig, DEMO, []).name == "demo"


def run_pretrain(tmp_path, corpus, **fields):
    from tests.training.conftest import tiny_config

    from weam.core.config import deep_merge

    config = deep_merge(tiny_config(corpus, tmp_path / "out").model_dump(mode="json"), fields)
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([sys.executable, "-m", "weam", "pretrain", "run", "--config", str(path)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": ""})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from tests.training.conftest import write_pair
    from weam.modeling import train_wordpiece_tokenizer

    root = tmp_path_factory.mktemp("corpus")
    pair = write_pair(root / "en-de", "en", "de", 40, 1, "en")
    texts = [line for f in (pair["src_file"], pair["tgt_file"]) for line in f.read_text().splitlines()]
    train_wordpiece_tokenizer(texts, vocab_size=120).save_pretrained(root / "tokenizer")
    return {"pairs": [pair], "tokenizer": root / "tokenizer", "root": root}


def test_unknown_language_in_a_standalone_pretrain_config(tmp_path, corpus):
    pair = {**corpus["pairs"][0], "tgt": "xx"}
    done = run_pretrain(tmp_path, corpus, data={"pairs": [{k: str(v) for k, v in pair.items()}]})
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "xx" in done.stderr, done.stderr[-1500:]


@pytest.mark.parametrize("fields, expected", [
    ({"data": {"batch_size": 10}, "parallel": {"micro_batch_size": 4}}, "not a multiple of parallel.micro_batch_size"),
    ({"parallel": {"deepspeed_overrides": {"gradient_clipping": "x"}}},
     "parallel.deepspeed_overrides.gradient_clipping: expected a number"),
    ({"parallel": {"deepspeed_overrides": {"zero_optimization": 3}}},
     "parallel.deepspeed_overrides.zero_optimization: expected a mapping"),
    ({"parallel": {"deepspeed_overrides": {"zero_optimization": {"stage": 7}}}}, "DeepSpeed rejects"),
    ({"parallel": {"deepspeed_overrides": {"train_micro_batch_size_per_gpu": 3}}}, "DeepSpeed rejects"),
], ids=["batch", "clip-type", "zero-type", "zero-stage", "ds-batch"])
def test_batch_and_deepspeed_mistakes_are_refused_before_training(tmp_path, corpus, fields, expected):
    done = run_pretrain(tmp_path, corpus, **fields)  # nested sections, merged over a valid config
    assert done.returncode == 2 and done.stderr.startswith("error: "), done.stderr[-1500:]
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "checkpoints").exists()  # nothing started


def test_non_ascii_digit_link_is_a_file_line_error(tmp_path, corpus):
    from weam.training.config import PairData
    from weam.training.data import check_pair

    alignment = tmp_path / "alignment.txt"
    lines = Path(corpus["pairs"][0]["alignment"]).read_text().splitlines()
    alignment.write_text("\n".join(["3-\u00b2", *lines[1:]]) + "\n")
    with pytest.raises(InputError) as caught:
        check_pair(PairData(**{**corpus["pairs"][0], "alignment": alignment}))
    assert (caught.value.path, caught.value.line) == (str(alignment), 1)
