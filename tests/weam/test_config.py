from pathlib import Path

import pytest

from weam.core.config import StrictModel, load_config
from weam.core.errors import ConfigError


class Inner(StrictModel):
    lr: float = 5e-5
    """Learning rate."""
    steps: int = 10


class Outer(StrictModel):
    name: str
    inner: Inner = Inner()
    langs: list[str] = []


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_with_override(tmp_path):
    path = write(tmp_path / "a.yaml", "name: demo\ninner:\n  lr: 0.001\n")
    config = load_config(Outer, path, ["inner.steps=7", "langs=[de, fi]"])
    assert config.inner.lr == 0.001 and config.inner.steps == 7 and config.langs == ["de", "fi"]


def test_misspelled_key_names_file_key_and_suggestion(tmp_path):
    path = write(tmp_path / "bad.yaml", "name: demo\ninner:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path)
    message = str(info.value)
    assert str(path) in message
    assert "key 'inner.lrr': unknown key; did you mean 'lr'?" in message
    assert "expected one of: lr, steps" in message


def test_wrong_type_names_key_and_value(tmp_path):
    path = write(tmp_path / "bad.yaml", "name: demo\ninner:\n  steps: many\n")
    with pytest.raises(ConfigError, match=r"key 'inner.steps': .*integer.*got 'many'"):
        load_config(Outer, path)


def test_missing_required_key(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'name': Field required"):
        load_config(Outer, write(tmp_path / "empty.yaml", ""))


def test_base_include_is_overridden_key_by_key(tmp_path):
    write(tmp_path / "base.yaml", "name: base\ninner:\n  lr: 0.5\n  steps: 3\n")
    child = write(tmp_path / "child.yaml", "_base_: base.yaml\ninner:\n  steps: 4\n")
    config = load_config(Outer, child)
    assert (config.name, config.inner.lr, config.inner.steps) == ("base", 0.5, 4)


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"bad.yaml:2: not valid YAML"):
        load_config(Outer, write(tmp_path / "bad.yaml", "name: demo\n  inner: [\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Outer, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(Outer, None, ["name"])


def test_alias_options_become_set_items_in_one_place():
    """Every command's alias options (--out, --langs, --engine …) are built into ``--set`` items by
    weam.edge.with_options: left-out options add nothing, lists are JSON (YAML reads a bare no or on as a boolean)."""
    from pathlib import Path

    from weam.core.config import load_config
    from weam.data.config import DemoDataConfig
    from weam.edge import Environment, comma_list, with_options

    items = with_options(["max_words=30"], out_dir=Path("out/demo"), languages=comma_list("fi, de"), shards=None,
                         tasks=comma_list(None), engine="thot")
    assert items == ["max_words=30", "out_dir=out/demo", 'languages=["fi", "de"]', "engine=thot"]
    loaded = load_config(DemoDataConfig, None, items[:3])
    assert loaded.languages == ["fi", "de"] and loaded.out_dir == Path("out/demo")
    env = Environment(tracking_uri="sqlite:////tmp/x.db")
    assert env.with_tracking(["a=1"]) == ["a=1", "tracking.uri=sqlite:////tmp/x.db"]
    assert env.with_tracking(["tracking.uri=file:///y"]) == ["tracking.uri=file:///y"]
