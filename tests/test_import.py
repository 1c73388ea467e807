import subprocess
import sys


def test_import_is_light():
    code = (
        "import sys, lmwidgets; "
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'anywidget', 'llguidance') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_api_names_resolve():
    import lmwidgets

    for name in lmwidgets.__all__:
        assert getattr(lmwidgets, name) is not None, name


def test_unknown_attribute():
    import pytest

    import lmwidgets

    with pytest.raises(AttributeError):
        lmwidgets.does_not_exist  # noqa: B018


HEAVY = ("torch", "transformers", "peft", "safetensors", "accelerate", "gguf")
ENGINE_PACKAGE = "lmwidgets/engines/transformers"


def _imported_modules(path):
    """Top-level names of every module ``path`` imports (at any depth of its code)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_transformers_engine_touches_torch_transformers_or_peft():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = {}
    for path in sorted((root / "lmwidgets").rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(ENGINE_PACKAGE):
            continue
        heavy = sorted(_imported_modules(path) & set(HEAVY))
        if heavy:
            offenders[relative] = heavy
    assert offenders == {}


def test_the_import_check_sees_nested_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    if True:\n        from torch import nn\n    import peft.tuners\n"
    )
    assert {"torch", "peft"} <= _imported_modules(sample)


def test_notebook_side_modules_run_without_torch():
    modules = [
        "lmwidgets.api",
        "lmwidgets.engines.base",
        "lmwidgets.engines.scripted",
        "lmwidgets.engines.registry",
        "lmwidgets.prompting.strategies",
        "lmwidgets.run.runner",
        "lmwidgets.run.replay",
        "lmwidgets.core.results",
        "lmwidgets.sharing.static_render",
        "lmwidgets.notebook.magics",
        "lmwidgets.notebook.live",
        "lmwidgets.media.images",
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "import lmwidgets\n"
        "engine = lmwidgets.load_model(engine='scripted', replies={'*': 'Paris.'})\n"
        "result = lmwidgets.prompt('Capital of France?', display=False)\n"
        "assert result.text == 'Paris.', result.text\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
