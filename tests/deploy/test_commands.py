"""Every ``weam …`` command a manifest runs parses through the real CLI (click's parser, without
running it), and the config file it names (from the pods' ConfigMap mounts) validates through the
stage's config model."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import typer

from tests.deploy.manifests import (
    K8S_DIR,
    ROOT,
    VAR_REF,
    WeamCommand,
    all_documents,
    containers,
    declared_env,
    load_documents,
    pod_templates,
    resource_id,
    weam_commands,
)
from weam.core.config import load_config

# Stage config models by subcommand: "module:Class". A stage missing here fails the test below,
# so a new stage command in a manifest cannot slip through unchecked.
CONFIG_MODELS = {
    "pretrain": "weam.training.config:PretrainConfig",
    "align": "weam.alignment.config:AlignConfig",
    "eval": "weam.eval.config:EvalConfig",
    "study": "weam.study.config:StudyConfig",
}
COMMANDS = weam_commands()
# typer 0.29 vendors click (typer._click); its UsageError is the base of typer.BadParameter.
USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def parse(argv: list[str]):
    """Resolve subcommands and parse options exactly as `weam` would, without invoking anything:
    (subcommand path, the leaf command's context)."""
    from weam.cli import app

    command = typer.main.get_command(app)
    ctx = command.make_context("weam", list(argv))
    path = []
    while hasattr(command, "resolve_command"):
        rest = [*ctx._protected_args, *ctx.args]
        name, command, rest = command.resolve_command(ctx, rest)
        path.append(name)
        ctx = command.make_context(name, rest, parent=ctx)
    return path, ctx


IMAGE_CONFIGS = Path("/opt/weam/configs")
"""Where the image carries the shipped configs (the Dockerfile's ``COPY configs /opt/weam/configs``)."""


def materialise(path: Path | None, files: dict[str, str], tmp_path: Path) -> Path | None:
    """The config file the pod would read, written under tmp_path (None when not given); a shipped
    config of the image is this checkout's own (its ``_base_`` files beside it)."""
    if path is None:
        return None
    if path.is_relative_to(IMAGE_CONFIGS):
        assert f"COPY configs {IMAGE_CONFIGS}" in (ROOT / "Dockerfile").read_text(encoding="utf-8")
        local = ROOT / "configs" / path.relative_to(IMAGE_CONFIGS)
        assert local.is_file(), f"{path}: the image has no such config ({local} is missing)"
        return local
    text = files.get(str(path))
    assert text is not None, f"{path} is not provided by any ConfigMap the pod mounts ({sorted(files)})"
    local = tmp_path / path.name
    local.write_text(text, encoding="utf-8")
    return local


def check_command(command: WeamCommand, tmp_path: Path) -> None:
    path, ctx = parse(command.argv)
    stage = path[0]
    assert stage in CONFIG_MODELS, f"{command.source}: no config model registered for `weam {stage}`"
    config = materialise(ctx.params.get("config"), command.files, tmp_path)
    overrides = list(ctx.params.get("overrides") or [])
    if stage == "align":
        from weam.alignment.cli import build_config

        params = ctx.params
        build_config(config, overrides, params.get("engine"), params.get("shards"), params.get("ray_address"), environ={})
    else:
        module, name = CONFIG_MODELS[stage].split(":")
        load_config(getattr(importlib.import_module(module), name), config, overrides)


def test_manifests_run_weam_commands():
    sources = {c.source.split(":")[0] for c in COMMANDS}
    assert {"k8s/pretrain.yaml", "k8s/pretrain-pytorchjob.yaml", "k8s/ray/rayjob-align.yaml",
            "k8s/study/rayjob-study.yaml"} <= sources


@pytest.mark.parametrize("command", COMMANDS, ids=[c.source for c in COMMANDS])
def test_weam_command_parses_and_config_validates(command, tmp_path):
    check_command(command, tmp_path)


def test_misspelled_option_is_rejected(tmp_path):
    good = next(c for c in COMMANDS if c.argv[:2] == ["pretrain", "run"])
    bad = WeamCommand(good.source, [a.replace("--config", "--confg") for a in good.argv], good.files)
    with pytest.raises(USAGE_ERROR, match="--confg"):
        check_command(bad, tmp_path)


def test_invalid_config_is_rejected(tmp_path):
    from weam.core.errors import ConfigError

    good = next(c for c in COMMANDS if c.argv[:2] == ["pretrain", "run"])
    files = {k: v.replace("objective:\n", "objectiv:\n") for k, v in good.files.items()}
    with pytest.raises(ConfigError, match="objectiv"):
        check_command(WeamCommand(good.source, good.argv, files), tmp_path)


def test_referenced_variables_are_declared():
    """$(VAR) in command/args expands only for variables declared in the container's env."""
    for path, doc in all_documents():
        for template in pod_templates(doc):
            for container in containers(template):
                tokens = [*container.get("command", []), *container.get("args", [])]
                used = {m.group(1) for t in tokens for m in VAR_REF.finditer(t)}
                missing = used - declared_env(container)
                assert not missing, f"{path.name}:{resource_id(doc)}: undeclared {sorted(missing)}"


def test_shared_objects_are_identical_across_files():
    """Files that each carry the Namespace, PVC, ServiceAccount or a ConfigMap must agree on them."""
    seen: dict[str, tuple[str, dict]] = {}
    for path in sorted(K8S_DIR.rglob("*.yaml")):
        for doc in load_documents(path):
            if doc["kind"] not in ("Namespace", "ServiceAccount", "PersistentVolumeClaim", "ConfigMap"):
                continue
            key = f"{doc['metadata'].get('namespace', '')}/{resource_id(doc)}"
            if key in seen:
                assert doc == seen[key][1], f"{key} differs between {seen[key][0]} and {path.name}"
            seen[key] = (path.name, doc)


def test_gpu_pods_need_no_compiled_deepspeed_op(tmp_path, monkeypatch):
    """The image builds DeepSpeed without ops (DS_BUILD_OPS=0, no nvcc): on CUDA the trainer's
    DeepSpeed config must still choose torch's Adam, or DeepSpeed would JIT-compile FusedAdam.
    The batch must also split over every documented world size."""
    import torch

    from weam.training.config import PretrainConfig
    from weam.training.distributed import deepspeed_config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    pretrain = [c for c in COMMANDS if c.argv[:2] == ["pretrain", "run"]]
    assert pretrain
    for command in pretrain:
        _, ctx = parse(command.argv)
        config = load_config(PretrainConfig, materialise(ctx.params["config"], command.files, tmp_path))
        for world_size in (1, 8, 16, 32):  # the sizes deploy/README.md documents: 1x1, 1x8, 2x8, 4x8
            ds = deepspeed_config(config.optim, config.parallel, config.data.batch_size, world_size, 1000)
            assert ds["optimizer"]["params"].get("torch_adam") is True, command.source
