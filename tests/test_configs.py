"""Every YAML under configs/ loads through the config class of its stage (litgpt-style)."""

from pathlib import Path

import pytest
import yaml

from weam.core.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def config_class(path: Path):
    """The config class of the stage a configs/<folder>/ is named after, from the stage table."""
    from weam.data.config import CleanConfig, FetchConfig
    from weam.stages import STAGES

    if path.parent.name in STAGES:
        return STAGES[path.parent.name].config_class()
    return {"fetch": FetchConfig, "clean": CleanConfig}.get(path.parent.name)  # not in a study's plan


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_file_validates(path):
    model_cls = config_class(path)
    if model_cls is not None:
        raw = yaml.safe_load(path.read_text()) or {}
        # A preset-model template gets its tokenizer from the study that uses it.
        needs_tokenizer = str(raw.get("model", "")).startswith("preset:") and "tokenizer" not in raw
        load_config(model_cls, path, ["tokenizer=tok"] if needs_tokenizer else [])
        return
    from weam.study.plan import load_study

    from weam.stages import STAGES

    study, steps = load_study(path)
    kinds = [step.stage for step in steps]
    assert kinds.count("pretrain") == len(study.language_sets()) * len(study.seeds)
    assert kinds[-1] == "report"
    for step in steps:  # every step is a row of the stage table, with that row's config class
        assert isinstance(step.config, STAGES[step.stage].config_class()), step.key


def test_every_config_folder_is_covered():
    folders = {p.parent.name for p in CONFIGS.rglob("*.yaml")} - {"configs", "studies"}
    from weam.stages import STAGES

    assert folders <= set(STAGES) | {"fetch", "clean"}, folders
