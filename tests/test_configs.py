"""Every YAML under configs/ loads through the config class of its stage (litgpt-style)."""

from pathlib import Path

import pytest
import yaml

from weam.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def config_class(path: Path):
    from alignment.config import AlignConfig
    from eval.config import EvalConfig
    from training.config import PretrainConfig
    from weam.data.config import CleanConfig, DemoDataConfig, FetchConfig

    return {"align": AlignConfig, "pretrain": PretrainConfig, "eval": EvalConfig, "data": DemoDataConfig,
            "fetch": FetchConfig, "clean": CleanConfig}.get(
        path.parent.name
    )


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_file_validates(path):
    model_cls = config_class(path)
    if model_cls is not None:
        raw = yaml.safe_load(path.read_text()) or {}
        # A preset-model template gets its tokenizer from the study that uses it.
        needs_tokenizer = str(raw.get("model", "")).startswith("preset:") and "tokenizer" not in raw
        load_config(model_cls, path, ["tokenizer=tok"] if needs_tokenizer else [])
        return
    from weam.study.run import load_study

    study, steps = load_study(path)
    kinds = [step.kind for step in steps]
    assert kinds.count("pretrain") == len(study.language_sets()) * len(study.seeds)
    assert kinds[-1] == "report"


def test_every_config_folder_is_covered():
    folders = {p.parent.name for p in CONFIGS.rglob("*.yaml")} - {"configs", "studies"}
    assert folders <= {"align", "pretrain", "eval", "data", "fetch", "clean"}, folders
