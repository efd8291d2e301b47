"""The layering contract: each package of rlexec imports only from its own layer and those below it.

    foundation (errors, configs, provenance)
      -> data, market -> strategies -> envs -> policies -> evaluation -> algorithms -> training
      -> logicq -> cli

Strategies sit below the envs because the LOB env sizes its child orders with the broker schedules;
evaluation sits below algorithms because the preference data of the learning methods is built from
its trajectory recorder. Imports under ``if TYPE_CHECKING:`` are annotations, not dependencies, and
are allowed in any direction. Every import is checked, function-level ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rlexec

PACKAGE = Path(rlexec.__file__).parent
LAYERS = [
    {"errors", "configs", "provenance", "__init__"},
    {"data", "market"},
    {"strategies"},
    {"envs"},
    {"policies"},
    {"evaluation"},
    {"algorithms"},
    {"training"},
    {"logicq", "llmoe"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "rlexec" and len(parts) > 1 else ("__init__" if module == "rlexec" else None)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every rlexec import outside ``if TYPE_CHECKING:`` blocks."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return [(line, name) for line, name in found if name.startswith("rlexec")]


def layer_violations(root: Path = PACKAGE) -> list[str]:
    violations = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        own = relative.parts[0].removesuffix(".py") if len(relative.parts) > 1 else relative.stem
        if own not in RANK:
            violations.append(f"{relative}: package {own!r} has no layer; add it to LAYERS in {Path(__file__).name}")
            continue
        for line, module in runtime_imports(ast.parse(path.read_text(), str(path))):
            target = _top(module)
            if target is not None and target in RANK and RANK[target] > RANK[own]:
                violations.append(f"{relative}:{line}: {own} imports {module} from the higher layer {target}")
    return violations


def test_every_import_respects_the_layers():
    assert layer_violations() == []


def test_the_checker_catches_an_upward_import(tmp_path):
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "bad.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from rlexec.strategies import TWAP\n"  # downward: fine
        "if TYPE_CHECKING:\n    from rlexec.training.spec import TrainSpec\n"  # annotation only: fine
        "def f():\n    from rlexec.evaluation.runner import evaluate\n"  # upward, hidden in a function
    )
    assert layer_violations(tmp_path) == ["envs/bad.py:6: envs imports rlexec.evaluation.runner.evaluate "
                                          "from the higher layer evaluation"]


def test_a_new_package_must_be_given_a_layer(tmp_path):
    (tmp_path / "newthing").mkdir()
    (tmp_path / "newthing" / "x.py").write_text("")
    (message,) = layer_violations(tmp_path)
    assert "has no layer" in message


@pytest.mark.parametrize("module", ["rlexec.algorithms.registry", "rlexec.policies.expert"])
def test_light_modules_do_not_import_ray(module):
    """Listing algorithms and loading an exported expert must not pay for (or need) Ray."""
    import subprocess
    import sys

    code = f"import sys, {module}, rlexec.algorithms.registry as r; r.algorithm_names(); print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
