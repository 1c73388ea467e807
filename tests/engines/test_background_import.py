"""``%load_ext lmwidgets`` imports torch and transformers in the background (issue 27's load time).

Each case runs in a new interpreter: the background import is once per process, and the point
is what a fresh kernel has imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest


def _run(code: str, tmp_path=None) -> dict:
    """Run ``code`` in a new interpreter; the JSON object it printed last."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=None,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


_SHELL = """
    import json, sys
    from IPython.testing.globalipapp import start_ipython
    from traitlets.config import Config
"""


def test_load_ext_imports_the_engine_libraries_in_the_background():
    result = _run(
        _SHELL
        + """
    import threading
    ip = start_ipython()
    ip.run_line_magic("load_ext", "lmwidgets")
    names = [t.name for t in threading.enumerate()]
    from lmwidgets.engines import background_import as b
    b.wait()
    state = b.state()
    print(json.dumps({
        "thread": "lmwidgets-warm-up" in names or state.seconds is not None,
        "seconds": state.seconds, "failed": state.failed,
        "imported": [m for m in ("torch", "transformers.modeling_utils") if m in sys.modules],
        "again": b.start(["json"]),
    }))
    """
    )
    assert result["thread"]
    assert result["seconds"] > 0
    assert result["failed"] == {}
    assert result["imported"] == ["torch", "transformers.modeling_utils"]
    assert result["again"] is False  # once per process


def test_warm_up_can_be_turned_off():
    result = _run(
        _SHELL
        + """
    config = Config()
    config.LmMagics.warm_up = False
    ip = start_ipython()
    ip.config.update(config)
    from lmwidgets.notebook.magics import LmMagics
    ip.run_line_magic("load_ext", "lmwidgets")
    from lmwidgets.engines import background_import as b
    print(json.dumps({"started": b.state().started, "torch": "torch" in sys.modules,
                      "option": ip.magics_manager.registry["LmMagics"].warm_up}))
    """
    )
    assert result == {"started": None, "torch": False, "option": False}


def test_a_module_that_fails_is_noted_and_the_rest_still_imported():
    result = _run(
        """
    import json, sys
    from lmwidgets.engines import background_import as b
    started = b.start(["lmwidgets_no_such_module", "colorsys"])
    b.wait()
    print(json.dumps({"started": started, "failed": b.state().failed,
                      "colorsys": "colorsys" in sys.modules, "running": b.state().running}))
    """
    )
    assert result == {
        "started": True,
        "failed": {"lmwidgets_no_such_module": "ModuleNotFoundError"},
        "colorsys": True,
        "running": False,
    }


def test_a_loader_waits_for_the_background_import(tmp_path):
    """engine_loader never imports a loader beside the thread: it waits for the warm-up."""
    (tmp_path / "slow_engine_lib.py").write_text("import time\ntime.sleep(0.5)\nREADY = True\n")
    (tmp_path / "slow_engine.py").write_text("def load(*args, **kwargs):\n    return 'loaded'\n")
    result = _run(
        """
    import json, sys
    sys.path.insert(0, ".")
    from lmwidgets.engines import engine_loader, register_engine, warm_up
    from lmwidgets.engines import background_import as b
    register_engine("slow", "slow_engine:load", warm_up=("slow_engine_lib",))
    started = warm_up("slow")
    loader = engine_loader("slow")
    print(json.dumps({"started": started, "finished": b.state().seconds is not None,
                      "lib": sys.modules["slow_engine_lib"].READY, "loaded": loader()}))
    """,
        tmp_path,
    )
    assert result == {"started": True, "finished": True, "lib": True, "loaded": "loaded"}


def test_an_engine_without_warm_up_modules_starts_nothing():
    result = _run(
        """
    import json
    from lmwidgets.engines import warm_up
    from lmwidgets.engines import background_import as b
    print(json.dumps({"started": warm_up("scripted"), "state": b.state().started}))
    """
    )
    assert result == {"started": False, "state": None}


def test_load_steps_name_the_imports(tiny):
    steps = tiny.extras["load_steps_s"]
    assert list(steps) == ["imports", "locate", "tokenizer", "weights", "cpu_kernels"]
    assert all(seconds >= 0 for seconds in steps.values())


@pytest.mark.parametrize("kind", ["transformers"])
def test_warm_up_modules_exist(kind):
    """Every module named for the warm-up imports (a renamed transformers module would only
    show as a slower load otherwise)."""
    import importlib

    from lmwidgets.engines import WARM_UP

    for name in WARM_UP[kind]:
        importlib.import_module(name)
