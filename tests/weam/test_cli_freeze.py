"""The command tree and every option, frozen (torchtitan's CLI-freeze test): a command or option
that appears, disappears or is renamed fails here, so a change of the user-facing surface is a
deliberate edit of this table."""

import typer.main

from weam.cli import app

FROZEN = {
    "weam": [],
    "weam align": [],
    "weam align config": [],
    "weam align run": ["--config/-c", "--engine", "--out", "--ray-address", "--set", "--shards", "--src", "--tgt"],
    "weam align score": ["--gold", "--pred", "--src", "--tgt"],
    "weam budget": [],
    "weam budget config": [],
    "weam budget run": ["--config/-c", "--set"],
    "weam data": [],
    "weam data check": ["--format", "--src", "--tgt"],
    "weam data clean": ["--config/-c", "--in", "--out", "--set", "--show-config", "--xtreme"],
    "weam data config": [],
    "weam data demo": ["--config/-c", "--langs", "--out", "--set"],
    "weam data fetch": ["--config/-c", "--langs", "--out", "--set", "--show-config"],
    "weam data languages": ["--config/-c", "--set"],
    "weam data run": ["--config/-c", "--set"],
    "weam eval": ["--list"],
    "weam eval config": [],
    "weam eval run": ["--config/-c", "--data-dir", "--langs", "--model", "--out-dir", "--set", "--tasks"],
    "weam eval score": ["--labels", "--output", "--predictions", "--tasks"],
    "weam pretrain": [],
    "weam pretrain config": [],
    "weam pretrain run": ["--config/-c", "--local-rank/--local_rank", "--set"],
    "weam report": [],
    "weam report config": [],
    "weam report run": ["--config/-c", "--set"],
    "weam stages": [],
    "weam study": [],
    "weam study config": ["--set", "<config>"],
    "weam study plan": ["--config/-c", "--set", "<config>"],
    "weam study power": ["--config/-c", "--pilot", "--set", "<config>"],
    "weam study report": ["--config/-c", "--set", "<config>"],
    "weam study reproduce": ["--check", "--config/-c", "--keep", "--only", "--out", "--scratch", "--tracking-uri", "<run_id>"],
    "weam study run": ["--config/-c", "--only", "--ray-address", "--set", "<config>"],
    "weam study status": ["--config/-c", "--rehash", "--set", "<config>"],
    "weam probe": [],
    "weam probe config": [],
    "weam probe run": ["--config/-c", "--set"],
    "weam word_gold": [],
    "weam word_gold config": [],
    "weam word_gold run": ["--config/-c", "--set"],
    "weam tatoeba": [],
    "weam tatoeba config": [],
    "weam tatoeba run": ["--config/-c", "--set"],
    "weam tracking": [],
    "weam tracking status": ["--buffer"],
    "weam tracking sync": ["--buffer", "--uri"],
    "weam tokenizer": [],
    "weam tokenizer config": [],
    "weam tokenizer run": ["--config/-c", "--set"],
}


def command_tree(command, path: list[str]) -> dict[str, list[str]]:
    options = []
    for param in command.params:
        if param.name in ("help", "install_completion", "show_completion"):
            continue
        names = [*param.opts, *getattr(param, "secondary_opts", [])]
        options.append("/".join(sorted(names)) if param.param_type_name == "option" else f"<{param.name}>")
    tree = {" ".join(path): sorted(options)}
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        tree.update(command_tree(sub, [*path, name]))
    return tree


def test_command_tree_and_options_are_frozen():
    assert command_tree(typer.main.get_command(app), ["weam"]) == FROZEN


def test_every_stage_of_the_table_has_run_and_config():
    from weam.stages import STAGES

    tree = command_tree(typer.main.get_command(app), ["weam"])
    # base is pre-training with the study's base settings: `weam pretrain run` runs it.
    for stage in set(STAGES) - {"base", "base_init"}:  # both run inside `weam study run`
        assert f"weam {stage} config" in tree, stage
        assert {"--config/-c", "--set"} <= set(tree[f"weam {stage} run"]), stage


def test_eval_short_form_is_an_alias_of_eval_run():
    from typer.testing import CliRunner

    short = CliRunner().invoke(app, ["eval", "--model", "m", "--help"])
    long = CliRunner().invoke(app, ["eval", "run", "--model", "m", "--help"])
    assert short.exit_code == 0 and short.output == long.output
