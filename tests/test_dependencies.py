"""Every package the code imports is one the project declares for users (not only for tests):
a fresh `pip install .` must run every command (the dev extras are not there)."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gigo_mail"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _imported_top_levels() -> dict[str, str]:
    """top-level module -> a file importing it, for every absolute import in the package."""
    found: dict[str, str] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(SRC)))
    return found


def _declared() -> set[str]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    names = set()
    for requirement in project["dependencies"]:
        name = requirement.split(";")[0].split("[")[0]
        for sep in ("<", ">", "=", "!", "~", " "):
            name = name.split(sep)[0]
        names.add(name.strip().lower().replace("_", "-"))
    return names


def test_every_third_party_import_is_a_declared_dependency() -> None:
    declared = _declared()
    distributions = packages_distributions()
    missing = []
    for module, where in sorted(_imported_top_levels().items()):
        if module == "gigo_mail" or module in sys.stdlib_module_names:
            continue
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        if not owners:
            pytest.fail(f"{where} imports {module!r}, which no installed distribution provides")
        if not owners & declared:
            missing.append(f"{where}: {module} (from {', '.join(sorted(owners))})")
    assert not missing, "imported but not in [project] dependencies: " + "; ".join(missing)
