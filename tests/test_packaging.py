"""Installing weam adds exactly one top-level package, ``weam`` (issue 10): the folders the users
asked for (alignment/, training/, eval/) install as weam.alignment, weam.training and weam.eval."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _setuptools_table() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_source_package_is_listed():
    table = _setuptools_table()
    package_dir, listed = table["package-dir"], set(table["packages"])
    found = set()
    for package, folder in package_dir.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *relative.parts]))
    # A nested mapping (weam.training → training/) is found from both weam/ and training/; only the
    # folders that exist matter.
    assert found - listed == set(), f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert listed - found == set(), f"listed packages without a folder: {sorted(listed - found)}"


@pytest.mark.tool
def test_wheel_installs_one_top_level_package(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, timeout=300,
    )
    wheel = next(tmp_path.glob("weam-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"weam"}
    for module in ("weam/training/api.py", "weam/eval/tasks/xtreme_r.py", "weam/alignment/engines.py",
                   "weam/core/languages.tsv"):
        assert module in names


def test_old_top_level_names_do_not_import_outside_the_checkout(tmp_path):
    """From a directory that is not the checkout, only ``weam`` resolves (no ``import training``)."""
    probe = "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('training', 'eval', 'alignment')))"
    clean_env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=clean_env, timeout=60)
    assert result.returncode == 0
    ok = subprocess.run([sys.executable, "-c", "import weam.training.config, weam.eval.tasks, weam.alignment.config"],
                        cwd=tmp_path, env=clean_env, timeout=120)
    assert ok.returncode == 0


def test_the_ground_imports_nothing_above_it():
    """weam.core (config, manifest, tracking, …) is what every stage stands on: it imports no stage,
    study or CLI module, so a stage can be read and tested from the ground up."""
    import ast

    above = []
    for path in sorted((ROOT / "weam" / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            above += [f"{path.name}: {name}" for name in names
                      if name.startswith("weam") and not name.startswith("weam.core") and name != "weam"]
    assert above == []


def _weam_imports(path: Path, module_level_only: bool = False) -> list[str]:
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    names = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return [name for name in names if name.startswith("weam")]


def test_the_stage_table_imports_no_stage_and_no_study():
    """weam/stages.py keeps the table (rows by dotted path), the skip rule and execute: it imports
    nothing from the packages whose stages it lists, at module level or inside a function."""
    upward = [name for name in _weam_imports(ROOT / "weam" / "stages.py") if not name.startswith("weam.core")]
    assert upward == []


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] in ("alignment", "training", "eval"):
        parts = ["weam", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def test_no_import_cycle_among_weam_modules_at_module_level():
    """The module-level imports of every weam module form no cycle (a cycle is what made the stage
    table import the study back through 19 imports hidden in functions)."""
    import graphlib

    files = [p for folder in ("weam", "alignment", "training", "eval") for p in (ROOT / folder).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for imported in _weam_imports(path, module_level_only=True):
            while imported and imported not in modules:  # ``from weam.core.config import x``: the module
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                deps.add(imported)
        graph[name] = deps
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_generic_code_never_tests_a_stage_name():
    """A stage is an object (weam.stages.Stage) that says what it needs; no module branches on
    ``step.stage == "…"``."""
    import re

    pattern = re.compile(r"\bstage\s*(==|!=|in\s*[(\[{])")
    found = [f"{p.relative_to(ROOT)}:{i}" for folder in ("weam", "alignment", "training", "eval")
             for p in sorted((ROOT / folder).rglob("*.py"))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert found == []


def test_generic_code_never_switches_on_a_stage_or_task_kind():
    """A task kind is an object (weam.eval.kinds) that the eval, scoring and cleaning code asks, as a
    stage is: ``grep -n 'stage ==\\|kind ==\\|kind in' -r weam eval training alignment`` finds nothing,
    not even in the registries (a loop variable named ``kind`` reads as a switch to that grep)."""
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for folder in ("weam", "alignment", "training", "eval")
             for p in sorted((ROOT / folder).rglob("*")) if p.is_file() and p.suffix in (".py", ".md", ".yaml", ".toml")
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if any(text in line for text in ("stage ==", "kind ==", "kind in"))]
    assert found == []


def test_a_free_port_is_found_in_one_place():
    """weam.core.ports.free_port is the one copy (it was written five times, tests included)."""
    copies = [f"{p.relative_to(ROOT)}" for folder in ("weam", "alignment", "training", "eval", "tests", "benchmarks")
              for p in sorted((ROOT / folder).rglob("*.py"))
              if any(f"def {name}(" in p.read_text(encoding="utf-8") for name in ("free_port", "_free_port"))]
    assert copies == ["weam/core/ports.py"]


def test_tag_names_and_the_base_condition_are_defined_once():
    """Every MLflow tag name (``TAG_*``) and ``BASE_CONDITION`` is assigned in one module and imported
    elsewhere (the report's reader and the plan had their own copies), and no module writes a tag's
    string (``"weam.role"``) where the constant exists."""
    import re

    assignment = re.compile(r"^(TAG_\w+|BASE_CONDITION)\s*=\s*(.+)$")
    homes: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    files = [p for folder in ("weam", "alignment", "training", "eval") for p in sorted((ROOT / folder).rglob("*.py"))]
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            match = assignment.match(line)
            if match:
                homes.setdefault(match.group(1), []).append(str(path.relative_to(ROOT)))
                values[match.group(1)] = match.group(2).strip()
    assert {"TAG_ROLE", "TAG_FAMILIES", "TAG_N_FAMILIES", "TAG_EVAL_SEED", "BASE_CONDITION"} <= homes.keys()
    assert {name: where for name, where in homes.items() if len(where) > 1} == {}
    tag_strings = {value for name, value in values.items() if name.startswith("TAG_")}
    written = [f"{p.relative_to(ROOT)}:{i}: {text}" for p in files for i, line in
               enumerate(p.read_text(encoding="utf-8").splitlines(), 1) for text in tag_strings
               if text in line and not assignment.match(line)]
    assert written == []


def test_generic_code_never_tests_a_task_or_stage_name():
    """What one task or stage does differently is data on its object (TaskSpec.file_aliases,
    HFSource.id_prefix, the Stage's methods), not ``if spec.name == "tydiqa"``: no line of weam, eval,
    training or alignment compares a name with a task id, a task alias or a stage name (a loop
    ``for name in (…)`` is not a comparison)."""
    import re

    from weam.eval.tasks import TASK_ALIASES, all_tasks
    from weam.stages import STAGES

    known = set(all_tasks()) | set(TASK_ALIASES) | set(STAGES)
    comparison = re.compile(r"""(?<!for )\bname\s*(==|!=|(not\s+)?in\b)|["'][\w-]+["']\s*(==|!=)\s*[\w.]*name\b""")
    literal = re.compile(r"""["']([\w-]+)["']""")
    files = [p for folder in ("weam", "alignment", "training", "eval") for p in sorted((ROOT / folder).rglob("*.py"))]
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in files
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if comparison.search(line) and known & set(literal.findall(line))]
    assert found == []


def test_a_sqlite_store_uri_is_built_in_one_place():
    """weam.core.tracking.store.sqlite_uri/store_uri build every ``sqlite:///`` URI (the study plan and the
    local server helper wrote their own)."""
    builders = [f"{p.relative_to(ROOT)}:{i}" for folder in ("weam", "alignment", "training", "eval")
                for p in sorted((ROOT / folder).rglob("*.py"))
                for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                if 'f"sqlite:///' in line or "f'sqlite:///" in line]
    assert [b.partition(":")[0] for b in builders] == ["weam/core/tracking/store.py"]
