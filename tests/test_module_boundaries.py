"""Module boundaries: no module reaches into another module's private (`_x`) names."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("parity", "tf_models", "torch_models", "keras_torch")


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_project(module: str | None, level: int) -> bool:
    return level > 0 or (module or "").split(".")[0] in PACKAGES


def private_uses(source: str) -> list[str]:
    """`from project.x import _y`, and `x._y` where x is a project module imported by name."""
    tree = ast.parse(source)
    modules: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _is_project(node.module, node.level):
            for alias in node.names:
                if _is_private(alias.name):
                    found.append(f"from {'.' * node.level}{node.module or ''} import {alias.name}")
                else:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_project(alias.name, 0):
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _is_private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_module_imports_another_modules_private_names():
    offences = [f"{path.relative_to(REPO)}: {use}"
                for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))
                for use in private_uses(path.read_text(encoding="utf-8"))]
    assert offences == [], "make the helper public in a module of its own:\n" + "\n".join(offences)


def test_the_check_sees_planted_private_imports_and_lets_public_ones_pass():
    planted = (
        "from parity.report import (\n    FRAMEWORKS,\n    _metric,\n)\n"
        "from . import _local\n"
        "from parity import jobs\n"
        "jobs._last_line('x')\n"
        "import numpy as np\n"
        "np._private\n"
        "from __future__ import annotations\n"
    )
    assert private_uses(planted) == ["from parity.report import _metric", "from . import _local", "jobs._last_line"]
    assert private_uses("from parity.formatting import metric\nfrom parity import jobs\njobs.run_worker\n") == []
