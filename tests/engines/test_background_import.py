"""``%load_ext lmwidgets`` imports torch and transformers while the kernel is idle (issue 27's
load time), on the kernel's event loop, never from a second thread.

Each case runs in a new interpreter (or a real kernel): the warm-up is once per process, and
the point is what a fresh process has imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest


def _run(code: str, cwd=None) -> dict:
    """Run ``code`` in a new interpreter; the JSON object it printed last."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _modules(directory, names=("slow_a", "slow_b")) -> None:
    """Modules that take a moment to import and record the thread that imported them."""
    for name in names:
        (directory / f"{name}.py").write_text(
            "import threading, time\ntime.sleep(0.2)\nTHREAD = threading.current_thread().name\n"
        )


def test_the_imports_run_on_the_event_loop_one_by_one(tmp_path):
    _modules(tmp_path)
    result = _run(
        """
    import asyncio, json, sys
    sys.path.insert(0, ".")
    from lmwidgets.engines import background_import as b

    async def main():
        started = b.start(["slow_a", "lmwidgets_no_such_module", "slow_b"])
        first = "slow_a" in sys.modules  # nothing runs before the cell has returned
        while b.state().seconds is None:
            await asyncio.sleep(0.02)
        return started, first

    started, first = asyncio.run(main())
    print(json.dumps({
        "started": started, "before": first, "again": b.start(["json"]),
        "threads": [sys.modules[m].THREAD for m in ("slow_a", "slow_b")],
        "failed": b.state().failed, "seconds": b.state().seconds,
    }))
    """,
        tmp_path,
    )
    assert result["started"] is True and result["before"] is False
    assert result["again"] is False  # once per process
    assert result["threads"] == ["MainThread", "MainThread"]  # never a second thread
    assert result["failed"] == {"lmwidgets_no_such_module": "ModuleNotFoundError"}
    assert result["seconds"] >= 0.4


def test_without_a_running_loop_nothing_is_scheduled():
    result = _run(
        """
    import json, sys
    from lmwidgets.engines import background_import as b, warm_up
    print(json.dumps({"started": warm_up("transformers"), "state": b.state().started,
                      "torch": "torch" in sys.modules}))
    """
    )
    assert result == {"started": False, "state": None, "torch": False}


def test_a_load_that_comes_first_imports_what_is_left(tmp_path):
    """engine_loader imports the pending modules itself, in order, before its loader."""
    _modules(tmp_path)
    (tmp_path / "slow_engine.py").write_text(
        "import sys\ndef load(*args, **kwargs):\n    return 'slow_b' in sys.modules\n"
    )
    result = _run(
        """
    import asyncio, json, sys
    sys.path.insert(0, ".")
    from lmwidgets.engines import background_import as b, engine_loader, register_engine, warm_up

    async def main():
        register_engine("slow", "slow_engine:load", warm_up=("slow_a", "slow_b"))
        started = warm_up("slow")
        loader = engine_loader("slow")  # in the same cell: nothing imported yet
        return started, loader()

    started, loaded = asyncio.run(main())
    print(json.dumps({"started": started, "loaded": loaded, "pending": list(b.state().pending)}))
    """,
        tmp_path,
    )
    assert result == {"started": True, "loaded": True, "pending": []}


def test_an_engine_without_warm_up_modules_schedules_nothing():
    result = _run(
        """
    import asyncio, json
    from lmwidgets.engines import background_import as b, warm_up

    async def main():
        return warm_up("scripted")

    print(json.dumps({"started": asyncio.run(main()), "state": b.state().started}))
    """
    )
    assert result == {"started": False, "state": None}


def test_load_steps_name_the_imports(tiny):
    steps = tiny.extras["load_steps_s"]
    assert list(steps) == ["imports", "locate", "tokenizer", "weights", "cpu_kernels"]
    assert all(seconds >= 0 for seconds in steps.values())


def test_warm_up_modules_exist():
    """Every module named for the warm-up imports (a renamed transformers module would only
    show as a slower load otherwise)."""
    import importlib

    from lmwidgets.engines import WARM_UP

    for name in WARM_UP["transformers"]:
        importlib.import_module(name)


class _Kernel:
    """A real ipykernel (as JupyterLab runs one), for what %load_ext does on its loop."""

    def __init__(self) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(kernel_name="python3")

    def run(self, code: str) -> str:
        msg_id = self.client.execute(code)
        out = []
        while True:
            message = self.client.get_iopub_msg(timeout=120)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                out.append(f"ERROR {content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(out)

    def close(self) -> None:
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel():
    started = _Kernel()
    try:
        yield started
    finally:
        started.close()


@pytest.mark.slow
def test_a_kernel_imports_after_load_ext_and_a_cell_meanwhile_sees_whole_modules(kernel):
    """The race that ruled out a thread: a cell that reads transformers right after %load_ext
    (datasets does, when transformers is in sys.modules) gets whole modules."""
    assert "ERROR" not in kernel.run("%load_ext lmwidgets")
    seen = kernel.run(
        "import time, transformers; time.sleep(0.3); "
        "print(transformers.PreTrainedTokenizerBase.__name__)"
    )
    assert seen.strip() == "PreTrainedTokenizerBase"
    waited = kernel.run(
        "import sys, time\n"
        "from lmwidgets.engines import background_import as b\n"
        "print(b.state().started is not None)\n"
    )
    assert waited.strip() == "True"
    done = ""
    for _ in range(120):  # the kernel imports between these cells
        done = kernel.run(
            "print(b.state().seconds is not None and 'transformers.modeling_utils' in sys.modules)"
        )
        if done.strip() == "True":
            break
        kernel.run("time.sleep(0.5)")
    assert done.strip() == "True"
    assert kernel.run("print(b.state().failed)").strip() == "{}"


@pytest.mark.slow
def test_warm_up_can_be_turned_off(kernel):
    kernel.run("get_ipython().config.LmMagics.warm_up = False")
    kernel.run("%load_ext lmwidgets")
    kernel.run("import time; time.sleep(1)")
    shown = kernel.run(
        "import sys\nfrom lmwidgets.engines import background_import as b\n"
        "print(b.state().started, 'torch' in sys.modules)"
    )
    assert shown.strip() == "None False"
