"""The package's layers import downwards only: the data types (``core``) below what runs models
(``media``, ``engines``), below what builds comparisons (``prompting``), runs them (``run``),
renders them (``sharing``) and shows them in a notebook (``notebook``). Imports inside
``if TYPE_CHECKING:`` blocks are annotations, not dependencies, and are not counted."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "lmwidgets"
LAYERS = ("core", "media", "engines", "prompting", "run", "sharing", "notebook")
#: The top: the public API and its argument checks, which the magics wrap.
TOP = ("api", "validation")

#: Known upward imports still to untie (each a lazy import inside a function): re-running saved
#: records displays a live view, loads models through the public API and checks its arguments
#: with the API's checks; the runner polls the kernel's UI events between decoding steps and
#: the choices run between batches (Stop); LoRA training checks its arguments with the API's
#: checks.
KNOWN = {
    ("run/replay.py", "notebook"),
    ("run/replay.py", "api"),
    ("run/replay.py", "validation"),
    ("run/runner.py", "notebook"),
    ("run/choices.py", "notebook"),
    ("engines/transformers/training.py", "validation"),
}


def _runtime_imports(tree: ast.AST) -> list[str]:
    """Every ``lmwidgets.X`` module imported outside ``if TYPE_CHECKING:`` blocks."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return [name for name in found if name.startswith("lmwidgets.")]


def _layer(module: str) -> str:
    return module.split(".")[1]


def upward_imports() -> set[tuple[str, str]]:
    """(file, layer above it) for every import that reaches up."""
    offenders = set()
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        own = relative.split("/")[0]
        if own not in LAYERS:
            continue
        for module in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            target = _layer(module)
            above = target not in LAYERS or LAYERS.index(target) > LAYERS.index(own)
            if target in TOP and own == "notebook":
                continue
            if above and target not in ("errors", "checks", "_version"):
                offenders.add((relative, target))
    return offenders


def test_layers_import_downwards_only():
    assert upward_imports() - KNOWN == set()


def test_the_known_exceptions_still_exist():
    # An exception that was untied is removed from KNOWN, so it cannot come back unnoticed.
    assert upward_imports() >= KNOWN


def test_type_checking_imports_are_not_counted():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from lmwidgets.notebook import live\n"
        "def f():\n    from lmwidgets.run.runner import prepare\n"
    )
    assert _runtime_imports(tree) == ["lmwidgets.run.runner"]
