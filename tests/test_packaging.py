"""Installing weam adds exactly one top-level package, ``weam`` (issue 10): the folders the users
asked for (alignment/, training/, eval/) install as weam.alignment, weam.training and weam.eval."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

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
    for path in sorted((ROOT / "weam" / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            above += [f"{path.name}: {name}" for name in names
                      if name.startswith("weam") and not name.startswith("weam.core") and name != "weam"]
    assert above == []
